"""Adversarially robust classifiers, the feature sources of the robust-perceptual-loss study (Uelwer et al.).

The study trains VGG-19 / ResNet-50 ImageNet classifiers with PGD adversarial training under an L2 ball plus
adversarial logit pairing (ALP, Kannan et al. 2018) and uses their features as perceptual losses. This module holds
what ``train_robust.py`` needs for that, and what reads its results back:

* ``Classifier``: a registry backbone, global average pooling of its last stage and a linear head; images in [0, 1]
  (the backbone normalises them itself). Saved with ``save_pretrained``; its backbone tensors also load as backbone
  weights: ``create_backbone("vgg19", weights="<train_robust.py output>")``.
* ``adversarial_logit_pairing``: ``1/d ||F(x) - F(x_adv)||^2`` per example, averaged over the batch.
* ``adversarial_examples`` (PGD on the cross-entropy, via ``asym.nets.pgd.pgd_attack``) and ``robust_accuracy``
  (clean and PGD-K accuracy on a dataset).
* ``load_classification_data``: labelled images from ``builtin`` (one class per photograph), an image folder
  (``DIR/<class>/*``, optionally ``DIR/train/`` + ``DIR/val/``) or a Hub / ``datasets`` image-classification set.

Attack radii are L2 (or L-inf) norms of the perturbation of a whole image in [0, 1] pixel units, as in the robustness
library (its ImageNet L2 models use eps 3.0). The study's eps 3.88 / 5.82 are 0.01 / 0.015 x sqrt(3 x 224 x 224): a
root-mean-square change of 0.01 / 0.015 per value of a 224x224 image; at another crop size the same RMS needs
eps x side / 224.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import Backbone, create_backbone, max_pooling_kwargs
from .core.errors import UserError, reading, summarize
from .core.hub import HubModel
from .core.images import BUILTIN_IMAGES, IMAGE_EXTENSIONS, decode, is_saved_dataset, open_image_table
from .core.images import to_tensor as _to_tensor
from .core.sources import resolve_source
from .nets.pgd import NORMS, pgd_attack
from .sr.data import load_sr_images

CENTRE_CROP_FRACTION = 0.875  # evaluation: short side resized to crop / 0.875, then the centre crop (224 of 256)


class Classifier(nn.Module, HubModel, tags=["image-classification", "adversarial-robustness"]):
    """Backbone + global average pooling of its last stage + linear head -> class logits.

    Args:
        backbone: registry name (``asym.list_backbones()``), ``timm:<name>`` or ``hf:<id>``.
        num_classes: size of the head.
        weights: initial backbone weights (``random``, ``pretrained``, ``auto``, a file, ``gan:<run>``, ...).
        backbone_kwargs: extra backbone constructor arguments (VGG defaults to max pooling, its classifier form).
        class_names: one name per class, or None.
    """

    card_pipeline_tag = "image-classification"  # the Hub task it performs (the model card's pipeline_tag)

    def __init__(self, backbone: str = "vgg19", num_classes: int = 1000, weights: str = "random",
                 backbone_kwargs: dict | None = None, class_names: list[str] | None = None):  # fmt: skip
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got num_classes={num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
        self.backbone: Backbone = create_backbone(backbone, weights, **max_pooling_kwargs(backbone, backbone_kwargs))
        self.backbone_name, self.num_classes = backbone, int(num_classes)
        self.class_names = list(map(str, class_names)) if class_names is not None else None
        self.head = nn.Linear(self.backbone.channels[-1], self.num_classes)

    def _backbone_is_stored(self) -> bool:
        return True  # trained: its starting weights are not enough to rebuild it

    def card_description(self) -> str:
        return (
            f"Image classifier on the `{self.backbone_name}` backbone (started from: {self.backbone.weights_source}; "
            f"trained, stored here): global average pooling of its last stage and a linear head to "
            f"{self.num_classes} classes, images in [0, 1]. Its backbone loads as feature weights with "
            f'`asym.create_backbone("{self.backbone_name}", weights="<this folder>")`.'
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of images in [0, 1], (B, 3, H, W)."""
        return self.head(self.backbone(x)[-1].float().mean((-2, -1)))


