"""A trainable quality model: any registry backbone, statistics pooled over its stages, a small regression head.

The assessment half of the asymmetry study: the same model starts from random, ImageNet or GAN-discriminator weights
(``weights="random" | "pretrained" | "gan:<run>"`` or a file), and the whole backbone is fine-tuned, so the three
initialisations differ in their weights only.

* ``mode="nr"``: ``model(x) -> (B,)``, one score per image.
* ``mode="fr"``: ``model(x, ref) -> (B,)`` from the DIFFERENCE of the two images' features, stage by stage: the mean
  absolute difference and the root-mean-square difference of each channel over space. An identical pair therefore
  always gets the same score (the head's output for a zero vector), whatever the images. This is the trainable-
  backbone variant; the paper's FR rows are the DISTS-style metrics of train_metric.py (frozen backbone).

Pooling (NR): each stage's channel means and standard deviations over space (global statistics work at any image
size, so training crops and full test images go through the same model). Stage 0, the raw image, is included as in
DISTS: its colour means and contrast (NR) and its pixel differences (FR, a PSNR-like cue) are quality cues no
network stage has to relearn.
Head: a signed log of the statistics (``SignedLog``: they span orders of magnitude across stages; a per-sample
normalisation would remove the amount of distortion itself), then Linear -> GELU -> Linear. Scores: higher is
better, on the scale of the training scores (``score_mean`` / ``score_std`` of the oriented training MOS; negated
when the training scores were lower-is-better).
VGG backbones use max pooling, as the discriminators do (``max_pooling_kwargs``), so ``gan:`` weights run in the
architecture they were trained in.
"""

from __future__ import annotations

import torch
from torch import nn

from ..backbones import Backbone, create_backbone, max_pooling_kwargs
from ..core.hub import HubModel
from .feature_metric import upcast_half

MODES = ("nr", "fr")


class SignedLog(nn.Module):
    """``sign(x) log(1 + |x| / eps)``: pooled statistics span orders of magnitude across stages and images; the log
    compresses them while keeping their size (a per-sample normalisation such as LayerNorm would divide out the
    overall amount of distortion or contrast, the very signal quality lives in). ~``log|x|`` above ``eps``."""

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sign(x) * torch.log1p(x.abs() / self.eps)


class IQAModel(nn.Module, HubModel, tags=["image-quality-assessment", "iqa"]):
    """Backbone + pooled stage statistics + regression head -> one quality score per image (higher is better).

    Args:
        backbone: registry name (``asym.list_backbones()``), ``timm:<name>`` or ``hf:<id>``.
        mode: ``"nr"`` (score an image) or ``"fr"`` (score a distorted image against its reference).
        weights: initial backbone weights: ``random``, ``pretrained``, ``auto``, ``gan:<run>``, a file or Hub id.
        backbone_kwargs: extra backbone constructor arguments (VGG defaults to max pooling).
        head_width: hidden width of the regression head.
        score_mean: mean of the (oriented) training scores: the head predicts standardised scores.
        score_std: their standard deviation.
    """

    def __init__(self, backbone: str = "vgg16", mode: str = "nr", weights: str = "random",
                 backbone_kwargs: dict | None = None, head_width: int = 256, score_mean: float = 0.0,
                 score_std: float = 1.0):  # fmt: skip
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: choose nr or fr")
        if not score_std > 0:
            raise ValueError(f"score_std must be positive, got {score_std}")
        self.backbone: Backbone = create_backbone(backbone, weights, **max_pooling_kwargs(backbone, backbone_kwargs))
        self.backbone_name, self.mode = backbone, mode
        self.score_mean, self.score_std = float(score_mean), float(score_std)
        features = 2 * sum(self.backbone.channels)  # two statistics per channel of every stage, the input included
        self.head = nn.Sequential(SignedLog(), nn.Linear(features, head_width), nn.GELU(), nn.Linear(head_width, 1))

    def _backbone_is_stored(self) -> bool:
        return True  # fine-tuned: its starting weights are not enough to rebuild it

    def card_description(self) -> str:
        what = "an image" if self.mode == "nr" else "a distorted image against its reference"
        return (
            f"{self.mode.upper()} quality model on the `{self.backbone_name}` backbone (started from: "
            f"{self.backbone.weights_source}; fine-tuned, stored here), scoring {what}: higher is better, on the "
            f"training scores' scale (mean {self.score_mean:.4g}, std {self.score_std:.4g})."
        )

    def pooled_features(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 2 * sum of stage channels): per-channel statistics of each stage, the input included (NR), or of the
        feature difference between ``x`` and ``ref`` (FR); computed in float32 under mixed precision."""
        if self.mode == "fr":
            if ref is None:
                raise ValueError("an FR IQAModel needs the reference: model(x, ref)")
            if ref.shape != x.shape:
                raise ValueError(f"x and ref must have one shape, got {tuple(x.shape)} and {tuple(ref.shape)}")
            both = self.backbone(torch.cat([x, ref]))  # one pass: BatchNorm sees both halves alike
            stats = []
            for feat in both:
                diff = upcast_half(feat[: len(x)] - feat[len(x) :]).flatten(2)
                stats += [diff.abs().mean(-1), diff.square().mean(-1).add(1e-12).sqrt()]
            return torch.cat(stats, dim=1)
        if ref is not None:
            raise ValueError("an NR IQAModel scores single images: call model(x)")
        stats = []
        for feat in self.backbone(x):
            flat = upcast_half(feat).flatten(2)
            stats += [flat.mean(-1), flat.var(-1, unbiased=False).add(1e-12).sqrt()]
        return torch.cat(stats, dim=1)

    def forward(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """Quality of images in [0, 1] (and their references in FR mode): (B,), higher is better."""
        return self.standardised(x, ref) * self.score_std + self.score_mean

    def standardised(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """The head's output (B,): the score in standard deviations of the training scores (what the loss sees)."""
        return self.head(self.pooled_features(x, ref).float()).squeeze(1)

    def parameter_groups(self, backbone_lr: float, head_lr: float) -> list[dict]:
        """Optimiser groups: the backbone is fine-tuned more gently than the freshly initialised head."""
        return [
            {"params": list(self.backbone.parameters()), "lr": backbone_lr},
            {"params": list(self.head.parameters()), "lr": head_lr},
        ]


__all__ = ["MODES", "IQAModel"]
