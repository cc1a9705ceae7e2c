"""Every kind of SR model behind one callable (``SRSource``): a ``train_sr.py`` output, an official release file
(spandrel), bicubic up-sampling, the HR reference itself; ``load_sr_source`` resolves a spec into one. The model runs
whole or tiled (``asym.sr.models.upscale``), optionally under autocast; its ``cache_key`` changes whenever its outputs
could.

    >>> source = load_sr_source("runs/sr-vgg16", scale=4)
    >>> sr = source(lr)
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..core.errors import UserError
from ..core.hub import state_digest
from .data import bicubic_upsample
from .models import SRModel, upscale

PRECISIONS = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # the SR forward's autocast dtype


class SRSource:
    """One SR model behind one callable: ``source(lr, hr)`` maps (1, 3, h, w) in [0, 1] to (1, 3, s*h, s*w).

    Attributes:
        name: what tables call it (the path or Hub id, ``bicubic``, ``hr``).
        kind: ``"asym"`` (a ``train_sr.py`` model), ``"spandrel"`` (an official release), ``"bicubic"`` or ``"hr"``.
        scale: the up-scaling factor.
        cache_key: changes whenever the outputs could: a sha256 of the weights (``state_digest``) and the autocast
            precision for models, a constant per scale for ``bicubic``/``hr``.
        module: the generator (``None`` for ``bicubic``/``hr``).
        precision: ``"no"`` (float32) or ``"bf16"`` / ``"fp16"``: the model's forward runs under ``torch.autocast``.
    """

    def __init__(self, name: str, kind: str, scale: int, module: nn.Module | None = None, device="cpu",
                 precision: str = "no"):  # fmt: skip
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}: pass one of {', '.join(PRECISIONS)}")
        self.name, self.kind, self.scale, self.device = name, kind, scale, torch.device(device)
        self.precision = precision if module is not None else "no"
        self.module = module.to(self.device).eval() if module is not None else None
        self.refresh_cache_key()

    @classmethod
    def from_module(cls, name: str, module: nn.Module, scale: int, kind: str = "asym", device="cpu",
                    precision: str = "no") -> SRSource:  # fmt: skip
        """An in-memory generator (tests, notebooks); its cache key is the digest of its current weights."""
        return cls(name, kind, scale, module, device, precision)

    def refresh_cache_key(self) -> None:
        """Recompute ``cache_key`` (after the module's weights were changed in place)."""
        self.cache_key = f"{self.kind}-x{self.scale}"
        if self.module is not None:
            precision = "" if self.precision == "no" else f"-{self.precision}"
            self.cache_key += f"-{state_digest(self.module)}{precision}"

    @torch.no_grad()
    def __call__(self, lr: torch.Tensor, hr: torch.Tensor | None = None, *, tile: int = 0, overlap: int = 16):
        """Super-resolve ``lr`` (on its device; the model runs on ``self.device``); ``hr`` is needed by ``hr`` only.

        ``bicubic`` is ``asym.sr.data.bicubic_upsample`` (Keys, a = -0.75 in torch; no antialiasing, which only matters
        for downscaling) clamped to [0, 1]. Models run tile by tile when
        ``tile`` > 0 (``asym.sr.models.upscale``); their output is returned unclamped.
        """
        if self.kind == "hr":
            if hr is None:
                raise ValueError("the hr source returns the reference: pass hr")
            return hr
        if self.kind == "bicubic":
            return bicubic_upsample(lr, self.scale).clamp(0, 1)
        dtype = PRECISIONS[self.precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            out = upscale(self.module, lr.to(self.device), self.scale, tile, overlap)
        return out.float().to(lr.device)


def _model_scale(net: nn.Module) -> int:
    """A release model's scale, measured: a 16x16 input's output side over 16 (any architecture spandrel loads)."""
    param = next(net.parameters(), None)
    probe = torch.zeros(1, 3, 16, 16, device=param.device if param is not None else "cpu")
    with torch.no_grad():
        return net.eval()(probe).shape[-1] // 16


def load_sr_source(spec: str, scale: int, device="cpu", precision: str = "no") -> SRSource:
    """``bicubic``, ``hr``, a ``train_sr.py`` output folder or Hub id, or an official release file (.pth/.safetensors).

    Release files are read tensors-only (``weights_only``) and their architecture auto-detected by spandrel
    (``SRModel.from_checkpoint``, the loader behind ``asym.sr.models.load_generator``), so any SwinIR/ESRGAN variant
    loads without naming its configuration.

    Raises:
        UserError: the model cannot be found or read, or its scale is not ``scale`` (naming its scale).
    """
    if spec in ("bicubic", "hr"):
        return SRSource(spec, spec, scale, precision=precision)
    if os.path.isfile(spec):
        net = SRModel.from_checkpoint(spec)
        found = _model_scale(net)
        kind = "spandrel"
    else:
        if os.path.isdir(spec) and not os.path.isfile(os.path.join(spec, "config.json")):
            raise UserError(f"{spec} holds no config.json: pass a folder written by train_sr.py or a checkpoint file")
        net = SRModel.from_pretrained(spec)
        found, kind = net.scale, "asym"
    if found != scale:
        raise UserError(f"{spec} is a x{found} model, not x{scale}: pass --scale {found} or a x{scale} model")
    return SRSource(spec, kind, scale, net, device, precision)


__all__ = ["PRECISIONS", "SRSource", "load_sr_source"]
