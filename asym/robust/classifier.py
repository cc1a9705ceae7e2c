"""Adversarially robust classifiers, the feature sources of the robust-perceptual-loss study (Uelwer et al.).

The study trains VGG-19 / ResNet-50 ImageNet classifiers with PGD adversarial training under an L2 ball plus
adversarial logit pairing (ALP, Kannan et al. 2018) and uses their features as perceptual losses. This module holds
what ``train_robust.py`` needs for that, and what reads its results back:

* ``Classifier``: a registry backbone, global average pooling of its last stage and a linear head; images in [0, 1]
  (the backbone normalises them itself). Saved with ``save_pretrained``; its backbone tensors also load as backbone
  weights: ``create_backbone("vgg19", weights="<train_robust.py output>")``.
* ``adversarial_logit_pairing``: ``1/d ||F(x) - F(x_adv)||^2`` per example, averaged over the batch.
* ``adversarial_examples`` (PGD on the cross-entropy, via ``asym.nets.pgd.pgd_attack``) and ``robust_accuracy``
  (clean and PGD-K accuracy on a dataset).

Attack radii are L2 (or L-inf) norms of the perturbation of a whole image in [0, 1] pixel units, as in the robustness
library (its ImageNet L2 models use eps 3.0). The study's eps 3.88 / 5.82 are 0.01 / 0.015 x sqrt(3 x 224 x 224): a
root-mean-square change of 0.01 / 0.015 per value of a 224x224 image; at another crop size the same RMS needs
eps x side / 224.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import Backbone, create_backbone, max_pooling_kwargs
from ..core.errors import UserError
from ..core.hub import HubModel
from ..nets.pgd import NORMS, default_step_size, pgd_attack


class Classifier(nn.Module, HubModel, tags=["image-classification", "adversarial-robustness"]):
    """Backbone + global average pooling of its last stage + linear head -> class logits.

    Args:
        backbone: registry name (``asym.list_backbones()``), ``timm:<name>`` or ``hf:<id>``.
        num_classes: size of the head.
        weights: initial backbone weights (``random``, ``pretrained``, ``auto``, a file, ``gan:<run>``, ...).
        backbone_kwargs: extra backbone constructor arguments (VGG defaults to max pooling, its classifier form).
        class_names: one name per class, or None.
    """

    card_pipeline_tag = "image-classification"  # the Hub task it performs (the model card's pipeline_tag)

    def __init__(self, backbone: str = "vgg19", num_classes: int = 1000, weights: str = "random",
                 backbone_kwargs: dict | None = None, class_names: list[str] | None = None):  # fmt: skip
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got num_classes={num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
        self.backbone: Backbone = create_backbone(backbone, weights, **max_pooling_kwargs(backbone, backbone_kwargs))
        self.backbone_name, self.num_classes = backbone, int(num_classes)
        self.class_names = list(map(str, class_names)) if class_names is not None else None
        self.head = nn.Linear(self.backbone.channels[-1], self.num_classes)

    def _backbone_is_stored(self) -> bool:
        return True  # trained: its starting weights are not enough to rebuild it

    def card_description(self) -> str:
        return (
            f"Image classifier on the `{self.backbone_name}` backbone (started from: {self.backbone.weights_source}; "
            f"trained, stored here): global average pooling of its last stage and a linear head to "
            f"{self.num_classes} classes, images in [0, 1]. Its backbone loads as feature weights with "
            f'`asym.create_backbone("{self.backbone_name}", weights="<this folder>")`.'
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of images in [0, 1], (B, 3, H, W)."""
        return self.head(self.backbone(x)[-1].float().mean((-2, -1)))


def adversarial_logit_pairing(logits_clean: torch.Tensor, logits_adv: torch.Tensor) -> torch.Tensor:
    """ALP: ``1/d ||F(x) - F(x_adv)||^2`` per example (d = number of classes), averaged over the batch."""
    if logits_clean.shape != logits_adv.shape or logits_clean.dim() != 2:
        raise ValueError(f"ALP needs two (B, classes) logit tensors of one shape, got {tuple(logits_clean.shape)} "
                         f"and {tuple(logits_adv.shape)}")  # fmt: skip
    return (logits_clean - logits_adv).square().mean(1).mean()


