"""The robust-loss study's feature losses on any backbone (default VGG-19 after ReLU).

* ``FeatureLoss``: weighted MSE between chosen stages (the classic "VGG loss", the study's P).
* ``GramTextureLoss``: weighted distance between Gram matrices of 16x16 patches (EnhanceNet's texture loss, T).
* ``FeatureTextureLoss``: P and T on one backbone, its features computed once per batch (train_sr.py).

All take ``(x, y)`` = (output, reference), images in [0, 1], and return one value per image (B,), lower is better.
"""

from __future__ import annotations

import torch

from ..backbones import Backbone
from .feature_metric import FeatureMetric, upcast_half


class FeatureLoss(FeatureMetric):
    """Weighted MSE between backbone stages: ``sum_k w_k mean((phi_k(x) - phi_k(y))^2)``.

    The default is the robust-loss study's P term: VGG-19 after ReLU, block 2 weight 0.2, block 5 weight 0.02.
    """

    def __init__(
        self,
        backbone: str = "vgg19",
        weights: str = "auto",
        layers: dict[int, float] | None = None,
        backbone_kwargs: dict | None = None,
    ):
        super().__init__(backbone, weights, backbone_kwargs)
        self.layers = _check_layers(layers or FEAT_LAYERS, self.backbone)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return feature_distance(*self.features(x, y), self.layers)


class GramTextureLoss(FeatureMetric):
    """EnhanceNet's texture loss: squared Frobenius distance of Gram matrices of 16x16-pixel patches.

    Each stage's map is cut into the cells that cover ``patch_size`` x ``patch_size`` input pixels
    (a ``patch_size / stride`` square, at least one position); per cell ``G = F F^T`` with F the
    (C, positions) features, unnormalised as in EnhanceNet, hence the tiny default weights
    (layers 1/3/5: 3e-7, 1e-6, 1e-6). The per-image loss averages over cells and sums over layers.
    Incomplete border cells are dropped.
    """

    def __init__(
        self,
        backbone: str = "vgg19",
        weights: str = "auto",
        layers: dict[int, float] | None = None,
        patch_size: int = 16,
        backbone_kwargs: dict | None = None,
    ):
        super().__init__(backbone, weights, backbone_kwargs)
        self.layers = _check_layers(layers or TEXTURE_LAYERS, self.backbone)
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_patch(x, self.patch_size)
        return texture_distance(*self.features(x, y), self.layers, self.patch_size, x.shape[-1])


FEAT_LAYERS = {2: 0.2, 5: 0.02}  # the study's P: VGG-19 blocks 2 and 5 after ReLU
TEXTURE_LAYERS = {1: 3e-7, 3: 1e-6, 5: 1e-6}  # the study's T (EnhanceNet's): blocks 1, 3 and 5


class FeatureTextureLoss(FeatureMetric):
    """The robust-loss study's P and T terms on one backbone, whose features are computed once per batch.

    ``forward`` returns ``{"feat": (B,), "texture": (B,)}`` for the terms asked for (``feat_layers`` /
    ``texture_layers`` None drops a term); each equals ``FeatureLoss`` / ``GramTextureLoss`` on the same network.
    ``backbone`` may be an existing ``Backbone`` (e.g. a robust VGG-19 with normalised feature maps).
    """

    def __init__(
        self,
        backbone: str | Backbone = "vgg19",
        weights: str = "auto",
        feat_layers: dict[int, float] | None = FEAT_LAYERS,
        texture_layers: dict[int, float] | None = TEXTURE_LAYERS,
        patch_size: int = 16,
        backbone_kwargs: dict | None = None,
    ):
        super().__init__(backbone, weights, backbone_kwargs)
        self.feat_layers = _check_layers(feat_layers, self.backbone) if feat_layers else None
        self.texture_layers = _check_layers(texture_layers, self.backbone) if texture_layers else None
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.texture_layers:
            _check_patch(x, self.patch_size)
        fx, fy = self.features(x, y)
        terms = {}
        if self.feat_layers:
            terms["feat"] = feature_distance(fx, fy, self.feat_layers)
        if self.texture_layers:
            terms["texture"] = texture_distance(fx, fy, self.texture_layers, self.patch_size, x.shape[-1])
        return terms


def feature_distance(fx: list[torch.Tensor], fy: list[torch.Tensor], layers: dict[int, float]) -> torch.Tensor:
    """``sum_k w_k mean((fx_k - fy_k)^2)`` per image (B,)."""
    loss = 0
    for k, w in layers.items():
        loss = loss + w * (upcast_half(fx[k]) - upcast_half(fy[k])).square().mean([1, 2, 3])
    return loss


def texture_distance(fx: list[torch.Tensor], fy: list[torch.Tensor], layers: dict[int, float], patch_size: int,
                     width: int) -> torch.Tensor:  # fmt: skip
    """Per image (B,): over layers, ``w_k`` x the mean over cells of the squared Frobenius distance of the Gram
    matrices of the cells covering ``patch_size`` input pixels (``width``: the input's width, to size the cells)."""
    loss = 0
    for k, w in layers.items():
        cell = max(1, round(patch_size * fx[k].shape[-1] / width))
        gx, gy = _patch_grams(upcast_half(fx[k]), cell), _patch_grams(upcast_half(fy[k]), cell)
        loss = loss + w * (gx - gy).square().sum([2, 3]).mean(1)
    return loss


def _check_patch(x: torch.Tensor, patch_size: int) -> None:
    if min(x.shape[-2:]) < patch_size:
        raise ValueError(f"images of {tuple(x.shape[-2:])} are smaller than one {patch_size}px texture patch")


def _patch_grams(f: torch.Tensor, cell: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, cells, C, C) Gram matrices of non-overlapping ``cell`` x ``cell`` windows."""
    b, c, h, w = f.shape
    rows, cols = h // cell, w // cell
    f = f[:, :, : rows * cell, : cols * cell].reshape(b, c, rows, cell, cols, cell)
    f = f.permute(0, 2, 4, 1, 3, 5).reshape(b, rows * cols, c, cell * cell)
    return f @ f.transpose(-1, -2)


def _check_layers(layers: dict[int, float], backbone: Backbone) -> dict[int, float]:
    layers = {int(k): float(v) for k, v in layers.items()}
    bad = [k for k in layers if not 0 <= k < len(backbone.channels)]
    if bad:
        raise ValueError(
            f"layers {bad} do not exist: backbone {backbone.name!r} has stages 0..{len(backbone.channels) - 1}"
        )
    return layers


__all__ = ["FEAT_LAYERS", "TEXTURE_LAYERS", "FeatureLoss", "FeatureTextureLoss", "GramTextureLoss", "feature_distance",
           "texture_distance"]  # fmt: skip