def adversarial_logit_pairing(logits_clean: torch.Tensor, logits_adv: torch.Tensor) -> torch.Tensor:
    """ALP: ``1/d ||F(x) - F(x_adv)||^2`` per example (d = number of classes), averaged over the batch."""
    if logits_clean.shape != logits_adv.shape or logits_clean.dim() != 2:
        raise ValueError(f"ALP needs two (B, classes) logit tensors of one shape, got {tuple(logits_clean.shape)} "
                         f"and {tuple(logits_adv.shape)}")  # fmt: skip
    return (logits_clean - logits_adv).square().mean(1).mean()


def default_step_size(eps: float, steps: int, factor: float) -> float:
    """``factor * eps / steps`` (the robustness library trains with 2.5; the study's PGD-50 eval uses 2), 0 if no
    steps."""
    return factor * eps / steps if steps else 0.0


def check_attack(what: str, norm: str, eps: float, steps: int, step_size: float | None) -> None:
    """A usable attack setting, else one ``UserError`` naming the flags (``what`` is their prefix)."""
    if norm not in NORMS:
        raise UserError(f"--{what}_norm {norm!r} is unknown: use one of {', '.join(NORMS)}")
    if not eps >= 0 or steps < 0 or (step_size is not None and not step_size > 0):
        raise UserError(f"--{what}_eps ({eps}), --{what}_steps ({steps}) and --{what}_step_size ({step_size}) must "
                        "be non-negative (the step size positive)")  # fmt: skip
    if norm == "linf" and eps >= 1:
        raise UserError(f"--{what}_eps {eps} under --{what}_norm linf covers the whole [0, 1] pixel range (it looks "
                        f"like an L2 radius): pass an L-inf radius such as 0.0157 (4/255)")  # fmt: skip


def adversarial_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                         step_size: float | None = None, norm: str = "l2", random_start: bool = False,
                         generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """PGD examples that raise the cross-entropy of ``model`` on labels ``y`` (untargeted), within ``eps`` of ``x``.

    The model is attacked in eval mode (BatchNorm running statistics, no dropout), as the robustness library does,
    and put back in its previous mode. The step size defaults to ``2.5 * eps / steps``.
    """
    if steps == 0 or eps == 0:
        return x.detach()

    def loss(images: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(images).float(), y, reduction="none")

    training = model.training
    model.eval()
    try:
        return pgd_attack(loss, x, eps, steps, step_size, norm, random_start, generator=generator)
    finally:
        model.train(training)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def robust_accuracy(model: nn.Module, dataset, eps: float, steps: int, step_size: float | None = None,
                    norm: str = "l2", batch_size: int = 64, device: str | torch.device = "cpu",
                    progress: bool = False) -> dict:  # fmt: skip
    """Clean and PGD-``steps`` accuracy of ``model`` on ``dataset`` (items ``{"image", "label"}``), in eval mode.

    The attack maximises the cross-entropy from the clean image (no random start, so the result is deterministic),
    step size default ``2 * eps / steps`` (the study's 0.155 for eps 3.88, 50 steps). An image counts as robust only
    if it is classified correctly at EVERY iterate, the clean image and the last one included: any iterate is an
    adversarial example within the ball, so this is at least as strong as judging the last iterate (or the
    robustness library's highest-loss one). Images already misclassified stop being attacked, which makes weak
    models cheap to evaluate.

    Returns:
        ``{"clean_accuracy", "pgd_accuracy", "n", "attack"}``; ``attack`` describes the attack in words.
    """
    step_size = step_size if step_size is not None else default_step_size(eps, steps, 2.0)
    training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    clean_correct = robust_correct = total = 0
    try:
        from .core.progress import tqdm

        for batch in tqdm(loader, desc="PGD evaluation", disable=not progress, leave=False):
            x, y = batch["image"].to(device), batch["label"].to(device)
            alive = _predict(model, x) == y  # correctly classified at every iterate so far
            clean_correct += int(alive.sum())
            if steps and eps and alive.any():
                adv = pgd_attack(_tracking_loss(model, y, alive), x, eps, steps, step_size, norm)
                index = alive.nonzero().squeeze(1)  # the last iterate, which the loss never saw
                alive[index] = _predict(model, adv[index]) == y[index]
            robust_correct += int(alive.sum())
            total += len(y)
    finally:
        model.train(training)
    attack = f"PGD-{steps}, {norm.upper()} eps {eps:g}, step {step_size:.4g}, no random start"
    return {"clean_accuracy": clean_correct / max(total, 1), "pgd_accuracy": robust_correct / max(total, 1),
            "n": total, "attack": attack}  # fmt: skip


