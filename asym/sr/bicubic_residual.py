"""``tiny``: a small CNN that learns the residual over bicubic up-sampling, the generator of the CPU demo and tests.

Features at LR resolution (conv 3x3 + ReLU, then conv-ReLU-conv residual blocks), one convolution to 3 * scale^2
channels and a pixel shuffle (ESPCN's sub-pixel convolution), added to the bicubic up-sampling of the input. The last
convolution starts at zero, so the untrained network *is* bicubic interpolation and training can only improve on it
from the first step: on a CPU minute it learns sharper edges, where a randomly initialised SwinIR is still noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import bicubic_upsample
from .enhancenet import ResidualBlock


class BicubicResidualSR(nn.Module):
    """(B, 3, h, w) in [0, 1] -> (B, 3, scale*h, scale*w): bicubic up-sampling plus a learned residual, zero at start.

    Args:
        scale: 2, 3 or 4.
        num_features: channels of the hidden convolutions.
        num_blocks: residual blocks at LR resolution.
    """

    def __init__(self, scale: int = 4, num_features: int = 32, num_blocks: int = 4):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, num_features, 3, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(num_features) for _ in range(num_blocks)))
        self.tail = nn.Conv2d(num_features, 3 * scale**2, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # step 0 == bicubic
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        residual = F.pixel_shuffle(self.tail(self.blocks(F.relu(self.head(lr)))), self.scale)
        return bicubic_upsample(lr, self.scale) + residual


__all__ = ["BicubicResidualSR"]
