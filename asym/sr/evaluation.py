"""SR models' outputs on test sets (the paper's Table 1): test sets, model sources, tiled inference, an output cache.

``load_sr_test_set`` resolves a test set (``builtin``, a folder of HR images, or the BasicSR/SwinIR benchmark layouts)
into (name, HR, LR) items; ``load_sr_source`` puts every kind of SR model (a ``train_sr.py`` output, an official
release file, bicubic upsampling, the HR reference itself) behind one callable; ``run_sr`` super-resolves a test set
through an ``SROutputCache``, so that each (model weights, test set, image) is computed once. ``item_digest`` /
``fingerprint`` identify the exact images a leaderboard scored, so that tables never average over different ones.
Scoring the outputs is ``asym.sr.leaderboard``'s.

    >>> test_set = load_sr_test_set("builtin", scale=4)
    >>> outputs = run_sr(load_sr_source("bicubic", 4), test_set, SROutputCache("cache/sr"))
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from ..core.atomic import atomic_path
from ..core.errors import UserError, summarize
from ..core.hub import state_digest
from ..core.images import BUILTIN_IMAGES, IMAGE_EXTENSIONS, ImageSequence, image_files, readable_shape
from .data import SRImageDataset, bicubic_upsample, load_sr_images
from .models import SRModel, upscale


class SRTestItem(NamedTuple):
    """One test image: its name, the HR reference (3, H, W) cut to a multiple of the scale, its LR (3, H/s, W/s)."""

    name: str
    hr: torch.Tensor
    lr: torch.Tensor


class SRTestSet(Sequence):
    """A test set of ``SRTestItem`` s (floats in [0, 1]), decoded on access so large sets (DIV2K) stay out of memory.

    Args:
        name: the set's name with its scale (``"Set5-x4"``), used in cache keys and tables.
        scale: the up-scaling factor.
        names: one name per image (file stem, or relative path without extension).
        images: the whole-image dataset (``SRImageDataset``: mod-crop, given or bicubic LR), or any sequence of its
            ``{"hr", "lr"}`` items.
    """

    def __init__(self, name: str, scale: int, names: list[str], images: SRImageDataset | Sequence[dict]):
        self.name, self.scale, self.names, self.images = name, scale, names, images

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> SRTestItem:
        item = self.images[index]
        return SRTestItem(self.names[index], item["hr"], item["lr"])

    def __iter__(self) -> Iterator[SRTestItem]:
        return (self[i] for i in range(len(self)))

    def subset(self, indices: Sequence[int]) -> SRTestSet:
        """These images of the set, in this order, under the set's name (so cached outputs are shared with it)."""
        indices = list(indices)
        return SRTestSet(self.name, self.scale, [self.names[i] for i in indices], Subset(self.images, indices))

    def one(self, index: int) -> SRTestSet:
        """Image ``index`` alone as a test set: only one image's outputs are held in memory at a time."""
        return self.subset([index])


def _image_files(folder: str) -> list[str]:
    """The image files directly inside ``folder``, sorted by name."""
    return [os.path.basename(path) for path in image_files(folder, recursive=False)]


def image_names(files: Sequence[str]) -> list[str]:
    """A name per image file (relative paths): its path without the extension, kept with it where two files differ
    only by extension (``a.png`` and ``a.jpg`` are two images: one name would give one image's scores to the other)."""
    stems = [os.path.splitext(f)[0].replace(os.sep, "/") for f in files]
    shared = {stem for stem in stems if stems.count(stem) > 1}
    return [f.replace(os.sep, "/") if stem in shared else stem for f, stem in zip(files, stems)]


def _find_lr(folder: str, stem: str, ext: str) -> str | None:
    """``folder/stem+ext``, else ``stem`` with any image extension (an LR set may be stored as another format)."""
    for candidate in (stem + ext, *(stem + e for e in IMAGE_EXTENSIONS)):
        if os.path.isfile(os.path.join(folder, candidate)):
            return os.path.join(folder, candidate)
    return None


def _scale_folders(folder: str, pattern: str) -> dict[int, str]:
    """Sub-folders of ``folder`` whose name matches ``pattern`` (one group: the scale), by scale."""
    found = {}
    for entry in sorted(os.listdir(folder)):
        match = re.fullmatch(pattern, entry)
        if match and os.path.isdir(os.path.join(folder, entry)):
            found[int(match.group(1))] = os.path.join(folder, entry)
    return found


