"""SR outputs computed once: ``run_sr`` super-resolves a test set through an ``SROutputCache`` (each model weights,
test set and image run once; outputs stored as 16-bit safetensors, read back identical), and the digests that key
outputs and scores by what they are computed from (``item_digest`` / ``pixels_digest`` of an image's pixels,
``output_identity`` of a model's output, ``fingerprint`` of the images a table scored, so tables never average over
different ones).

    >>> outputs = run_sr(load_sr_source("bicubic", 4), load_sr_test_set("builtin", 4), SROutputCache("cache/sr"))
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ..core.atomic import atomic_path
from ..core.errors import UserError, summarize
from .eval_sets import SRTestItem, SRTestSet
from .inference import SRSource


def cache_name(text: str, length: int) -> str:
    """``text`` as a file or folder name of a cache: its first ``length`` safe characters, made unique by a hash."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:length].lstrip(".")
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


class SROutputCache:
    """SR outputs on disk, keyed by (``source.cache_key``, test set name, image name).

    Each output is a safetensors file holding the image as uint16 (``round(65535 * x)`` of the output clamped to
    [0, 1], so values come back within 0.5/65535 = 7.6e-6), its key in the metadata (checked on reading), written
    atomically. A file that cannot be read is a miss (with a warning) and is rewritten.
    """

    def __init__(self, folder: str):
        self.folder = folder

    def path(self, source: SRSource, dataset_name: str, image_name: str) -> str:
        """Where an output lives: a folder per model and set, a readable file name made unique by a hash."""
        model = f"{cache_name(os.path.basename(os.path.normpath(source.name)) or source.kind, 40)}"
        model += f"-{hashlib.sha256(source.cache_key.encode()).hexdigest()[:12]}"
        return os.path.join(
            self.folder, model, cache_name(dataset_name, 60), cache_name(image_name, 100) + ".safetensors"
        )

    @staticmethod
    def _metadata(source: SRSource, dataset_name: str, image_name: str) -> dict[str, str]:
        return {"cache_key": source.cache_key, "dataset": dataset_name, "image": image_name}

    def get(self, source: SRSource, dataset_name: str, image_name: str) -> torch.Tensor | None:
        """The cached (1, 3, H, W) float output, or ``None``."""
        from safetensors import safe_open

        path = self.path(source, dataset_name, image_name)
        if not os.path.isfile(path):
            return None
        try:
            with safe_open(path, "numpy") as file:
                if file.metadata() != self._metadata(source, dataset_name, image_name):
                    return None
                array = file.get_tensor("image")
        except Exception as err:  # a damaged cache entry is recomputed, whatever broke it
            warnings.warn(f"ignoring unreadable cached output {path} ({summarize(err)})", stacklevel=2)
            return None
        return torch.from_numpy(array.astype(np.float32) / 65535)[None]

    def put(self, source: SRSource, dataset_name: str, image_name: str, image: torch.Tensor) -> torch.Tensor:
        """Store a (1, 3, H, W) or (3, H, W) output; returns it as it will be read back ((1, 3, H, W), quantised)."""
        from safetensors.numpy import save_file

        image = image.detach().float().cpu().reshape(-1, *image.shape[-3:])[0]
        array = _quantised(image)
        with atomic_path(self.path(source, dataset_name, image_name)) as tmp:
            save_file(
                {"image": np.ascontiguousarray(array)}, tmp, metadata=self._metadata(source, dataset_name, image_name)
            )
        return torch.from_numpy(array.astype(np.float32) / 65535)[None]


def _quantised(image: torch.Tensor) -> np.ndarray:
    """An image in [0, 1] as uint16 (``round(65535 * x)``): exact for 8- and 16-bit files."""
    return (image.detach().float().cpu().clamp(0, 1) * 65535).round().to(torch.int32).numpy().astype(np.uint16)


