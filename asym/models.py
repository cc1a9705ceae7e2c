"""Super-resolution generators: architectures from ``spandrel``, saved and loaded the Hub way.

``SRModel(model="swinir", scale=4)`` wraps one of the configurations below; ``SRModel.from_pretrained``
loads a model saved by ``train_sr.py`` (safetensors + config.json), and ``SRModel.from_checkpoint``
loads an official release (SwinIR, ESRGAN/Real-ESRGAN, ... anything spandrel auto-detects).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .errors import UserError, reading
from .hub import HubModel, read_tensor_file

# The paper's SwinIR x4 is the classical-SR configuration of the SwinIR release; the light variant is
# its lightweight configuration; `tiny` exists for tests and CPU demos; `enhancenet` is the robust-loss study's
# generator (asym.enhancenet, written here: spandrel has no EnhanceNet).
GENERATORS: dict[str, dict] = {
    "swinir": dict(
        arch="swinir", embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=8, mlp_ratio=2.0,
        upsampler="pixelshuffle", img_size=64,
    ),
    "swinir-light": dict(
        arch="swinir", embed_dim=60, depths=[6] * 4, num_heads=[6] * 4, window_size=8, mlp_ratio=2.0,
        upsampler="pixelshuffledirect", img_size=64,
    ),
    "rrdb": dict(arch="rrdb", num_filters=64, num_blocks=23),
    "tiny": dict(
        arch="swinir", embed_dim=12, depths=[1], num_heads=[2], window_size=4, mlp_ratio=2.0,
        upsampler="pixelshuffledirect", img_size=16,
    ),
    "enhancenet": dict(arch="enhancenet", num_features=64, num_blocks=10),  # the robust-loss study's generator
}  # fmt: skip
SCALES = (2, 3, 4)


def build_generator(model: str, scale: int) -> nn.Module:
    """A freshly initialised generator of a ``GENERATORS`` configuration."""
    if model not in GENERATORS:
        raise UserError(f"unknown generator {model!r}: choose one of {', '.join(GENERATORS)}")
    if scale not in SCALES:
        raise UserError(f"unsupported scale x{scale}: choose one of {', '.join(map(str, SCALES))}")
    config = dict(GENERATORS[model])
    arch = config.pop("arch")
    if arch == "swinir":
        from spandrel.architectures.SwinIR import SwinIR

        return SwinIR(upscale=scale, img_range=1.0, resi_connection="1conv", **config)
    if arch == "enhancenet":
        from .enhancenet import EnhanceNet

        return EnhanceNet(scale, **config)
    from spandrel.architectures.ESRGAN import ESRGAN as RRDBNet

    return RRDBNet(scale=scale, upsampler="pixel_shuffle" if scale == 3 else "upconv", **config)


class SRModel(nn.Module, HubModel, tags=["super-resolution", "image-restoration"]):
    """A super-resolution generator: (B, 3, h, w) LR images in [0, 1] -> (B, 3, scale*h, scale*w).

    Args:
        model: a ``GENERATORS`` name.
        scale: up-scaling factor (2, 3 or 4).
        card: free-form facts about training, shown in the model card (set by ``train_sr.py``).
    """

    def __init__(self, model: str = "swinir", scale: int = 4, card: dict | None = None):
        super().__init__()
        self.model_name, self.scale, self.card = model, scale, dict(card or {})
        self.net = build_generator(model, scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.net(lr)

    def card_description(self) -> str:
        return f"`{self.model_name}` super-resolution generator, x{self.scale}."

    @classmethod
    def from_checkpoint(cls, path: str) -> nn.Module:
        """An official release checkpoint (``.pth`` / ``.safetensors``) through spandrel's auto-detection."""
        import spandrel

        if not os.path.isfile(path):
            raise UserError(f"generator checkpoint {path!r} does not exist")
        # Read here, not by spandrel's own file loader: it runs TorchScript and a permissive unpickler on .pt/.pth.
        state = read_tensor_file(path, "generator checkpoint")
        if not isinstance(state, dict):
            raise UserError(f"generator checkpoint {path} holds a {type(state).__name__}, not a state dict")
        try:
            with reading(path, "generator checkpoint"):
                descriptor = spandrel.ModelLoader().load_from_state_dict(spandrel.canonicalize_state_dict(state))
        except spandrel.UnsupportedModelError as err:
            raise UserError(f"{path} holds no architecture spandrel recognises (SwinIR, ESRGAN, ...)") from err
        if not isinstance(descriptor, spandrel.ImageModelDescriptor):
            raise UserError(f"{path} is not a single-image model (spandrel found {descriptor.architecture.name})")
        return descriptor.model


def load_generator(source: str, model: str, scale: int) -> SRModel:
    """``--init_generator``: a saved ``SRModel`` (folder or Hub id) or an official checkpoint file."""
    if os.path.isfile(source):
        generator = SRModel(model, scale)
        if GENERATORS[model]["arch"] == "enhancenet":  # not a spandrel architecture: its own state dict
            state = read_tensor_file(source, "generator checkpoint")
            if not isinstance(state, dict):
                raise UserError(f"generator checkpoint {source} holds a {type(state).__name__}, not a state dict")
            state = state.get("params", state)  # BasicSR's wrapper key
        else:
            state = SRModel.from_checkpoint(source).state_dict()
        try:
            generator.net.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(
                f"{source} does not fit --model {model} --scale {scale}: {str(err).splitlines()[0]}"
            ) from err
        return generator
    if os.path.isdir(source) and not os.path.isfile(os.path.join(source, "config.json")):
        raise UserError(f"{source} holds no config.json: pass a folder written by train_sr.py or a checkpoint file")
    generator = SRModel.from_pretrained(source)
    if (generator.model_name, generator.scale) != (model, scale):
        raise UserError(
            f"{source} is a {generator.model_name} x{generator.scale} model, not --model {model} --scale {scale}"
        )
    return generator


def upscale(generator: nn.Module, lr: torch.Tensor, scale: int, tile: int = 0, overlap: int = 16) -> torch.Tensor:
    """Super-resolve (B, 3, h, w) LR images whole, or tile by tile when ``tile`` > 0 and the image is larger.

    Each ``tile`` x ``tile`` LR tile is run with ``overlap`` extra LR pixels of context on every side (less at the
    image border) and only its own part of the output is kept, so seams vanish: for a convolutional generator whose
    receptive field reaches at most ``overlap`` pixels, the result equals the whole-image output up to rounding.
    Window-attention models (SwinIR) pad each tile to their window size, so they agree closely, not exactly.
    """
    h, w = lr.shape[-2:]
    if tile <= 0 or max(h, w) <= tile:
        return generator(lr)
    out = None
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(top + tile + overlap, h), min(left + tile + overlap, w)
            sr = generator(lr[..., t0:t1, l0:l1])
            if out is None:
                out = sr.new_zeros(*lr.shape[:-2], h * scale, w * scale)
            th, tw = min(tile, h - top), min(tile, w - left)
            dt, dl = (top - t0) * scale, (left - l0) * scale
            out[..., top * scale : (top + th) * scale, left * scale : (left + tw) * scale] = sr[
                ..., dt : dt + th * scale, dl : dl + tw * scale
            ]
    return out


__all__ = ["GENERATORS", "SRModel", "build_generator", "load_generator", "upscale"]
