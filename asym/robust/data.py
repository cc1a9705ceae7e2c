"""The labelled images robust classifiers train and validate on (``train_robust.py``).

``load_classification_data``: labelled images from ``builtin`` (one class per photograph: crops of its left three
quarters to train, of its right quarter to validate), an image folder (``DIR/<class>/*``, optionally ``DIR/train/`` +
``DIR/val/``) or a Hub / ``datasets`` image-classification set; ``ClassificationData`` holds the two sets and the class
names, ``subset`` a quick evaluation's part of one. ``EvalCrop``: a classifier's evaluation cut (the short side
resized, then the centre crop; ``EvalCrop.standard``: 256 / 224 of the crop, the one validation cut of training here
and of ``evaluate.py classify`` for classifiers without a torchvision preset). ``class_folders`` and ``label_table``
read class folders and label tables, for training and evaluation alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import UserError, reading, summarize
from ..core.images import BUILTIN_IMAGES, IMAGE_EXTENSIONS, decode, image_files, is_saved_dataset, open_image_table
from ..core.images import to_tensor as _to_tensor
from ..core.sources import resolve_source
from ..sr.data import load_sr_images


@dataclass(frozen=True)
class EvalCrop:
    """A classifier's evaluation cut, as torchvision's ``ImageClassification`` presets make it: the shorter side
    resized to ``resize`` (``interpolation``, antialiased), then the centre ``size`` x ``size`` square.

    Applied to float tensors (torchvision's published accuracies come from PIL images: antialiased tensor resizing is
    torchvision's match for PIL's, not bit-identical to it)."""

    size: int
    resize: int
    interpolation: str = "bilinear"

    @classmethod
    def standard(cls, size: int = 224) -> EvalCrop:
        """The classic ImageNet evaluation cut: resize to 256/224 of ``size`` (bilinear), centre ``size``."""
        return cls(size, round(size * 256 / 224))

    @classmethod
    def from_preset(cls, preset) -> EvalCrop:
        """The cut of a torchvision weights' ``transforms()`` (``crop_size``, ``resize_size``, ``interpolation``)."""
        (size,), (resize,) = preset.crop_size, preset.resize_size
        return cls(int(size), int(resize), preset.interpolation.value)

    def scaled(self, size: int) -> EvalCrop:
        """The same cut for a ``size`` crop: the resize keeps its ratio to the crop, the interpolation is kept."""
        if self == EvalCrop.standard(self.size):  # the exact 256/224, not a ratio of rounded sides
            return EvalCrop.standard(size)
        return EvalCrop(size, round(size * self.resize / self.size), self.interpolation)

    @property
    def tag(self) -> str:
        """Short, for set names and cache folders: ``224px`` for the standard cut, ``224px-resize232`` otherwise."""
        if self == EvalCrop.standard(self.size):
            return f"{self.size}px"
        other = "" if self.interpolation == "bilinear" else f"-{self.interpolation}"
        return f"{self.size}px-resize{self.resize}{other}"

    def __str__(self) -> str:
        return f"resize {self.resize} ({self.interpolation}), centre {self.size}"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """The cut of a (3, H, W) image in [0, 1], clamped to [0, 1] (bicubic overshoots)."""
        from torchvision.transforms import functional as TF

        mode = TF.InterpolationMode(self.interpolation)
        resized = TF.resize(image, self.resize, interpolation=mode, antialias=True)
        return TF.center_crop(resized, [self.size, self.size]).clamp(0, 1)


@dataclass
class ClassificationData:
    """Labelled training and validation images; each item is ``{"image": (3, crop, crop) in [0, 1], "label": int}``."""

    name: str
    class_names: list[str]
    train: torch.utils.data.Dataset
    validation: torch.utils.data.Dataset
    description: str


