"""The SR validation protocol of a training run (train_sr.py): whole held-out images, PSNR / SSIM with ``scale``
border pixels cropped, on RGB and on Y (BT.601, as SR papers report), beside bicubic up-sampling of the same LR images
(the baseline a run must beat); optionally a labelled grid of LR | bicubic | SR | HR crops. ``describe_validation``
is its log line and card fact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..metrics.fidelity import psnr, ssim
from ..reporting.grids import save_labelled_grid
from .data import bicubic_upsample
from .models import upscale


def sr_protocol(scale: int, y_channel: bool = True) -> dict:
    """How SR papers measure PSNR / SSIM, as keyword arguments of asym's fidelity metrics: ``scale`` border pixels
    cropped, on the Y channel (BT.601) unless ``y_channel`` is False. The one definition, for a training run's
    validation (``evaluate``) and for ``evaluate.py sr``'s fidelity columns."""
    return {"border": scale, "y_channel": y_channel}


def evaluate(generator, dataset, device, scale: int, tile: int, grid_path: str | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM over whole validation images, border = scale, on RGB and on Y (BT.601, as SR papers report), and
    the same for bicubic up-sampling of the same LR images (``bicubic_*``; SR only), the baseline a run must beat.

    Optionally saves a grid of LR (nearest) | bicubic | SR | HR rows (input | reconstruction at scale 1), each a centre
    crop of at most 256 HR pixels, the columns labelled above.
    """
    methods = ("", "bicubic_") if scale > 1 else ("",)  # key prefixes: the model's scores, bicubic's
    scores, rows = {f"{m}{k}": [] for m in methods for k in ("psnr", "ssim", "psnr_y", "ssim_y")}, []
    generator.eval()
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            lr, hr = item["lr"][None].to(device), item["hr"][None].to(device)
            sr = upscale(generator, lr, scale, tile).float().clamp(0, 1)
            outputs = {"": sr, "bicubic_": bicubic_upsample(lr, scale).clamp(0, 1)}
            for method in methods:
                for suffix, on_y in (("", False), ("_y", True)):
                    out = outputs[method]
                    protocol = sr_protocol(scale, y_channel=on_y)
                    scores[f"{method}psnr{suffix}"].append(psnr(out, hr, **protocol).item())
                    scores[f"{method}ssim{suffix}"].append(ssim(out, hr, **protocol).item())
            if grid_path and i < 4:  # LR (nearest) | bicubic | SR | HR; an autoencoder's (scale 1): input | output
                nearest = F.interpolate(lr, scale_factor=scale, mode="nearest")
                shown = (nearest, outputs["bicubic_"], sr, hr) if scale > 1 else (hr, sr)
                rows += [_centre_crop(t[0], 256) for t in shown]
    generator.train()
    if grid_path:
        columns = (f"LR x{scale} (nearest)", "bicubic", "SR", "HR") if scale > 1 else ("input", "reconstruction")
        save_labelled_grid(grid_path, rows, columns)
    return {k: sum(v) / len(v) for k, v in scores.items()}


def describe_validation(scores: dict[str, float]) -> str:
    """Validation scores on Y (BT.601), with bicubic's on the same images when measured."""
    text = f"Y (BT.601): PSNR {scores['psnr_y']:.2f} dB, SSIM {scores['ssim_y']:.4f}"
    if "bicubic_psnr_y" in scores:
        text += f" (bicubic: {scores['bicubic_psnr_y']:.2f} dB, {scores['bicubic_ssim_y']:.4f})"
    return text


def _centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = image[..., top : top + size, left : left + size]
    return F.pad(crop, (0, size - crop.shape[-1], 0, size - crop.shape[-2]))  # equal tiles for the grid


__all__ = ["describe_validation", "evaluate", "sr_protocol"]
