"""Can a quality metric serve as an optimisation objective? Two diagnostics from the asymmetry paper.

A metric that agrees with human judgements is not necessarily a good loss (the asymmetry paper, arXiv:2509.20878): if it
is insensitive to some distortion, gradient descent on it has no reason to remove that distortion.

* ``recover_from_noise``: start from noise and minimise ``metric(x, reference)`` over the pixels of x.
  A faithful loss drives x back to the reference (high PSNR/SSIM); a texture-tolerant one such as
  DISTS recovers the reference's textures but not its exact pixels.
* ``synthesize_texture``: the same optimisation towards a texture exemplar, judged by eye: texture
  (Gram-matrix) losses should produce new instances of the texture, not copies.

Pixels are optimised directly with Adam and clamped to [0, 1] after every step (projected gradient
descent): unlike a sigmoid parametrisation this does not slow down saturated (near 0 or 1) pixels,
and ``lr`` is a step size in pixel units. Only x receives gradients; a metric's own parameters
(e.g. trainable DISTS alpha/beta) are left untouched, their ``.grad`` included.

``save_images`` writes such results side by side as one PNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .fidelity import psnr, ssim

Metric = Callable[[Tensor, Tensor], Tensor]
INITS = ("noise", "gray", "blur")
# Offset of the local generator's seed: with ``torch.manual_seed(0); reference = torch.rand(...)`` a plain
# ``seed=0`` would draw the reference itself as the "noise" and start at the optimum.
SEED_OFFSET = 0x5EED


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(SEED_OFFSET + seed)


def _initial_image(reference: Tensor, init: str, generator: torch.Generator) -> Tensor:
    if init == "noise":  # drawn on the CPU so that a seed gives the same start on every device
        x = torch.rand(reference.shape, generator=generator)
    elif init == "gray":
        x = torch.full(reference.shape, 0.5)
    elif init == "blur":  # the reference under a heavy Gaussian blur: can the metric restore the detail?
        from torchvision.transforms.functional import gaussian_blur

        sigma = min(reference.shape[-2:]) / 16  # kernel radius 3 sigma stays below the reflect-padding limit
        size = 2 * math.ceil(3 * sigma) + 1
        return gaussian_blur(reference.detach().float(), [size, size], [sigma, sigma]).clamp(0, 1).to(reference)
    else:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return x.to(device=reference.device, dtype=reference.dtype)


def _optimise(metric: Metric, target: Tensor, x: Tensor, steps: int, lr: float, callback) -> tuple[Tensor, list]:
    """Adam on the pixels of x towards ``metric(x, target).mean()``, clamped to [0, 1] after each step."""
    target = target.detach()
    x = x.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr)
    losses = []
    for step in range(steps):
        loss = metric(x, target).mean()
        (grad,) = torch.autograd.grad(loss, [x])  # gradients for x only, none accumulate in the metric
        x.grad = grad
        optimiser.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        losses.append(loss.item())
        if callback is not None:
            callback(step, x.detach())
    return x.detach(), losses


def recover_from_noise(
    metric: Metric,
    reference: Tensor,
    steps: int = 200,
    lr: float = 0.01,
    seed: int = 0,
    init: str = "noise",
    callback: Callable[[int, Tensor], None] | None = None,
) -> dict:
    """Minimise ``metric(x, reference)`` over the pixels of x, starting far from the reference.

    Args:
        metric: ``(output, reference) -> (B,)`` distance, lower is better (e.g. ``asym.DISTS(...)``).
        reference: (B, 3, H, W) images in [0, 1].
        steps, lr: Adam iterations and step size (pixel units).
        seed: seed of the initial noise (a local CPU generator, offset by ``SEED_OFFSET``; the global
            RNG is untouched).
        init: ``"noise"`` (uniform), ``"gray"`` (constant 0.5) or ``"blur"`` (heavily blurred reference).
        callback: called as ``callback(step, x)`` after each step (0-based), x detached.

    Returns:
        ``{"image": recovered (B, 3, H, W) in [0, 1], "init": starting image, "loss": per-step
        losses (before each update), "psnr": (B,) dB, "ssim": (B,)}``, the last two of the
        recovered image against the reference: how much of the reference the metric pins down.
    """
    generator = _generator(seed)
    x0 = _initial_image(reference, init, generator)
    image, losses = _optimise(metric, reference, x0, steps, lr, callback)
    reference = reference.detach()
    return {"image": image, "init": x0, "loss": losses, "psnr": psnr(image, reference), "ssim": ssim(image, reference)}


def synthesize_texture(
    metric: Metric,
    texture: Tensor,
    size: int | tuple[int, int] | None = None,
    steps: int = 200,
    lr: float = 0.01,
    seed: int = 0,
    callback: Callable[[int, Tensor], None] | None = None,
) -> dict:
    """Texture synthesis: from uniform noise of ``size``, minimise ``metric(x, texture)``.

    Full-reference metrics need equal shapes, so for a ``size`` other than the texture's (the
    default) x is compared with a fixed, seeded crop of the texture tiled periodically to cover
    ``size`` (a plain random crop when ``size`` is smaller). Meant for texture losses such as
    ``asym.GramTextureLoss``; a pixel-exact metric simply reproduces that crop.

    Returns ``{"image": (B, 3, *size) in [0, 1], "init": the noise, "target": the texture (crop)
    compared against, "loss": per-step losses}``.
    """
    h, w = texture.shape[-2:]
    if size is None:
        size = (h, w)
    elif isinstance(size, int):
        size = (size, size)
    size = (int(size[0]), int(size[1]))
    generator = _generator(seed)
    target = texture.detach()
    if size != (h, w):
        reps = (math.ceil(size[0] / h) + (size[0] > h), math.ceil(size[1] / w) + (size[1] > w))
        tiled = target.repeat(1, 1, *reps)
        top = int(torch.randint(tiled.shape[-2] - size[0] + 1, (1,), generator=generator))
        left = int(torch.randint(tiled.shape[-1] - size[1] + 1, (1,), generator=generator))
        target = tiled[..., top : top + size[0], left : left + size[1]]
    x0 = _initial_image(target, "noise", generator)
    image, losses = _optimise(metric, target, x0, steps, lr, callback)
    return {"image": image, "init": x0, "target": target, "loss": losses}


def save_images(path: str, images: dict[str, Tensor], padding: int = 2) -> Tensor:
    """Write the images side by side as one PNG and return that grid (3, rows, cols) in [0, 1].

    Each value is a (B, 3, H, W) or (3, H, W) batch; columns follow the dict order (e.g. noise |
    recovered | reference), one row per batch item (batch sizes must agree). Smaller images are
    padded at the bottom/right to the largest size. The keys only fix the order: no labels are drawn.
    """
    from torchvision.utils import make_grid, save_image

    if not images:
        raise ValueError("save_images needs at least one image")
    batches = [t.detach().float().cpu().clamp(0, 1) for t in images.values()]
    batches = [t.unsqueeze(0) if t.dim() == 3 else t for t in batches]
    if len({t.shape[0] for t in batches}) != 1:
        raise ValueError(f"batch sizes differ: { {k: t.shape[0] for k, t in zip(images, batches)} }")
    height, width = max(t.shape[-2] for t in batches), max(t.shape[-1] for t in batches)
    batches = [F.pad(t, (0, width - t.shape[-1], 0, height - t.shape[-2])) for t in batches]
    tiles = torch.stack(batches, dim=1).flatten(0, 1)  # row-major: item 0's columns, then item 1's, ...
    grid = make_grid(tiles, nrow=len(batches), padding=padding)
    save_image(grid, path)
    return grid


__all__ = [
    "INITS",
    "SEED_OFFSET",
    "recover_from_noise",
    "save_images",
    "synthesize_texture",
]