def check_attack(what: str, norm: str, eps: float, steps: int, step_size: float | None) -> None:
    """A usable attack setting, else one ``UserError`` naming the flags (``what`` is their prefix)."""
    if norm not in NORMS:
        raise UserError(f"--{what}_norm {norm!r} is unknown: use one of {', '.join(NORMS)}")
    if not eps >= 0 or steps < 0 or (step_size is not None and not step_size > 0):
        raise UserError(f"--{what}_eps ({eps}), --{what}_steps ({steps}) and --{what}_step_size ({step_size}) must "
                        "be non-negative (the step size positive)")  # fmt: skip
    if norm == "linf" and eps >= 1:
        raise UserError(f"--{what}_eps {eps} under --{what}_norm linf covers the whole [0, 1] pixel range (it looks "
                        f"like an L2 radius): pass an L-inf radius such as 0.0157 (4/255)")  # fmt: skip


def adversarial_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                         step_size: float | None = None, norm: str = "l2", random_start: bool = False,
                         generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """PGD examples that raise the cross-entropy of ``model`` on labels ``y`` (untargeted), within ``eps`` of ``x``.

    The model is attacked in eval mode (BatchNorm running statistics, no dropout), as the robustness library does,
    and put back in its previous mode. The step size defaults to ``2.5 * eps / steps``.
    """
    if steps == 0 or eps == 0:
        return x.detach()

    def loss(images: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(images).float(), y, reduction="none")

    training = model.training
    model.eval()
    try:
        return pgd_attack(loss, x, eps, steps, step_size, norm, random_start, generator=generator)
    finally:
        model.train(training)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def robust_accuracy(model: nn.Module, dataset, eps: float, steps: int, step_size: float | None = None,
                    norm: str = "l2", batch_size: int = 64, device: str | torch.device = "cpu",
                    progress: bool = False) -> dict:  # fmt: skip
    """Clean and PGD-``steps`` accuracy of ``model`` on ``dataset`` (items ``{"image", "label"}``), in eval mode.

    The attack maximises the cross-entropy from the clean image (no random start, so the result is deterministic),
    step size default ``2 * eps / steps`` (the study's 0.155 for eps 3.88, 50 steps). An image counts as robust only
    if it is classified correctly at EVERY iterate, the clean image and the last one included: any iterate is an
    adversarial example within the ball, so this is at least as strong as judging the last iterate (or the
    robustness library's highest-loss one). Images already misclassified stop being attacked, which makes weak
    models cheap to evaluate.

    Returns:
        ``{"clean_accuracy", "pgd_accuracy", "n", "attack"}``; ``attack`` describes the attack in words.
    """
    step_size = step_size if step_size is not None else default_step_size(eps, steps, 2.0)
    training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    clean_correct = robust_correct = total = 0
    try:
        from ..core.progress import tqdm

        for batch in tqdm(loader, desc="PGD evaluation", disable=not progress, leave=False):
            x, y = batch["image"].to(device), batch["label"].to(device)
            alive = _predict(model, x) == y  # correctly classified at every iterate so far
            clean_correct += int(alive.sum())
            if steps and eps and alive.any():
                adv = pgd_attack(_tracking_loss(model, y, alive), x, eps, steps, step_size, norm)
                index = alive.nonzero().squeeze(1)  # the last iterate, which the loss never saw
                alive[index] = _predict(model, adv[index]) == y[index]
            robust_correct += int(alive.sum())
            total += len(y)
    finally:
        model.train(training)
    attack = f"PGD-{steps}, {norm.upper()} eps {eps:g}, step {step_size:.4g}, no random start"
    return {"clean_accuracy": clean_correct / max(total, 1), "pgd_accuracy": robust_correct / max(total, 1),
            "n": total, "attack": attack}  # fmt: skip


def _tracking_loss(model: nn.Module, y: torch.Tensor, alive: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-image cross-entropy for ``pgd_attack`` that marks the images misclassified at the iterate it is given as no
    longer ``alive`` (in place) and computes nothing more for them: their loss is a constant 0, so they stop moving."""

    def loss(images: torch.Tensor) -> torch.Tensor:
        out = 0 * images.flatten(1)[:, 0]  # zeros connected to the input: the gradient is defined and 0
        index = alive.nonzero().squeeze(1)
        if len(index):
            logits = model(images[index]).float()
            alive[index[logits.argmax(1) != y[index]]] = False
            out = out.index_put((index,), F.cross_entropy(logits, y[index], reduction="none"))
        return out

    return loss


__all__ = [
    "Classifier",
    "adversarial_examples",
    "adversarial_logit_pairing",
    "check_attack",
    "robust_accuracy",
]