class BuiltinCrops(torch.utils.data.Dataset):
    """Crops of the ``builtin`` photographs, one class per photograph.

    Each photograph's right-most band (a quarter of its width, at least one crop wide) is held out: training crops
    come from the rest, at random places (torch's RNG) and randomly flipped; validation crops are ``per_image``
    fixed windows of the band, placed by ``seed``. Validation thus asks whether an unseen part of a photograph is
    recognised.
    """

    def __init__(self, images: Sequence[np.ndarray], crop_size: int, train: bool, per_image: int = 8, seed: int = 0):
        self.images, self.crop_size, self.train = images, crop_size, train
        self.bands = [max(crop_size, image.shape[1] // 4) for image in images]
        too_small = [name for name, image, band in zip(BUILTIN_IMAGES, images, self.bands)
                     if min(image.shape[0], image.shape[1] - band) < crop_size]  # fmt: skip
        if too_small:
            limit = min(min(image.shape[0], image.shape[1] // 2) for image in images)
            raise UserError(f"--crop_size {crop_size} is too large for the builtin photographs ({too_small[0]} has "
                            f"no room for a training and a validation crop): use at most {limit}")  # fmt: skip
        if train:
            self.windows = None
        else:
            rng = torch.Generator().manual_seed(seed)
            self.windows = []
            for i, image in enumerate(images):
                h, w = image.shape[:2]
                for _ in range(per_image):
                    top = int(torch.randint(h - crop_size + 1, (), generator=rng))
                    left = w - self.bands[i] + int(torch.randint(self.bands[i] - crop_size + 1, (), generator=rng))
                    self.windows.append((i, top, left))

    def __len__(self) -> int:
        return len(self.images) if self.train else len(self.windows)

    def __getitem__(self, index: int) -> dict:
        c = self.crop_size
        if self.train:
            i = index
            h, w = self.images[i].shape[:2]
            top = int(torch.randint(h - c + 1, ()))
            left = int(torch.randint(w - self.bands[i] - c + 1, ()))
        else:
            i, top, left = self.windows[index]
        image = _to_tensor(self.images[i][top : top + c, left : left + c])
        if self.train and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return {"image": image.contiguous(), "label": i}


class LabelledImages(torch.utils.data.Dataset):
    """Images (file paths or ``(table, column, row)`` cells) with labels, decoded on access.

    Training: a random resized crop (scale 0.08..1, aspect 3/4..4/3, torch's RNG) and a random horizontal flip, the
    robustness library's ImageNet augmentation without its colour jitter and lighting noise. Evaluation: the short
    side resized to ``crop_size / 0.875``, then the centre crop. A file that cannot be decoded is a ``UserError``
    naming it.
    """

    def __init__(self, sources: list, labels: list[int], crop_size: int, train: bool):
        self.sources, self.labels, self.crop_size, self.train = sources, labels, crop_size, train

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> dict:
        from torchvision.transforms import v2

        source = self.sources[index]
        with reading(lambda: _source_name(source), "image"):
            image = _to_tensor(decode(source))
        c = self.crop_size
        if self.train:
            top, left, h, w = v2.RandomResizedCrop.get_params(image, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
            image = v2.functional.resized_crop(image, top, left, h, w, [c, c], antialias=True)
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
        else:
            image = EvalCrop.standard(c)(image)
        return {"image": image.clamp(0, 1).contiguous(), "label": self.labels[index]}


def _source_name(source) -> str:
    if isinstance(source, tuple):
        table, column, row = source
        return f"{table[row][column].get('path') or 'row'} (row {row})"
    return str(source)


def load_classification_data(name: str, crop_size: int, seed: int = 0, num_validation_crops: int = 8,
                             validation_fraction: float = 0.1, train_split: str = "train",
                             validation_split: str = "validation", image_column: str = "image",
                             label_column: str = "label") -> ClassificationData:  # fmt: skip
    """Training and validation images of a classification source.

    Args:
        name: ``builtin`` (the 13 scikit-image photographs, one class each; a smoke-test set), a folder
            (``DIR/<class>/*`` split per class by ``seed``, or ``DIR/train/<class>/*`` + ``DIR/val/<class>/*``), or a
            Hub dataset id / ``datasets`` folder with an image and an integer label column (ImageNet's layout).
        crop_size: side of the square crops.
        seed: places the builtin validation crops and splits a folder without ``val/``.
        num_validation_crops: builtin validation crops per photograph.
        validation_fraction: share of each class held out from a folder without ``val/``.
        train_split, validation_split, image_column, label_column: of a Hub / ``datasets`` source.

    Raises:
        UserError: a missing source, a folder without class folders or with an empty class, an unreadable image,
            validation classes unknown to training, a dataset that cannot be loaded or lacks a column, or labels
            outside its classes.
    """
    if crop_size < 1:
        raise UserError(f"--crop_size must be positive, got {crop_size}")
    if name == "builtin":
        if num_validation_crops < 1:
            raise UserError(f"--num_validation_crops must be at least 1, got {num_validation_crops}")
        images = load_sr_images("builtin")
        train = BuiltinCrops(images, crop_size, train=True)
        val = BuiltinCrops(images, crop_size, train=False, per_image=num_validation_crops, seed=seed)
        description = (f"builtin: {len(images)} photographs, one class each; random {crop_size}x{crop_size} training "
                       f"crops, {len(val)} fixed validation crops from a held-out band of each")  # fmt: skip
        return ClassificationData("builtin", list(BUILTIN_IMAGES), train, val, description)
    if os.path.isdir(name) and not is_saved_dataset(name):
        return _image_folder(name, crop_size, seed, validation_fraction)
    if resolve_source(name).kind == "missing" and not os.path.exists(os.path.expanduser(name)):
        raise UserError(f"dataset {name} does not exist: pass builtin, an image folder (DIR/<class>/*) or a Hub id")
    return _table(name, crop_size, train_split, validation_split, image_column, label_column)


def class_folders(folder: str, otherwise: str = "") -> dict[str, list[str]]:
    """``{class name: image paths}`` of an ImageFolder ``folder/<class>/**``: the classes are its sorted, non-hidden
    sub-folders (their order is the label) and their images ``image_files``'s; the one reader of class folders, for
    training (``load_classification_data``) and evaluation (``asym.robust.labelled_images``) alike. No class folder,
    or class folders without images (all named at once, as torchvision's ``ImageFolder`` refuses them), is a
    ``UserError``; ``otherwise`` says what else the folder could have held."""
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))
    if not classes:
        raise UserError(f"{folder} has no class folders: expected {folder}/<class>/<image> "
                        f"({'/'.join(IMAGE_EXTENSIONS)}){otherwise}")  # fmt: skip
    found = {label: image_files(os.path.join(folder, label)) for label in classes}
    empty = [label for label, paths in found.items() if not paths]
    if empty:
        listed = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise UserError(f"{folder}: {len(empty)} of its {len(classes)} class folders hold no images "
                        f"({'/'.join(IMAGE_EXTENSIONS)}): {listed}; add images or remove the folders")  # fmt: skip
    return found


def _check_readable(paths: list[str], what: str) -> None:
    """Every image's header parses (in threads; headers only, so ImageNet-sized folders take minutes, not hours)."""
    from PIL import Image

    def bad(path: str) -> str | None:
        try:
            with Image.open(path) as image:
                image.size  # noqa: B018 - parsing the header is the check
        except (OSError, SyntaxError, ValueError) as err:
            return f"{path} ({summarize(err)})"
        return None

    with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        broken = [b for b in pool.map(bad, paths) if b]
    if broken:
        more = f" and {len(broken) - 1} more" if len(broken) > 1 else ""
        raise UserError(f"{what}: {broken[0]}{more} cannot be read as an image: remove or replace it")


def _image_folder(folder: str, crop_size: int, seed: int, validation_fraction: float) -> ClassificationData:
    val_dir = next((os.path.join(folder, d) for d in ("val", "validation") if os.path.isdir(os.path.join(folder, d))),
                   None)  # fmt: skip
    if os.path.isdir(os.path.join(folder, "train")) and val_dir:
        train_classes = class_folders(os.path.join(folder, "train"))
        val_classes = class_folders(val_dir)
        unknown = sorted(set(val_classes) - set(train_classes))
        if unknown:
            raise UserError(f"{val_dir} has classes that {folder}/train lacks ({', '.join(unknown[:3])}): the two "
                            "must name their class folders alike")  # fmt: skip
        names = list(train_classes)
        train = [(p, names.index(c)) for c, paths in train_classes.items() for p in paths]
        val = [(p, names.index(c)) for c, paths in val_classes.items() for p in paths]
        how = f"{folder}/train and {val_dir}"
    else:
        if not 0 < validation_fraction < 1:
            raise UserError(f"--validation_fraction must be between 0 and 1, got {validation_fraction}")
        classes = class_folders(folder, f" (or {folder}/train/<class>/ and {folder}/val/<class>/)")
        names, train, val = list(classes), [], []
        rng = torch.Generator().manual_seed(seed)
        for label, paths in enumerate(classes.values()):
            order = torch.randperm(len(paths), generator=rng).tolist()
            held = round(validation_fraction * len(paths)) if len(paths) > 1 else 0
            held = max(held, 1) if len(paths) > 1 else 0
            val += [(paths[i], label) for i in sorted(order[:held])]
            train += [(paths[i], label) for i in sorted(order[held:])]
        how = f"{folder}, {validation_fraction:g} of each class held out (seed {seed})"
    if len(names) < 2:
        raise UserError(f"image folder {folder} has {len(names)} class folder: a classifier needs at least 2")
    if not val:
        raise UserError(f"image folder {folder} leaves no validation images: add images or a val/ folder")
    _check_readable([p for p, _ in train + val], folder)
    description = f"{how}: {len(names)} classes, {len(train)} training / {len(val)} validation images"
    train_set, val_set = (LabelledImages([p for p, _ in part], [y for _, y in part], crop_size, part is train)
                          for part in (train, val))  # fmt: skip
    return ClassificationData(folder, names, train_set, val_set, description)


def label_table(name: str, split: str, image_column: str = "image", label_column: str = "label",
                split_flag: str = "--split") -> tuple:  # fmt: skip
    """One split of a Hub id or ``datasets`` path (ImageNet's layout): its table, its labels and the class names of a
    ``ClassLabel`` column (None for plain integers). The one reader of label tables, for training
    (``load_classification_data``) and evaluation (``asym.robust.labelled_images``) alike: labels are integers in
    0..classes-1 (any index >= 0 for plain integers); anything else, e.g. an unlabelled test split (-1), is a
    ``UserError`` that names ``split_flag``."""
    import datasets

    table = open_image_table(name, [image_column], split, [label_column])
    feature = table.features[label_column]
    names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    labels = list(table[label_column])
    if not labels or not all(isinstance(y, (int, np.integer)) and not isinstance(y, bool) for y in labels):
        raise UserError(f"column {label_column!r} of {name} ({split}) holds no integer class labels")
    labels = [int(y) for y in labels]
    _check_labels(name, split, labels, len(names) if names else None, split_flag)
    return table, labels, names


def _check_labels(name: str, split: str, labels: list[int], count: int | None, split_flag: str) -> None:
    """Every label in 0..count-1 (``count`` None: any index >= 0)."""
    bad = next((i for i, y in enumerate(labels) if y < 0 or (count is not None and y >= count)), None)
    if bad is not None:
        allowed = f"0..{count - 1}" if count is not None else "0 and up"
        raise UserError(f"{name} ({split}) has labels outside {allowed} (e.g. {labels[bad]}, row {bad}; unlabelled "
                        f"test rows are -1): choose labelled splits with {split_flag}")  # fmt: skip


def _table(name: str, crop_size: int, train_split: str, validation_split: str, image_column: str,
           label_column: str) -> ClassificationData:  # fmt: skip
    """A Hub id or ``datasets`` path's training and validation splits, read by ``label_table``; the validation labels
    within the training split's classes."""
    if train_split == validation_split:
        raise UserError(f"--train_split and --validation_split are both {train_split!r}: validate on other images")
    flags = "--train_split / --validation_split"
    parts = {split: label_table(name, split, image_column, label_column, flags)
             for split in (train_split, validation_split)}  # fmt: skip
    names = parts[train_split][2] or []
    count = len(names) or max(max(labels) for _, labels, _ in parts.values()) + 1
    _check_labels(name, validation_split, parts[validation_split][1], count, flags)
    if count < 2:
        raise UserError(f"{name} has {count} class: a classifier needs at least 2")
    names = names or [str(i) for i in range(count)]
    datasets = [LabelledImages([(table, image_column, i) for i in range(len(labels))], labels, crop_size,
                               train=split == train_split) for split, (table, labels, _) in parts.items()]  # fmt: skip
    description = (f"{name}: {count} classes, {len(datasets[0])} training ({train_split}) / {len(datasets[1])} "
                   f"validation ({validation_split}) images")  # fmt: skip
    return ClassificationData(name, names, datasets[0], datasets[1], description)


def subset(dataset, n: int | None):
    """At most ``n`` items of ``dataset``, evenly spaced (quick evaluations that still see every class)."""
    if not n or len(dataset) <= n:
        return dataset
    return torch.utils.data.Subset(dataset, [round(i * (len(dataset) - 1) / max(n - 1, 1)) for i in range(n)])


__all__ = [
    "class_folders",
    "EvalCrop",
    "label_table",
    "BuiltinCrops",
    "ClassificationData",
    "LabelledImages",
    "load_classification_data",
    "subset",
]
