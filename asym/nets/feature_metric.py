"""The base of every metric and loss on backbone features: a frozen backbone, the input checks, reference features
computed without autograd (so a loss back-propagates only through the output), and float16 upcasting.
"""

from __future__ import annotations

import torch
from torch import nn

from ..backbones import Backbone, check_images, create_backbone

RANGE_TOLERANCE = 0.5  # inputs may overshoot [0, 1] a little (raw generator outputs), not be in [0, 255] or [-1, 1]


def check_pair(x: torch.Tensor, y: torch.Tensor, min_size: int) -> None:
    """Raise a clear ``ValueError`` for a malformed (output, reference) pair."""
    check_images(x, min_size, "x (output)")
    check_images(y, min_size, "y (reference)")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    # An output being optimised (x.requires_grad) may leave [0, 1] early in training: only data is checked.
    for name, t in (("x", x), ("y", y)) if not x.requires_grad else (("y", y),):
        lo, hi = torch.aminmax(t.detach())
        if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            raise ValueError(
                f"{name} values must lie in [0, 1], got [{lo.item():.3g}, {hi.item():.3g}]: "
                "rescale images from [0, 255] (x / 255) or [-1, 1] ((x + 1) / 2)"
            )


def upcast_half(t: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors (autocast outputs) in fp32; statistics, sums and losses need it."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class FeatureMetric(nn.Module):
    """A frozen backbone plus the (output, reference) feature pass every metric here shares."""

    def __init__(self, backbone: str | Backbone, weights: str, backbone_kwargs: dict | None):
        super().__init__()
        if isinstance(backbone, Backbone):  # an existing network, shared (the robust-loss study's P and T)
            self.backbone = backbone
        else:
            self.backbone = create_backbone(backbone, weights, **(backbone_kwargs or {}))
        self.backbone.requires_grad_(False).eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # never update BatchNorm statistics or use dropout of a frozen backbone
        return self

    def features(self, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Backbone features of output and reference; autograd records only what can need gradients."""
        check_pair(x, y, self.backbone.min_size)
        tuned = any(p.requires_grad for p in self.backbone.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and (x.requires_grad or tuned)):
            fx = self.backbone(x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and (y.requires_grad or tuned)):
            fy = self.backbone(y)
        return fx, fy


__all__ = ["FeatureMetric", "RANGE_TOLERANCE", "check_pair", "upcast_half"]