def _tracking_loss(model: nn.Module, y: torch.Tensor, alive: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-image cross-entropy for ``pgd_attack`` that marks the images misclassified at the iterate it is given as no
    longer ``alive`` (in place) and computes nothing more for them: their loss is a constant 0, so they stop moving."""

    def loss(images: torch.Tensor) -> torch.Tensor:
        out = 0 * images.flatten(1)[:, 0]  # zeros connected to the input: the gradient is defined and 0
        index = alive.nonzero().squeeze(1)
        if len(index):
            logits = model(images[index]).float()
            alive[index[logits.argmax(1) != y[index]]] = False
            out = out.index_put((index,), F.cross_entropy(logits, y[index], reduction="none"))
        return out

    return loss


# --- Data ----------------------------------------------------------------------------------------------------------


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
            image = v2.functional.resize(image, round(c / CENTRE_CROP_FRACTION), antialias=True)
            image = v2.functional.center_crop(image, [c, c])
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


def _class_folders(folder: str) -> dict[str, list[str]]:
    """``{class name: sorted image paths}`` of ``folder/<class>/**``; an empty class is a ``UserError``."""
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))
    if not classes:
        raise UserError(f"image folder {folder} has no class folders: expected {folder}/<class>/<image> "
                        f"(or {folder}/train/<class>/ and {folder}/val/<class>/)")  # fmt: skip
    found = {}
    for label in classes:
        root = os.path.join(folder, label)
        found[label] = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files
                              if f.lower().endswith(IMAGE_EXTENSIONS))  # fmt: skip
        if not found[label]:
            raise UserError(f"class folder {root} holds no images ({'/'.join(IMAGE_EXTENSIONS)}): remove it or add "
                            "images")  # fmt: skip
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
        train_classes = _class_folders(os.path.join(folder, "train"))
        val_classes = _class_folders(val_dir)
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
        classes = _class_folders(folder)
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


def _table(name: str, crop_size: int, train_split: str, validation_split: str, image_column: str,
           label_column: str) -> ClassificationData:  # fmt: skip
    """A Hub id or ``datasets`` path (loaded by ``datasets.load_dataset`` / ``load_from_disk``), ImageNet's layout."""
    if train_split == validation_split:
        raise UserError(f"--train_split and --validation_split are both {train_split!r}: validate on other images")
    parts = {}
    for split in (train_split, validation_split):
        table = open_image_table(name, [image_column], split, [label_column])
        labels = list(table[label_column])
        if not labels or not all(isinstance(y, (int, np.integer)) and not isinstance(y, bool) for y in labels):
            raise UserError(f"column {label_column!r} of {name} ({split}) holds no integer class labels")
        parts[split] = (table, [int(y) for y in labels])
    feature = parts[train_split][0].features[label_column]
    names = list(getattr(feature, "names", None) or [])
    count = len(names) or max(max(labels) for _, labels in parts.values()) + 1
    for split, (_, labels) in parts.items():
        bad = [y for y in labels if not 0 <= y < count]
        if bad:
            raise UserError(f"{name} ({split}) has labels outside 0..{count - 1} (e.g. {bad[0]}; unlabelled test "
                            "rows are -1): choose labelled splits with --train_split / --validation_split")  # fmt: skip
    if count < 2:
        raise UserError(f"{name} has {count} class: a classifier needs at least 2")
    names = names or [str(i) for i in range(count)]
    datasets = [LabelledImages([(table, image_column, i) for i in range(len(labels))], labels, crop_size,
                               train=split == train_split) for split, (table, labels) in parts.items()]  # fmt: skip
    description = (f"{name}: {count} classes, {len(datasets[0])} training ({train_split}) / {len(datasets[1])} "
                   f"validation ({validation_split}) images")  # fmt: skip
    return ClassificationData(name, names, datasets[0], datasets[1], description)


def subset(dataset, n: int | None):
    """At most ``n`` items of ``dataset``, evenly spaced (quick evaluations that still see every class)."""
    if not n or len(dataset) <= n:
        return dataset
    return torch.utils.data.Subset(dataset, [round(i * (len(dataset) - 1) / max(n - 1, 1)) for i in range(n)])


__all__ = [
    "BuiltinCrops",
    "ClassificationData",
    "Classifier",
    "LabelledImages",
    "adversarial_examples",
    "adversarial_logit_pairing",
    "check_attack",
    "default_step_size",
    "load_classification_data",
    "robust_accuracy",
    "subset",
]
