"""GAN discriminators on any registered backbone, and ESRGAN's relativistic average losses.

The asymmetry study trains super-resolution generators against discriminators built on the same backbones
it uses for perceptual metrics (``vgg16``, ``resnet50``, ``dinov2``, randomly initialised by default), then
asks whether a discriminator that trained a good generator is also a good quality assessor. So a
discriminator here is a *trainable* backbone (unlike the frozen one of a perceptual loss) plus a small head
on its deepest feature map:

* ``vanilla``: one logit per image, (B,);
* ``patch``: one logit per location of the deepest map, (B, 1, h, w).

Both are trained with the relativistic average GAN losses of ESRGAN (x = generator output, y = ground truth):

    d = Discriminator("vgg16", "patch", weights="random")
    d_loss = relativistic_discriminator_loss(d(y), d(x.detach()))  # discriminator step
    g_loss = relativistic_generator_loss(d(y).detach(), d(x))  # generator step (only the generator is updated)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import Backbone, create_backbone, max_pooling_kwargs
from ..core.hub import HubModel
from .feature_metric import upcast_half

DISC_TYPES = ("vanilla", "patch")
HEAD_WIDTH = 256  # hidden width of both heads


class Discriminator(nn.Module, HubModel, tags=["discriminator", "gan"]):
    """A trainable backbone with a vanilla (per-image) or patch (per-location) logit head on its last stage.

    VGG backbones are built with max pooling, as in ESRGAN's VGG-style discriminator, rather than the
    registry's DISTS L2 pooling for ``vgg16``; pass ``backbone_kwargs={"pooling": "l2"}`` to keep L2 pooling.
    BatchNorm backbones (``resnet50``) update their statistics in train mode like any trained network.

    Args:
        backbone: registry name (see ``asym.list_backbones``), ``timm:<name>`` or ``hf:<id>``.
        disc_type: ``"vanilla"`` (global average pool, then an MLP: one logit per image) or ``"patch"``
            (1x1 convolutions: one logit per location of the deepest feature map).
        weights: initial backbone weights (see ``create_backbone``); the paper starts from random weights.
        backbone_kwargs: extra arguments of the backbone constructor.
    """

    def __init__(
        self,
        backbone: str = "vgg16",
        disc_type: str = "vanilla",
        weights: str = "random",
        backbone_kwargs: dict | None = None,
    ):
        super().__init__()
        if disc_type not in DISC_TYPES:
            raise ValueError(f"unknown disc_type {disc_type!r}: choose one of {', '.join(map(repr, DISC_TYPES))}")
        kwargs = max_pooling_kwargs(backbone, backbone_kwargs)
        self.backbone: Backbone = create_backbone(backbone, weights, **kwargs)  # trainable: not frozen
        self.backbone_name, self.disc_type = backbone, disc_type
        channels = self.backbone.channels[-1]
        if disc_type == "vanilla":  # (B, C) pooled features -> (B, 1)
            self.head = nn.Sequential(
                nn.Linear(channels, HEAD_WIDTH), nn.LeakyReLU(0.2, inplace=True), nn.Linear(HEAD_WIDTH, 1)
            )
        else:  # (B, C, h, w) -> (B, 1, h, w)
            self.head = nn.Sequential(
                nn.Conv2d(channels, HEAD_WIDTH, 1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(HEAD_WIDTH, 1, 1)
            )

    def _backbone_is_stored(self) -> bool:
        return True  # the backbone is trained with the head, so its pretrained weights are not enough to rebuild it

    def card_description(self) -> str:
        shape = "one logit per image" if self.disc_type == "vanilla" else "one logit per location (patch)"
        return (
            f"{self.disc_type.capitalize()} GAN discriminator ({shape}) on the `{self.backbone_name}` backbone, "
            f"whose weights started from: {self.backbone.weights_source}. The backbone is trained with the head, "
            "so all its weights are stored in this checkpoint. Trained with the relativistic average GAN loss "
            "(ESRGAN); higher logits mean 'more real'."
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of images in [0, 1]: (B,) for ``vanilla``, (B, 1, h, w) for ``patch``; higher means more real."""
        feat = self.backbone(x)[-1]  # deepest stage, (B, C, h, w)
        if self.disc_type == "vanilla":
            return self.head(feat.mean(dim=(2, 3))).squeeze(1)
        return self.head(feat)