def _paired_set(label: str, scale: int, hr_folder: str, lr_folder: str, lr_stem: str) -> SRTestSet:
    """A benchmark layout: every HR file in ``hr_folder`` with its given LR file (``lr_stem`` formats the stem)."""
    files = _image_files(hr_folder)
    if not files:
        raise UserError(f"{hr_folder} holds no images (expected {'/'.join(IMAGE_EXTENSIONS)} files)")
    hr_paths, lr_paths = [], []
    for file in files:
        stem, ext = os.path.splitext(file)
        lr = _find_lr(lr_folder, lr_stem.format(stem), ext)
        if lr is None:
            raise UserError(f"HR image {os.path.join(hr_folder, file)} has no LR image "
                            f"{os.path.join(lr_folder, lr_stem.format(stem) + ext)}")  # fmt: skip
        hr_paths.append(os.path.join(hr_folder, file))
        lr_paths.append(lr)
    hr_sizes, lr_sizes = [], []
    for hr, lr in zip(hr_paths, lr_paths):
        hr_size, lr_size = readable_shape(hr), readable_shape(lr)
        for path, size in ((hr, hr_size), (lr, lr_size)):
            if size is None:
                raise UserError(f"test image {path} cannot be read; is it truncated or not an image?")
        _check_size(hr, hr_size, scale)
        expected = (hr_size[0] // scale, hr_size[1] // scale)
        if tuple(lr_size) != expected:
            raise UserError(f"LR image {lr} is {lr_size[1]}x{lr_size[0]} (WxH), expected {expected[1]}x{expected[0]} "
                            f"for the {hr_size[1]}x{hr_size[0]} HR image {hr} at x{scale}")  # fmt: skip
        hr_sizes.append(tuple(hr_size))
        lr_sizes.append(tuple(lr_size))
    dataset = SRImageDataset(ImageSequence(hr_paths, hr_sizes), scale, ImageSequence(lr_paths, lr_sizes))
    return SRTestSet(f"{label}-x{scale}", scale, image_names(files), dataset)


def _check_size(path: str, size: tuple[int, int], scale: int) -> None:
    """A UserError naming an HR test image too small for one LR pixel at ``scale`` (the smallest SR test image)."""
    if min(size) < scale:
        raise UserError(f"test image {path} is {size[1]}x{size[0]} (WxH): at x{scale} an HR test image needs at least "
                        f"{scale}x{scale} pixels (one LR pixel); remove it or pass a smaller --scale")  # fmt: skip


def _wrong_scale(where: str, scale: int, found: dict[int, str]) -> UserError:
    return UserError(f"{where} has no x{scale} LR images; it has {', '.join(map(os.path.basename, found.values()))} "
                     f"(x{', x'.join(map(str, found))}): pass --scale {' or '.join(map(str, found))}")  # fmt: skip


def load_sr_test_set(source: str, scale: int, label: str | None = None) -> SRTestSet:
    """A test set: ``builtin``, a folder of HR images, or a BasicSR/SwinIR benchmark folder, named ``<label>-x<scale>``
    (``label`` default: the folder's name; ``evaluate.py sr`` passes names that tell its sets apart, ``p/HR`` and
    ``q/HR``: ``asym.reporting.tables.unique_names``).

    Benchmark layouts (the LR images are the released ones, not remade): ``<set>/GTmod12`` + ``<set>/LRbicx<k>``
    (BasicSR; same file names) and ``<set>/HR`` + ``<set>/LR_bicubic/X<k>/<name>x<k>.<ext>`` (SwinIR/DIV2K). Otherwise
    (``builtin``, a plain folder, searched recursively) the HR image is cut to a multiple of ``scale`` and its LR is
    the antialiased bicubic downscale of ``train_sr.py``'s validation (``asym.sr.data.bicubic_downscale``).

    Raises:
        UserError: a missing or empty folder, an HR image without its LR file, an LR image of the wrong size, a
            benchmark folder without LR images at ``scale`` (naming those it has).
    """
    if scale < 1:
        raise UserError(f"scale x{scale} must be positive")
    if source == "builtin":
        return SRTestSet(f"builtin-x{scale}", scale, list(BUILTIN_IMAGES), SRImageDataset(load_sr_images(), scale))
    if not os.path.isdir(source):
        what = "is not a folder" if os.path.exists(source) else "does not exist"
        raise UserError(f"test set {source} {what} (expected builtin, a folder of HR images or a benchmark folder)")
    label = label or os.path.basename(os.path.normpath(os.path.abspath(source)))
    gt, hr = os.path.join(source, "GTmod12"), os.path.join(source, "HR")
    if os.path.isdir(gt):
        found = _scale_folders(source, r"LRbicx(\d+)")
        if not found:
            raise UserError(f"{source} has GTmod12/ but no LRbicx<k>/ folder: pass {gt} itself to make bicubic LR")
        if scale not in found:
            raise _wrong_scale(source, scale, found)
        return _paired_set(label, scale, gt, found[scale], "{}")
    if os.path.isdir(hr):
        lr_root = os.path.join(source, "LR_bicubic")
        if not os.path.isdir(lr_root):
            raise UserError(f"{source} has HR/ but no LR_bicubic/ folder: pass {hr} itself to make bicubic LR")
        found = _scale_folders(lr_root, r"X(\d+)")
        if scale not in found:
            raise _wrong_scale(lr_root, scale, found) if found else UserError(f"{lr_root} has no X<k>/ folder")
        return _paired_set(label, scale, hr, found[scale], "{}x" + str(scale))
    images = load_sr_images(train_data_dir=source)
    for i, size in enumerate(images.sizes):
        _check_size(images.name(i), size, scale)
    names = image_names([os.path.relpath(images.name(i), source) for i in range(len(images))])
    return SRTestSet(f"{label}-x{scale}", scale, names, SRImageDataset(images, scale))


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
    "SRSource",
    "SRTestItem",
    "SRTestSet",
    "cache_name",
    "fingerprint",
    "image_names",
    "item_digest",
    "load_sr_source",
    "load_sr_test_set",
    "output_identity",
    "pixels_digest",
    "run_sr",
]
