"""What every backbone is: (B, 3, H, W) images in [0, 1] -> ``[x, f1, ..., fN]``, its input normalisation, its
channels per stage and the smallest input it takes; the L2 pooling of DISTS' VGG; the input check every model uses."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

WEIGHT_MODES = ("auto", "pretrained", "random")


def check_images(x: torch.Tensor, min_size: int = 1, name: str = "input") -> None:
    """Raise a clear ``ValueError`` unless ``x`` is a (B, 3, H, W) batch at least ``min_size`` pixels high and wide.

    A wrong shape is a caller's bug (``ValueError``); images that are too small are the user's data or settings
    (``UserError``, e.g. a crop size below the backbone's minimum), so a script reports them in one line.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, 3, H, W) image tensor, got {shape}")
    if x.shape[1] != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels, got {x.shape[1]} in shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if min(height, width) < min_size:
        raise UserError(f"{name} of {height}x{width} is too small: this backbone needs at least {min_size}x{min_size}")


class L2Pool(nn.Module):
    """DISTS's L2 pooling: sqrt of a 3x3 Hanning-weighted blur of x^2, stride 2 (replaces max-pooling)."""

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor(np.hanning(5)[1:-1], dtype=torch.float32)  # [0.5, 1, 0.5]
        kernel = taps[:, None] * taps[None, :]
        kernel = kernel / kernel.sum()
        # Not persistent: the filter is a constant, so checkpoints keep torchvision's key layout.
        self.register_buffer("filter", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x.square(), self.filter, stride=2, padding=1, groups=x.shape[1])
        return out.add_(1e-12).sqrt_()  # in place: the conv output is not needed for its backward


class Backbone(nn.Module):
    """Base class: normalise the input, run ``stages`` and return ``[x, stage1, ..., stageN]``.

    Subclasses set ``self.model`` (the wrapped network, whose state-dict layout is that of its library)
    and implement ``extract`` (normalised input -> list of NCHW maps).
    """

    channels: list[int]
    min_size: int
    name: str = ""
    weights_source: str = ""

    def __init__(self, mean, std, channels: list[int], min_size: int, channels_last: bool = False):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.channels = [3, *channels]
        self.min_size = min_size
        # oneDNN and cuDNN run convolutions faster in NHWC (~1.2x for VGG-16 on CPU): conv nets stay channels-last.
        self.channels_last = channels_last

    def extract(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_images(x, self.min_size)
        h = (x - self.mean) / self.std
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        return [x, *self.extract(h)]


__all__ = [
    "Backbone",
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "L2Pool",
    "WEIGHT_MODES",
    "check_images",
]
