"""SR test sets (the paper's Table 1 and a training run's validation): ``builtin``, folders of HR images, the
BasicSR/SwinIR benchmark layouts, as (name, HR, LR) items.

``load_sr_test_set`` resolves a source into an ``SRTestSet``; ``image_names`` names its images (relative paths without
extension, kept with it where two files differ only by it). Running models on a set is ``asym.sr.inference`` /
``asym.sr.output_cache.run_sr``; scoring it, ``asym.sr.leaderboard``.

    >>> test_set = load_sr_test_set("builtin", scale=4)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch.utils.data import Subset

from ..core.errors import UserError
from ..core.images import BUILTIN_IMAGES, IMAGE_EXTENSIONS, ImageSequence, image_files, readable_shape
from .data import SRImageDataset, load_sr_images


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


__all__ = ["SRTestItem", "SRTestSet", "image_names", "load_sr_test_set"]
