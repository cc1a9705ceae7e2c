"""How SR outputs are measured, for a training run's validation (train_sr.py) and ``evaluate.py sr`` alike.

``sr_protocol``: PSNR / SSIM with ``scale`` border pixels cropped, on Y (BT.601, as SR papers report); ``evaluate``: a
training run's validation, whole held-out images scored by evaluate.py sr's own pieces (``SRSource``, ``run_sr``,
``score_outputs``, ``fidelity_scorers``) on Y and RGB, beside bicubic up-sampling of the same LR images (the baseline a
run must beat); optionally a labelled grid of LR | bicubic | SR | HR crops (its log line and card fact:
``asym.sr.cards.describe_validation``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..reporting.grids import save_labelled_grid
from .eval_sets import SRTestSet
from .inference import SRSource
from .leaderboard import score_outputs
from .output_cache import run_sr


def sr_protocol(scale: int, y_channel: bool = True) -> dict:
    """How SR papers measure PSNR / SSIM, as keyword arguments of asym's fidelity metrics: ``scale`` border pixels
    cropped, on the Y channel (BT.601) unless ``y_channel`` is False. The one definition, for a training run's
    validation (``evaluate``) and for ``evaluate.py sr``'s fidelity columns."""
    return {"border": scale, "y_channel": y_channel}


def fidelity_scorers(scale: int, device) -> dict[str, object]:
    """``evaluate.py sr``'s psnr and ssim scorers (asym's fidelity metrics with ``sr_protocol``), on Y (``psnr_y``,
    ``ssim_y``: its table's columns) and on RGB (``psnr``, ``ssim``)."""
    from ..metrics import create_metric

    return {f"{name}{suffix}": create_metric(name, device, **sr_protocol(scale, y_channel=on_y))
            for name in ("psnr", "ssim") for suffix, on_y in (("", False), ("_y", True))}  # fmt: skip


def evaluate(generator, dataset, device, scale: int, tile: int, grid_path: str | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM over whole validation images, border = scale, on RGB and on Y (BT.601, as SR papers report), and
    the same for bicubic up-sampling of the same LR images (``bicubic_*``; SR only), the baseline a run must beat.

    Measured as ``evaluate.py sr`` measures: the generator as an ``SRSource`` (whole images, or tiles of ``tile`` LR
    pixels), its outputs through ``run_sr`` (clamped to [0, 1], 16-bit, as the output cache keeps them), each scored by
    ``score_outputs`` with ``fidelity_scorers``, so a run's final validation equals ``evaluate.py sr --metrics
    psnr,ssim`` of the saved model on the same images.

    Optionally saves a grid of LR (nearest) | bicubic | SR | HR rows (input | reconstruction at scale 1), each a centre
    crop of at most 256 HR pixels, the columns labelled above.
    """
    test_set = SRTestSet("validation", scale, [str(i) for i in range(len(dataset))], dataset)
    sources = {"": SRSource.from_module("generator", generator, scale, device=device)}
    if scale > 1:
        sources["bicubic_"] = SRSource("bicubic", "bicubic", scale)  # key prefixes: the model's scores, bicubic's
    scorers = fidelity_scorers(scale, device)
    scores, rows = {f"{m}{k}": [] for m in sources for k in scorers}, []
    for i in range(len(test_set)):
        one = test_set.one(i)
        hr, lr = one[0].hr[None], one[0].lr[None]
        outputs = {m: run_sr(source, one, None, tile)[one.names[0]] for m, source in sources.items()}
        for method, out in outputs.items():
            for key, scorer in scorers.items():
                scores[f"{method}{key}"] += score_outputs(scorer, [out], hr, device)
        if grid_path and i < 4:  # LR (nearest) | bicubic | SR | HR; an autoencoder's (scale 1): input | output
            nearest = F.interpolate(lr, scale_factor=scale, mode="nearest")
            shown = (nearest, outputs["bicubic_"], outputs[""], hr) if scale > 1 else (hr, outputs[""])
            rows += [_centre_crop(t[0], 256) for t in shown]
    generator.train()  # SRSource put it in eval mode
    if grid_path:
        columns = (f"LR x{scale} (nearest)", "bicubic", "SR", "HR") if scale > 1 else ("input", "reconstruction")
        save_labelled_grid(grid_path, rows, columns)
    return {k: sum(v) / len(v) for k, v in scores.items()}


def _centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = image[..., top : top + size, left : left + size]
    return F.pad(crop, (0, size - crop.shape[-1], 0, size - crop.shape[-2]))  # equal tiles for the grid


__all__ = ["evaluate", "fidelity_scorers", "sr_protocol"]
