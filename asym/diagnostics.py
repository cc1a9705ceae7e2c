"""Can a quality metric serve as an optimisation objective? Two diagnostics from the asymmetry paper.

A metric that agrees with human judgements is not necessarily a good loss (Chen et al., 2025): if it
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

A third diagnostic looks inside a backbone: ``stage_feature_maps`` gives what each of its stages responds to in an
image (channel mean and the most energetic channels per stage), e.g. a discriminator's backbone (Fig. 14; drawn by
``asym.reporting.figures.plot_stage_features``); ``load_feature_backbone`` finds that backbone in a saved model, a
train_sr.py run, or the registry.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .core.errors import UserError
from .core.hub import saved_class
from .core.sources import resolve_source
from .metrics.fidelity import psnr, ssim

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


@torch.no_grad()
def stage_feature_maps(backbone: torch.nn.Module, image: Tensor, top_k: int = 4) -> list[dict]:
    """What each stage of a feature backbone responds to in one image (the paper's Fig. 14).

    The backbone runs in eval mode (restored afterwards), so BatchNorm uses its running statistics rather than those
    of a single image. A channel's energy is the mean of its squared activation over space: unlike the plain mean,
    it ranks strongly negative responses (ViT features, pre-activation maps) as strong too.

    Args:
        backbone: an ``asym`` backbone (``create_backbone``, ``model.backbone``): ``[x, stage1, ..., stageN]``.
        image: one image in [0, 1], (3, H, W) or (1, 3, H, W).
        top_k: how many of each stage's most energetic channels to keep (fewer where a stage has fewer channels).

    Returns:
        One dict per stage 1..N: ``stage`` (its number), ``channels``, ``size`` (h, w), ``mean`` (h, w) the channel
        mean, ``top`` the indices of the ``top_k`` channels by energy (highest first), ``energy`` their energies and
        ``maps`` (k, h, w) their activations; all float32 CPU tensors.
    """
    if top_k < 1:
        raise UserError(f"top_k must be at least 1, got {top_k}")
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"stage_feature_maps takes one image, (3, H, W) or (1, 3, H, W); got {tuple(image.shape)}")
    device = next(iter(backbone.parameters()), torch.empty(0)).device
    training = backbone.training
    backbone.eval()
    try:
        feats = backbone(image.to(device))
    finally:
        backbone.train(training)
    stages = []
    for number, feat in enumerate(feats[1:], start=1):
        maps = feat[0].detach().float().cpu()  # (C, h, w)
        energy = maps.square().mean((1, 2))
        top = torch.argsort(energy, descending=True, stable=True)[:top_k]  # ties: the lower channel index first
        stage = {"stage": number, "channels": maps.shape[0], "size": tuple(maps.shape[1:]), "mean": maps.mean(0)}
        stages.append({**stage, "top": top.tolist(), "energy": energy[top], "maps": maps[top]})
    return stages


BACKBONE_MODELS = ("Discriminator", "IQAModel", "DISTS", "LPIPS")  # saved asym classes that hold a ``.backbone``


def slug(text: str) -> str:
    """``text`` fit for a file name: runs of anything but letters, digits and ``._+-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "model"


def _weights_label(weights: str, source: str) -> str:
    """A short file-name label for ``--weights``: random / pretrained (what ``auto`` became), gan-<run>, <file>."""
    from .iqa.results import init_label

    if weights == "auto":
        return init_label(source)
    if weights in ("random", "pretrained"):
        return weights
    if weights.startswith("gan:"):
        return "gan-" + os.path.basename(os.path.normpath(weights[4:]))
    return os.path.splitext(os.path.basename(os.path.normpath(weights)))[0]


def load_feature_backbone(model: str | None = None, backbone: str | None = None, weights: str = "auto",
                          device: str | torch.device = "cpu") -> tuple[torch.nn.Module, str, str]:  # fmt: skip
    """The feature backbone to look inside (``stage_feature_maps``): that of a saved asym model, or a fresh one.

    Args:
        model: a folder or Hub id of a saved ``Discriminator``, ``IQAModel``, ``DISTS`` or ``LPIPS`` (dispatched on
            its config.json's ``asym_class``), or a train_sr.py run folder (its ``discriminator/`` is used).
        backbone: instead of ``model``: a registry name (``asym.create_backbone``) ...
        weights: ... with these weights (``auto``, ``random``, ``pretrained``, ``gan:<run>``, a file or Hub id).
        device: where the backbone is put.

    Returns:
        (the backbone in eval mode, a short name for file names, a description with its weights' provenance).

    Raises:
        UserError: neither or both of ``model`` and ``backbone``; a missing folder; a folder or Hub model that is not
            a saved asym model with a backbone; whatever loading or ``create_backbone`` refuses.
    """
    if (model is None) == (backbone is None):
        raise UserError("pass either a saved model (--model) or a backbone name (--backbone), not both or neither")
    if backbone is not None:
        from .backbones import create_backbone

        net = create_backbone(backbone, weights)
        name = slug(f"{backbone}-{_weights_label(weights, net.weights_source)}")
        return net.to(device).eval(), name, f"{backbone} backbone, weights: {net.weights_source}"
    from .backbones.gan import FOLDER

    folder, name = model, os.path.basename(os.path.normpath(model))
    if os.path.isdir(model):
        saved = saved_class(model)
        if saved not in BACKBONE_MODELS and os.path.isdir(os.path.join(model, FOLDER)):  # a train_sr.py run folder
            folder = os.path.join(model, FOLDER)
            saved, name = saved_class(folder), f"{name}-{FOLDER}"
        elif name == FOLDER:  # runs/x/discriminator: named after its run
            name = os.path.basename(os.path.dirname(os.path.abspath(model))) + "-" + FOLDER
    elif resolve_source(model).kind != "hub":
        raise UserError(f"--model {model} is neither a folder saved by asym nor a Hub id (owner/name)")
    else:
        saved = saved_class(model)  # its config.json, downloaded
    if saved is None:
        raise UserError(f"{folder} holds no config.json: not a model saved by asym (pass a Discriminator, IQAModel, "
                        "DISTS or LPIPS folder, a train_sr.py run folder, or --backbone NAME --weights W)")  # fmt: skip
    if saved not in BACKBONE_MODELS:
        what = f"an asym {saved}" if saved else "a model of unknown class"
        raise UserError(f"{folder} holds {what}, which has no feature backbone: pass a {', '.join(BACKBONE_MODELS)} "
                        "folder, a train_sr.py run folder (its discriminator/), or --backbone NAME --weights W (e.g. "
                        "--weights gan:<run or Hub id>)")  # fmt: skip
    from .nets.discriminator import Discriminator
    from .nets.iqa_model import IQAModel
    from .nets.perceptual import DISTS, LPIPS

    cls = {"Discriminator": Discriminator, "IQAModel": IQAModel, "DISTS": DISTS, "LPIPS": LPIPS}[saved]
    net = cls.from_pretrained(folder).backbone
    description = f"{saved} {os.path.normpath(folder)}: {net.name} backbone, weights: {net.weights_source}"
    return net.to(device).eval(), slug(name), description


__all__ = [
    "BACKBONE_MODELS",
    "SEED_OFFSET",
    "load_feature_backbone",
    "recover_from_noise",
    "save_images",
    "slug",
    "stage_feature_maps",
    "synthesize_texture",
]
