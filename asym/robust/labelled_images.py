"""Labelled image sets cut as a classifier's weights are evaluated: the HR images of ``evaluate.py classify``.

* ``load_labelled_set``: an ImageFolder (``DIR/<class>/<image>``, class index = sorted folder order, as torchvision's
  ``ImageFolder`` and the ImageNet validation layout; a class folder without images is an error, as there), a folder
  with ``labels.csv`` (``image,label``: a path relative to the folder, an integer class index), or a Hub /
  ``datasets`` image-classification set (an image column and a ``ClassLabel`` or integer label column).
  ``LabelledSet.check_images`` decodes every image once, so a broken file fails before any work.
* ``ClassificationSet``: a ``LabelledSet`` cut by one ``EvalCrop`` (``asym.robust.data``: a classifier's evaluation
  cut, e.g. resize 232, centre 224 for ResNet-50's IMAGENET1K_V2) into SR test items: the crop is the HR image, its
  LR the antialiased bicubic downscale by ``scale`` (``asym.sr.data.bicubic_downscale``, as ``asym.sr.eval_sets``
  makes LR for image folders).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Subset

from ..core.errors import UserError, reading
from ..core.images import decode, is_saved_dataset, to_tensor
from ..core.sources import resolve_source
from ..sr.eval_sets import SRTestSet
from .data import EvalCrop, class_folders, label_table

LABELS_FILE = "labels.csv"


@dataclass
class LabelledSet:
    """Labelled images, decoded on access.

    Attributes:
        label: the set's name (its folder or Hub id).
        sources: one file path or ``(table, column, row)`` cell per image.
        labels: the class index of each image.
        class_names: the class of each index (folder names, ClassLabel names), None where the source has none.
        names: one id per image (its path relative to the folder, or its row).
    """

    label: str
    sources: list
    labels: list[int]
    class_names: list[str] | None
    names: list[str]

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Sequence[int]) -> LabelledSet:
        pick = lambda values: [values[i] for i in indices]  # noqa: E731
        return LabelledSet(self.label, pick(self.sources), pick(self.labels), self.class_names, pick(self.names))

    def decode(self, index: int) -> torch.Tensor:
        """Image ``index`` as a (3, H, W) tensor in [0, 1]; a file that cannot be decoded is a ``UserError``."""
        with reading(lambda: f"{self.names[index]} of {self.label}", "image"):
            return to_tensor(decode(self.sources[index]))

    def check_images(self) -> None:
        """Decode every image once (in threads), so that a truncated or foreign file is one ``UserError`` before any
        work is done or written, not a failure half-way through a run."""
        from concurrent.futures import ThreadPoolExecutor

        def failure(index: int) -> str | None:
            try:
                with reading(lambda: f"{self.names[index]} of {self.label}", "image"):
                    decode(self.sources[index])
            except UserError as err:
                return str(err)
            return None

        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            failures = [f for f in pool.map(failure, range(len(self))) if f]
        if failures:
            more = f" ({len(failures) - 1} more images of the set cannot be read either)" if len(failures) > 1 else ""
            raise UserError(failures[0] + more)


class ClassificationSet(Sequence):
    """Labelled images cut by one ``EvalCrop`` as SR test items: ``set[i]`` is ``{"hr": (3, S, S), "lr": (3, S /
    scale, S / scale)}``.

    Attributes:
        images: the ``LabelledSet``; ``labels``, ``class_names`` and ``names`` are its.
        crop, scale: the HR cut and the LR factor.
        name: the set's name with the cut and the scale (keys the SR output cache), e.g. ``val-224px-x4``.
    """

    def __init__(self, images: LabelledSet, crop: EvalCrop, scale: int):
        if crop.size < 16 or crop.size % scale:
            raise UserError(f"an HR crop of {crop.size} pixels ({crop}) must be at least 16 and a multiple of --scale "
                            f"{scale}: pass --image_size (e.g. {max(16, crop.size - crop.size % scale)})")  # fmt: skip
        self.images, self.crop, self.scale = images, crop, scale
        self.labels, self.class_names, self.names = images.labels, images.class_names, images.names
        self.name = f"{images.label}-{crop.tag}-x{scale}"

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from ..sr.data import bicubic_downscale

        hr = self.crop(self.images.decode(index))
        low = self.crop.size // self.scale
        return {"hr": hr, "lr": bicubic_downscale(hr, (low, low))}

    def subset(self, indices: Sequence[int]) -> ClassificationSet:
        return ClassificationSet(self.images.subset(indices), self.crop, self.scale)

    def one(self, index: int) -> SRTestSet:
        """Image ``index`` alone as an SR test set (only one image's outputs are held in memory at a time)."""
        return SRTestSet(self.name, self.scale, [self.names[index]], Subset(self, [index]))


def _image_folder(folder: str) -> tuple[list, list[int], list[str], list[str]]:
    """An ImageFolder, read by ``asym.robust.data.class_folders`` (as train_robust.py reads it): its images, their
    labels (the class's index), the classes and the images' names relative to the folder."""
    otherwise = f", a {LABELS_FILE} (image,label) or a Hub / datasets image-classification set"
    classes = class_folders(folder, otherwise)
    sources, labels, names = [], [], []
    for index, paths in enumerate(classes.values()):
        sources += paths
        labels += [index] * len(paths)
        names += [os.path.relpath(path, folder).replace(os.sep, "/") for path in paths]
    return sources, labels, list(classes), names


def _labels_csv(folder: str) -> tuple[list, list[int], None, list[str]]:
    """A folder's labels.csv: one ``image,label`` row per image (a path relative to the folder, a class index)."""
    path = os.path.join(folder, LABELS_FILE)
    with reading(path, "label file", "csv"), open(path, newline="", encoding="utf-8-sig") as file:
        rows = list(csv.DictReader(file))
    if not rows or not {"image", "label"} <= set(rows[0]):
        raise UserError(f"{path} must have the columns image,label and at least one row")
    sources, labels, names = [], [], []
    for line, row in enumerate(rows, start=2):
        image, label = (row.get("image") or "").strip(), (row.get("label") or "").strip()
        if not image or not label.lstrip("-").isdigit() or int(label) < 0:
            raise UserError(f"{path} line {line}: expected an image path and a class index >= 0, got "
                            f"{image!r}, {label!r}")  # fmt: skip
        source = os.path.join(folder, image)
        if not os.path.isfile(source):
            raise UserError(f"{path} line {line}: image {source} does not exist")
        sources.append(source)
        labels.append(int(label))
        names.append(image)
    return sources, labels, None, names


def _hub_set(name: str, image_column: str, label_column: str, split: str) -> tuple[list, list[int], list | None, list]:
    """A Hub id or local ``datasets`` path's ``split``, read by ``asym.robust.data.label_table``."""
    table, labels, class_names = label_table(name, split, image_column, label_column, "--split")
    rows = range(len(table))
    return [(table, image_column, i) for i in rows], labels, class_names, [f"row {i}" for i in rows]


def load_labelled_set(source: str, split: str = "validation", image_column: str = "image",
                      label_column: str = "label") -> LabelledSet:  # fmt: skip
    """A labelled image set (see the module docstring); images are decoded on access (``check_images`` decodes all).

    Raises:
        UserError: a missing folder, one without class folders, a class folder without images, a malformed
            labels.csv or label column, a Hub set that cannot be loaded.
    """
    if os.path.isdir(source) and not is_saved_dataset(source):
        found = _labels_csv(source) if os.path.isfile(os.path.join(source, LABELS_FILE)) else _image_folder(source)
    elif os.path.exists(source) and not os.path.isdir(source) and not source.endswith((".parquet", ".arrow")):
        raise UserError(f"dataset {source} is a file, not a folder of class folders or a datasets file")
    elif resolve_source(source).kind in ("missing", "name"):  # a Hub set is named owner/name
        raise UserError(f"dataset {source} does not exist (expected DIR/<class>/<image>, a folder with {LABELS_FILE}, "
                        "or a Hub id owner/name)")  # fmt: skip
    else:
        found = _hub_set(source, image_column, label_column, split)
    sources, labels, class_names, names = found
    if not sources:
        raise UserError(f"dataset {source} has no images")
    label = os.path.basename(os.path.normpath(source)) if os.path.exists(source) else source
    return LabelledSet(label, sources, labels, class_names, names)


def load_classification_set(source: str, image_size: int | EvalCrop = 224, scale: int = 4,
                            split: str = "validation", image_column: str = "image",
                            label_column: str = "label") -> ClassificationSet:  # fmt: skip
    """``load_labelled_set`` cut by ``image_size`` (an ``EvalCrop``, or a side for ``EvalCrop.standard``) into HR
    crops with x``scale`` LR."""
    crop = image_size if isinstance(image_size, EvalCrop) else EvalCrop.standard(image_size)
    return ClassificationSet(load_labelled_set(source, split, image_column, label_column), crop, scale)


__all__ = ["ClassificationSet", "LabelledSet", "load_classification_set", "load_labelled_set"]
