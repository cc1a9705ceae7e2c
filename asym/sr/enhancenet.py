"""EnhanceNet (Sajjadi et al., ICCV 2017), the generator of the robust-perceptual-loss study, written from the paper.

A residual network on the LR image whose output is added to the bicubic up-sampling of the input: conv 3x3 64 +
ReLU; 10 residual blocks (conv-ReLU-conv + identity); nearest-neighbour up-sampling x2 + conv 64 + ReLU, twice (x4;
one stage of x2 or x3 for the other scales); conv 64 + ReLU; conv -> 3. With the last convolution zeroed the
network returns exactly the bicubic image, which is where training starts from in spirit: it learns the detail
bicubic interpolation misses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import bicubic_upsample


class ResidualBlock(nn.Module):
    """conv 3x3 - ReLU - conv 3x3, plus the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class EnhanceNet(nn.Module):
    """EnhanceNet: (B, 3, h, w) in [0, 1] -> (B, 3, scale*h, scale*w), bicubic up-sampling plus a learned residual.

    Args:
        scale: 2, 3 or 4 (the paper: 4, two nearest x2 stages).
        num_features: channels of every hidden convolution (64).
        num_blocks: residual blocks (10).
    """

    def __init__(self, scale: int = 4, num_features: int = 64, num_blocks: int = 10):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, num_features, 3, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(num_features) for _ in range(num_blocks)))
        factors = {2: [2], 3: [3], 4: [2, 2]}[scale]
        self.upsample_factors = factors
        self.upsample = nn.ModuleList(nn.Conv2d(num_features, num_features, 3, padding=1) for _ in factors)
        self.conv = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.tail = nn.Conv2d(num_features, 3, 3, padding=1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.head(lr)))
        for factor, conv in zip(self.upsample_factors, self.upsample):
            x = F.relu(conv(F.interpolate(x, scale_factor=factor, mode="nearest")))
        return bicubic_upsample(lr, self.scale) + self.tail(F.relu(self.conv(x)))


__all__ = ["EnhanceNet", "ResidualBlock"]
