"""Full-reference fidelity scores used to monitor super-resolution: PSNR and SSIM.

Computed on RGB in [0, 1] after cropping ``border`` pixels on each side (the scale factor, as in
BasicSR), one value per image. SSIM is scikit-image's (Gaussian window, sigma 1.5, as Wang et al.).
"""

from __future__ import annotations

import numpy as np
import torch


def _crop(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border:-border, border:-border] if border > 0 else x


def psnr(x: torch.Tensor, y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for (B, 3, H, W) images in [0, 1]."""
    mse = (_crop(x, border).clamp(0, 1) - _crop(y, border)).double().square().mean([1, 2, 3])
    return (-10 * torch.log10(mse.clamp_min(1e-12))).float()


def ssim(x: torch.Tensor, y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Structural similarity per image, for (B, 3, H, W) images in [0, 1]."""
    from skimage.metrics import structural_similarity

    a = _crop(x, border).clamp(0, 1).detach().float().cpu().numpy()
    b = _crop(y, border).detach().float().cpu().numpy()
    values = [
        structural_similarity(
            p, q, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )  # fmt: skip
        for p, q in zip(a, b)
    ]
    return torch.tensor(np.array(values, dtype=np.float32))


__all__ = ["psnr", "ssim"]
