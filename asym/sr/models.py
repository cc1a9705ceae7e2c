"""Super-resolution generators: architectures from ``spandrel``, saved and loaded the Hub way.

``SRModel(model="swinir", scale=4)`` wraps one of the configurations below; ``SRModel.from_pretrained``
loads a model saved by ``train_sr.py`` (safetensors + config.json), and ``SRModel.from_checkpoint``
loads an official release (SwinIR, ESRGAN/Real-ESRGAN, ... anything spandrel auto-detects).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..core.atomic import honour_umask
from ..core.errors import UserError, reading
from ..core.hub import HubModel, read_tensor_file, saved_class

# The paper's SwinIR x4 is the classical-SR configuration of the SwinIR release; the light variant is
# its lightweight configuration; `tiny` (asym.sr.bicubic_residual) is a small CNN learning the residual over bicubic
# up-sampling, for tests and the CPU demo; `enhancenet` is the robust-loss study's generator (asym.sr.enhancenet,
# written here: spandrel has no EnhanceNet).
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
    "tiny": dict(arch="bicubic-residual", num_features=32, num_blocks=4),  # step 0 is bicubic up-sampling
    "enhancenet": dict(arch="enhancenet", num_features=64, num_blocks=10),  # the robust-loss study's generator
    "autoencoder-kl": dict(arch="autoencoder-kl", config="sd"),  # diffusers AutoencoderKL, the SD VAE's layout
    "autoencoder-kl-tiny": dict(arch="autoencoder-kl", config="tiny"),  # tests and CPU demos
}  # fmt: skip
SCALES = (2, 3, 4)  # super-resolution; autoencoders reconstruct at scale 1
MESHGRID_WARNING = r"torch\.meshgrid: in an upcoming release, it will be required to pass the indexing argument"


@contextmanager
def quiet_swinir_meshgrid() -> Iterator[None]:
    """Building a SwinIR without torch's ``meshgrid`` deprecation warning, exactly that one: the release's code
    (spandrel's copy) calls ``torch.meshgrid`` without ``indexing``, meaning the "ij" that torch keeps as default."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=MESHGRID_WARNING, category=UserWarning)
        yield


def build_generator(model: str, scale: int, vae_config: dict | None = None) -> nn.Module:
    """A freshly initialised generator of a ``GENERATORS`` configuration (``vae_config``: an autoencoder's own
    ``AutoencoderKL`` arguments, e.g. those of a VAE it was initialised from, instead of the named ones)."""
    if model not in GENERATORS:
        raise UserError(f"unknown generator {model!r}: choose one of {', '.join(GENERATORS)}")
    config = dict(GENERATORS[model])
    arch = config.pop("arch")
    if arch == "autoencoder-kl":
        if scale != 1:
            raise UserError(f"--model {model} reconstructs its input: pass --scale 1 (got x{scale})")
        from .autoencoder import AUTOENCODER_CONFIGS, AutoencoderGenerator

        return AutoencoderGenerator(dict(vae_config or AUTOENCODER_CONFIGS[config["config"]]))
    if scale not in SCALES:
        raise UserError(f"unsupported scale x{scale} for --model {model}: choose one of {', '.join(map(str, SCALES))}"
                        " (x1 is for the autoencoders, --model autoencoder-kl / autoencoder-kl-tiny)")  # fmt: skip
    if arch == "swinir":
        from spandrel.architectures.SwinIR import SwinIR

        with quiet_swinir_meshgrid():
            return SwinIR(upscale=scale, img_range=1.0, resi_connection="1conv", **config)
    if arch == "enhancenet":
        from .enhancenet import EnhanceNet

        return EnhanceNet(scale, **config)
    if arch == "bicubic-residual":
        from .bicubic_residual import BicubicResidualSR

        return BicubicResidualSR(scale, **config)
    from spandrel.architectures.ESRGAN import ESRGAN as RRDBNet

    return RRDBNet(scale=scale, upsampler="pixel_shuffle" if scale == 3 else "upconv", **config)


class SRModel(nn.Module, HubModel, tags=["super-resolution", "image-restoration"]):
    """A super-resolution generator: (B, 3, h, w) LR images in [0, 1] -> (B, 3, scale*h, scale*w).

    Args:
        model: a ``GENERATORS`` name.
        scale: up-scaling factor (2, 3 or 4; 1 for the autoencoders, which reconstruct their input).
        card: free-form facts about training, shown in the model card (set by ``train_sr.py``).
        vae_config: an autoencoder's ``AutoencoderKL`` arguments when they are not the named configuration's (one
            initialised from another VAE); saved, so the model reloads with the same layout.

    An autoencoder is also saved as a diffusers folder, ``<folder>/vae``, for ``AutoencoderKL.from_pretrained``.
    """

    card_pipeline_tag = "image-to-image"  # the Hub task of the model card

    def __init__(self, model: str = "swinir", scale: int = 4, card: dict | None = None, vae_config: dict | None = None):
        super().__init__()
        self.model_name, self.scale, self.card = model, scale, dict(card or {})
        self.net = build_generator(model, scale, vae_config)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.net(lr)

    @property
    def is_autoencoder(self) -> bool:
        return GENERATORS.get(self.model_name, {}).get("arch") == "autoencoder-kl"

    def card_description(self) -> str:
        if self.is_autoencoder:
            return (f"`{self.model_name}` autoencoder (diffusers `AutoencoderKL`), [0, 1] images in and out; the "
                    "diffusers folder is `vae/`.")  # fmt: skip
        if GENERATORS.get(self.model_name, {}).get("arch") == "bicubic-residual":
            return (f"`{self.model_name}` super-resolution generator, x{self.scale}: a small CNN learning the residual "
                    "over bicubic up-sampling (the untrained network is bicubic interpolation).")  # fmt: skip
        return f"`{self.model_name}` super-resolution generator, x{self.scale}."

    def save_pretrained(self, save_directory, **kwargs):
        """The asym folder (config, weights, card); for an autoencoder also ``vae/`` in diffusers' format, written
        to a temporary folder and renamed into place."""
        import shutil

        out = super().save_pretrained(save_directory, **kwargs)
        if self.is_autoencoder:
            final, partial = os.path.join(save_directory, "vae"), os.path.join(save_directory, ".vae.tmp")
            shutil.rmtree(partial, ignore_errors=True)
            self.net.vae.save_pretrained(partial)
            honour_umask(partial)  # diffusers writes its safetensors through safetensors: 0600
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
        return out

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
            with reading(path, "generator checkpoint"), quiet_swinir_meshgrid():
                descriptor = spandrel.ModelLoader().load_from_state_dict(spandrel.canonicalize_state_dict(state))
        except spandrel.UnsupportedModelError as err:
            raise UserError(f"{path} holds no architecture spandrel recognises (SwinIR, ESRGAN, ...)") from err
        if not isinstance(descriptor, spandrel.ImageModelDescriptor):
            raise UserError(f"{path} is not a single-image model (spandrel found {descriptor.architecture.name})")
        return descriptor.model


def load_generator(source: str, model: str, scale: int) -> SRModel:
    """``--init_generator``: a saved ``SRModel`` (folder or Hub id) or an official checkpoint file; for the
    autoencoders also a diffusers ``AutoencoderKL`` folder or Hub id (e.g. the SD VAE), whose layout is kept."""
    if GENERATORS.get(model, {}).get("arch") == "autoencoder-kl" and not _is_asym_folder(source):
        from .autoencoder import load_diffusers_autoencoder

        vae = load_diffusers_autoencoder(source)
        config = {k: v for k, v in vae.config.items() if not k.startswith("_")}  # its constructor arguments
        generator = SRModel(model, scale, vae_config=config)
        generator.net.vae.load_state_dict(vae.state_dict())
        return generator
    if os.path.isfile(source):
        generator = SRModel(model, scale)
        if GENERATORS[model]["arch"] in ("enhancenet", "bicubic-residual"):  # not spandrel's: their own state dict
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


def _is_asym_folder(source: str) -> bool:
    """A folder written by asym (``config.json`` naming an asym class), rather than a diffusers one (a Hub id is
    not looked up here: diffusers resolves it)."""
    return os.path.isdir(source) and bool(saved_class(source))


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
