"""diffusers ``AutoencoderKL`` as a train_sr.py generator at ``--scale 1`` (the asymmetry paper's App. F, Fig. 16).

The model reconstructs its own input: [0, 1] images in, [0, 1] reconstructions out (diffusers' [-1, 1] convention is
handled here). Training decodes a sample of the posterior, evaluation its mode, as latent-diffusion VAEs are trained
and used; the KL divergence of the last training forward is kept for ``--lambda_kl``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import UserError

# The Stable Diffusion VAE (4 latent channels, x8 down-sampling), and a tiny one for tests and CPU demos.
AUTOENCODER_CONFIGS: dict[str, dict] = {
    "sd": dict(
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4, norm_num_groups=32,
        sample_size=512, scaling_factor=0.18215,
    ),
    "tiny": dict(
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        block_out_channels=[16, 32], layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64,
    ),
}  # fmt: skip


class AutoencoderGenerator(nn.Module):
    """A diffusers ``AutoencoderKL`` (``self.vae``) mapping [0, 1] images to [0, 1] reconstructions.

    Args:
        config: ``AutoencoderKL`` constructor arguments (a name of ``AUTOENCODER_CONFIGS`` is resolved by the caller).
    """

    def __init__(self, config: dict):
        super().__init__()
        from diffusers import AutoencoderKL

        self.vae = AutoencoderKL(**config)
        self.last_kl: torch.Tensor | None = None

    @property
    def downsampling(self) -> int:
        """The side of the input that one latent position covers (8 for the SD VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions of (B, 3, H, W) images in [0, 1]. Sides that are not multiples of ``downsampling`` (whole
        validation images) are reflect-padded up to one and the reconstruction cropped back."""
        h, w = x.shape[-2:]
        cell = self.downsampling
        pad_h, pad_w = -h % cell, -w % cell
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > max(pad_h, pad_w) else "replicate")
        posterior = self.vae.encode(2 * x - 1).latent_dist
        latents = posterior.sample() if self.training else posterior.mode()
        self.last_kl = posterior.kl() if self.training else None  # (B,) summed over latent values, as LDM's
        return ((self.vae.decode(latents).sample + 1) / 2)[..., :h, :w]


def is_diffusers_autoencoder(source: str) -> str | None:
    """The folder holding a diffusers ``AutoencoderKL`` config at ``source`` or ``source/vae``, else None."""
    import json

    for folder in (source, os.path.join(source, "vae")):
        path = os.path.join(folder, "config.json")
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as file:
                    if json.load(file).get("_class_name") == "AutoencoderKL":
                        return folder
            except (OSError, ValueError):
                return None
    return None


def load_diffusers_autoencoder(source: str):
    """An ``AutoencoderKL`` from a diffusers folder (or its ``vae/``) or a Hub id (its root or ``vae`` subfolder)."""
    from diffusers import AutoencoderKL

    folder = is_diffusers_autoencoder(source)
    if folder is not None:
        return AutoencoderKL.from_pretrained(folder)
    if os.path.exists(source):
        raise UserError(f"{source} holds no diffusers AutoencoderKL (config.json with _class_name AutoencoderKL, or "
                        "vae/config.json) and no train_sr.py output: pass such a folder or a Hub id")  # fmt: skip
    errors = []
    for subfolder in (None, "vae"):
        try:
            return AutoencoderKL.from_pretrained(source, subfolder=subfolder)
        except Exception as err:  # noqa: BLE001 - Hub errors come in many types
            errors.append(f"{type(err).__name__}")
    raise UserError(f"no diffusers AutoencoderKL could be loaded from the Hub id {source!r} (at its root or vae/: "
                    f"{', '.join(errors)}): check the id and the network / HF cache")  # fmt: skip


__all__ = ["AUTOENCODER_CONFIGS", "AutoencoderGenerator", "is_diffusers_autoencoder", "load_diffusers_autoencoder"]