def _relativistic_terms(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of ``D(y, x)`` and ``D(x, y)``: each logit minus the mean of the other side's logits."""
    if real_logits.shape != fake_logits.shape:
        raise ValueError(
            f"real and fake logits must have the same shape, got {tuple(real_logits.shape)} and "
            f"{tuple(fake_logits.shape)}"
        )
    real, fake = upcast_half(real_logits), upcast_half(fake_logits)
    return real - fake.mean(), fake - real.mean()


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """``-mean(log sigmoid(logits))`` for target 1, ``-mean(log(1 - sigmoid(logits)))`` for 0, computed stably."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def relativistic_generator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic average generator loss ``-E[log(1 - D(y, x))] - E[log D(x, y)]``.

    ``D(a, b) = sigmoid(d(a) - mean(d(b)))``, with y the ground truth (``real_logits = d(y)``) and x the
    generator output (``fake_logits = d(x)``). ``mean(d(b))`` runs over every logit of the batch: over images
    for vanilla (B,) logits, over images *and* locations for patch (B, 1, h, w) logits, and each logit is
    compared with that one mean (as BasicSR's ESRGAN does). The expectations are means over all logits.
    Computed with ``binary_cross_entropy_with_logits`` on the logit differences, so it is stable for any logit
    size. Returned as the MEAN of the two terms, as BasicSR's ESRGAN halves it: the paper's lambda_adv = 5e-3
    comes from that code, so it means here what it meant there (the formula's plain sum would double it).

    Value and gradient are BasicSR's (``ESRGANModel.optimize_parameters``, ``basicsr/models/esrgan_model.py``):
    there too the real logits are detached and the gradient reaches the generator through both terms, the
    ``mean(d(x))`` of the first included.

    Args:
        real_logits: discriminator logits of the ground truth, (B,) or (B, 1, h, w); usually detached.
        fake_logits: discriminator logits of the generator output, same shape.

    Returns:
        The scalar loss.
    """
    real_vs_fake, fake_vs_real = _relativistic_terms(real_logits, fake_logits)
    return (_bce(real_vs_fake, 0.0) + _bce(fake_vs_real, 1.0)) / 2  # (-E[log(1 - D(y, x))] - E[log D(x, y)]) / 2


def relativistic_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic average discriminator loss ``-E[log D(y, x)] - E[log(1 - D(x, y))]``.

    Same ``D``, means and halving as ``relativistic_generator_loss`` (BasicSR weighs its real and fake halves 0.5
    each), labels swapped, so ``relativistic_discriminator_loss(r, f) == relativistic_generator_loss(f, r)``.

    The VALUE is BasicSR's; the GRADIENT is not today's BasicSR's. Here both terms are differentiated in full, each
    through the other side's mean too (``d(y) - mean(d(x))`` moves with ``d(x)``): the formula as written, and
    BasicSR v1.0.0 / v1.0.1. BasicSR since v1.1.0 (commit 91e0cae, Aug 2020: a fix for an in-place BatchNorm error in
    distributed training; unchanged to this day) detaches the other side's mean in each half,
    ``d(y) - mean(d(x)).detach()`` and ``d(x) - mean(d(y)).detach()``, so each half's gradient flows through its own
    logits only.

    Args:
        real_logits: discriminator logits of the ground truth, (B,) or (B, 1, h, w).
        fake_logits: discriminator logits of the (detached) generator output, same shape.

    Returns:
        The scalar loss.
    """
    real_vs_fake, fake_vs_real = _relativistic_terms(real_logits, fake_logits)
    return (_bce(real_vs_fake, 1.0) + _bce(fake_vs_real, 0.0)) / 2  # (-E[log D(y, x)] - E[log(1 - D(x, y))]) / 2


@torch.no_grad()
def discriminator_stats(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, float]:
    """How the discriminator is doing, for the logs: ``acc_real`` (share of ``D(y, x) > 0.5``), ``acc_fake`` (share of
    ``D(x, y) < 0.5``) and ``logit_gap`` (mean real logit minus mean fake logit).

    A healthy GAN keeps both accuracies between ~0.5 and ~0.9 and the gap of order 1; accuracies pinned at 1 with a
    growing gap mean the discriminator has won and its gradients to the generator vanish or explode.
    """
    real_vs_fake, fake_vs_real = _relativistic_terms(real_logits.detach(), fake_logits.detach())
    return {
        "acc_real": (real_vs_fake > 0).float().mean().item(),
        "acc_fake": (fake_vs_real < 0).float().mean().item(),
        "logit_gap": (upcast_half(real_logits).mean() - upcast_half(fake_logits).mean()).item(),
    }


__all__ = [
    "DISC_TYPES",
    "Discriminator",
    "discriminator_stats",
    "relativistic_discriminator_loss",
    "relativistic_generator_loss",
]