def _lr_digest(lr: torch.Tensor) -> str:
    """A short hash of an LR image quantised to 16 bits: a changed input file never reuses a stale output."""
    return hashlib.sha256(_quantised(lr).tobytes()).hexdigest()[:16]


def item_digest(item: SRTestItem) -> str:
    """sha256 of one test image as it is scored: its name and its HR and LR pixels (shapes included)."""
    digest = hashlib.sha256(item.name.encode())
    for image in (item.hr, item.lr):
        digest.update(f"\0{tuple(image.shape)}\0".encode())
        digest.update(_quantised(image).tobytes())
    return digest.hexdigest()


def output_identity(source: SRSource, tile: int = 0, overlap: int = 16) -> str:
    """What a model's output of an LR image depends on besides its pixels: the model (``cache_key``: weights,
    precision) and, for a network, the tiling (tiled window attention differs slightly from whole-image output)."""
    return source.cache_key + (f"@tile-{tile}-{overlap}" if tile and source.module is not None else "")


def pixels_digest(item: SRTestItem) -> str:
    """sha256 of what a score of a test image is computed from: its HR and LR pixels (16-bit, shapes included), not its
    name. Score units are keyed by it (``asym.sr.score_cache``): a replaced image is scored again whatever its name, and
    the same pixels are scored once whichever set or name holds them."""
    digest = hashlib.sha256()
    for image in (item.hr, item.lr):
        digest.update(f"{tuple(image.shape)}\0".encode())
        digest.update(_quantised(image).tobytes())
    return digest.hexdigest()


def fingerprint(digests: Sequence[str]) -> str:
    """The identity of the images a table scored (their ``item_digest`` s, in order), 16 hex digits: two evaluations
    share it exactly when they scored the same images, so one made with ``--max_images 1`` and one with 4, or on an
    edited folder, are told apart."""
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]


def run_sr(source: SRSource, test_set: SRTestSet, cache: SROutputCache | None, tile: int | None = None,
           overlap: int = 16) -> dict[str, torch.Tensor]:  # fmt: skip
    """Super-resolve every image of ``test_set``: {image name: (1, 3, H, W) CPU float output in [0, 1]}.

    Only images missing from ``cache`` are run. The cache's image key is the name plus a hash of the LR pixels and the
    tiling (tiled window-attention output differs slightly from whole-image output). Outputs are always returned as
    the cache stores them (clamped, 16-bit quantised), so a cached and a fresh run give identical numbers. The ``hr``
    source is never cached (it is the reference itself).
    """
    if source.scale != test_set.scale:
        raise UserError(f"{source.name} is a x{source.scale} model but {test_set.name} is a x{test_set.scale} set")
    outputs = {}
    for item in test_set:
        lr, hr = item.lr[None], item.hr[None]
        if source.kind == "hr":
            outputs[item.name] = hr
            continue
        key = f"{item.name}@lr-{_lr_digest(lr)}" + (f"@tile-{tile}-{overlap}" if tile else "")
        cached = cache.get(source, test_set.name, key) if cache is not None else None
        if cached is not None and cached.shape[-2:] == hr.shape[-2:]:
            outputs[item.name] = cached
            continue
        sr = source(lr, hr, tile=tile or 0, overlap=overlap)
        if sr.shape[-2:] != hr.shape[-2:]:
            raise UserError(f"{source.name} turned the {tuple(lr.shape[-2:])} LR image {item.name} into "
                            f"{tuple(sr.shape[-2:])}, expected {tuple(hr.shape[-2:])} (x{test_set.scale})")  # fmt: skip
        if cache is not None:
            outputs[item.name] = cache.put(source, test_set.name, key, sr)
        else:
            outputs[item.name] = (sr.detach().float().cpu().clamp(0, 1) * 65535).round() / 65535
    return outputs


__all__ = [
    "SROutputCache",
    "cache_name",
    "fingerprint",
    "item_digest",
    "output_identity",
    "pixels_digest",
    "run_sr",
]
