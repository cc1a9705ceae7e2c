"""Top-1 error of image classifiers on super-resolved images (the robust-loss study's Figure 1).

Does an SR model trained with a robust perceptual loss restore what a classifier needs? Each labelled image is cut as
torchvision's ImageNet evaluation transform cuts it (shorter side resized to ``256 / 224 * image_size``, bilinear and
antialiased, then the centre ``image_size`` square): that crop is the HR image. Its LR is the antialiased bicubic
downscale by ``scale`` (``asym.data.bicubic_downscale``, as ``asym.sr_eval`` makes LR for image folders); every SR
model restores it (``run_sr``, through the output cache) and every classifier labels the restoration.

* ``load_classification_set``: an ImageFolder (``DIR/<class>/<image>``, class index = sorted folder order, as
  torchvision's ``ImageFolder`` and the ImageNet validation layout), a folder with ``labels.csv`` (``image,label``:
  a path relative to the folder, an integer class index), or a Hub / ``datasets`` image-classification set
  (an image column and a ``ClassLabel`` or integer label column).
* ``load_classifier``: a torchvision classification model by name (``vgg19``, ``resnet50``, ...; pretrained, random
  or a named torchvision weights enum) or a folder saved by train_robust.py (``asym.robust.Classifier``).
* ``top1_errors`` / ``plot_top1_errors``: the counts per (classifier, SR model) and Figure 1's grouped bar chart.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import torch

from .data import IMAGE_EXTENSIONS, _decode, is_saved_dataset, open_image_table, to_tensor
from .errors import UserError, reading, summarize
from .sr_eval import SROutputCache, SRSource, SRTestSet, run_sr

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESIZE_RATIO = 256 / 224  # torchvision's ImageNet evaluation: resize to 256, centre crop 224
LABELS_FILE = "labels.csv"


def imagenet_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision's ImageNet evaluation cut of a (3, H, W) image in [0, 1]: the shorter side resized to
    ``round(size * 256 / 224)`` (bilinear, antialiased), then the centre ``size`` x ``size`` square."""
    from torchvision.transforms import functional as TF

    resized = TF.resize(image, round(size * RESIZE_RATIO), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(resized, [size, size]).clamp(0, 1)


class ClassificationSet(Sequence):
    """Labelled images as SR test items: ``set[i]`` is ``{"hr": (3, S, S), "lr": (3, S / scale, S / scale)}``.

    Attributes:
        name: the set's name (folder or Hub id), with the crop size and scale (keys the SR output cache).
        names: one id per image (its path relative to the folder, or its row).
        labels: the class index of each image.
        class_names: the class of each index (folder names, ClassLabel names), None where the source has none.
    """

    def __init__(self, name: str, sources: list, labels: list[int], class_names: list[str] | None, image_size: int,
                 scale: int, names: list[str]):  # fmt: skip
        self.name, self.sources, self.labels, self.class_names = name, sources, labels, class_names
        self.image_size, self.scale, self.names = image_size, scale, names

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from .data import bicubic_downscale

        with reading(lambda: str(self.names[index]), "image"):
            image = to_tensor(_decode(self.sources[index]))
        hr = imagenet_crop(image, self.image_size)
        low = self.image_size // self.scale
        return {"hr": hr, "lr": bicubic_downscale(hr, (low, low))}

    def subset(self, indices: Sequence[int]) -> ClassificationSet:
        pick = lambda values: [values[i] for i in indices]  # noqa: E731
        return ClassificationSet(self.name, pick(self.sources), pick(self.labels), self.class_names, self.image_size,
                                 self.scale, pick(self.names))  # fmt: skip

    def one(self, index: int) -> SRTestSet:
        """Image ``index`` alone as an SR test set (only one image's outputs are held in memory at a time)."""
        return SRTestSet(self.name, self.scale, [self.names[index]], _Item(self, index))


class _Item:
    def __init__(self, dataset: ClassificationSet, index: int):
        self.dataset, self.index = dataset, index

    def __getitem__(self, _):
        return self.dataset[self.index]


def _image_folder(folder: str) -> tuple[list, list[int], list[str], list[str]]:
    """An ImageFolder: classes are the sorted sub-folders (their index is the label), images sorted inside each."""
    classes = sorted(e for e in os.listdir(folder) if os.path.isdir(os.path.join(folder, e)) and not e.startswith("."))
    sources, labels, names = [], [], []
    for index, cls in enumerate(classes):
        for root, dirs, files in os.walk(os.path.join(folder, cls)):
            dirs.sort()
            for file in sorted(files):
                if file.lower().endswith(IMAGE_EXTENSIONS) and not file.startswith("."):
                    sources.append(os.path.join(root, file))
                    labels.append(index)
                    names.append(os.path.relpath(sources[-1], folder).replace(os.sep, "/"))
    if not sources:
        what = "no class sub-folders" if not classes else f"no images in its {len(classes)} class sub-folders"
        raise UserError(f"dataset {folder} has {what}: expected DIR/<class>/<image> ({'/'.join(IMAGE_EXTENSIONS)}), "
                        f"a {LABELS_FILE} (image,label) or a Hub / datasets image-classification set")  # fmt: skip
    return sources, labels, classes, names


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
    """A Hub id or local ``datasets`` path with an image column and an integer (or ClassLabel) label column."""
    import datasets

    table = open_image_table(name, [image_column], split, [label_column])
    feature = table.features[label_column]
    class_names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    labels = table[label_column]
    bad = [i for i, v in enumerate(labels) if isinstance(v, bool) or not isinstance(v, int) or v < 0]
    if bad:
        raise UserError(f"{name}: column {label_column!r} must hold class indices >= 0 (row {bad[0]}: "
                        f"{labels[bad[0]]!r})")  # fmt: skip
    rows = range(len(table))
    return [(table, image_column, i) for i in rows], labels, class_names, [f"row {i}" for i in rows]


def load_classification_set(source: str, image_size: int = 224, scale: int = 4, split: str = "validation",
                            image_column: str = "image", label_column: str = "label") -> ClassificationSet:  # fmt: skip
    """A labelled image set (see the module docstring), cut to ``image_size`` HR crops with x``scale`` LR.

    Raises:
        UserError: a missing folder, one without class folders or images, a malformed labels.csv or label column,
            an ``image_size`` that ``scale`` does not divide, a Hub set that cannot be loaded.
    """
    if image_size < 16 or image_size % scale:
        raise UserError(f"--image_size {image_size} must be at least 16 and a multiple of --scale {scale}")
    if os.path.isdir(source) and not is_saved_dataset(source):
        found = _labels_csv(source) if os.path.isfile(os.path.join(source, LABELS_FILE)) else _image_folder(source)
    elif os.path.exists(source) and not os.path.isdir(source) and not source.endswith((".parquet", ".arrow")):
        raise UserError(f"dataset {source} is a file, not a folder of class folders or a datasets file")
    elif not os.path.exists(source) and (source.startswith((".", "/", "~")) or source.count("/") != 1):
        raise UserError(f"dataset {source} does not exist (expected DIR/<class>/<image>, a folder with {LABELS_FILE}, "
                        "or a Hub id owner/name)")  # fmt: skip
    else:
        found = _hub_set(source, image_column, label_column, split)
    sources, labels, class_names, names = found
    if not sources:
        raise UserError(f"dataset {source} has no images")
    label = os.path.basename(os.path.normpath(source)) if os.path.exists(source) else source
    return ClassificationSet(f"{label}-{image_size}px-x{scale}", sources, labels, class_names, image_size, scale, names)


# --- Classifiers --------------------------------------------------------------------------------------------------


class ImageClassifier:
    """A classifier of images in [0, 1]: ``classifier(x)`` -> (B, classes) logits, with ``name``, ``class_names``
    (None where unknown) and ``num_classes``."""

    def __init__(self, name: str, model: torch.nn.Module, class_names: list[str] | None, num_classes: int | None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None):  # fmt: skip
        self.name, self.model, self.class_names, self.num_classes = name, model.eval(), class_names, num_classes
        self.mean = None if mean is None else torch.tensor(mean).reshape(1, 3, 1, 1)
        self.std = None if std is None else torch.tensor(std).reshape(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is not None:
            x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return self.model(x).float()


def load_classifier(spec: str, weights: str = "pretrained", device: str | torch.device = "cpu",
                    seed: int = 0) -> ImageClassifier:  # fmt: skip
    """A torchvision classification model by name, or a train_robust.py folder / Hub id (``asym.robust.Classifier``,
    which normalises its input itself and names its classes in ``class_names``).

    ``weights`` (torchvision models only): ``pretrained`` (the name's default ImageNet weights, from torch's cache or
    downloaded), ``random`` (drawn after ``torch.manual_seed(seed)``, so a run is reproducible) or a weights enum
    member such as ``IMAGENET1K_V1``.

    Raises:
        UserError: an unknown name or weights, pretrained weights that cannot be obtained, a folder that is no
            saved classifier.
    """
    import torchvision

    if os.path.isdir(spec) or "/" in spec or spec.startswith((".", "~")):
        try:
            from .robust import Classifier
        except ImportError as err:
            raise UserError(
                f"{spec}: loading train_robust.py classifiers needs asym.robust ({summarize(err)})"
            ) from err
        model = Classifier.from_pretrained(spec).to(device)
        names = getattr(model, "class_names", None)
        classes = getattr(model, "num_classes", None) or (len(names) if names else None)
        return ImageClassifier(os.path.basename(os.path.normpath(spec)), model, list(names) if names else None, classes)
    known = torchvision.models.list_models(module=torchvision.models)
    if spec not in known:
        raise UserError(f"unknown classifier {spec!r}: pass a train_robust.py folder or a torchvision classification "
                        f"model ({', '.join(known)})")  # fmt: skip
    if weights == "random":
        torch.manual_seed(seed)
        return ImageClassifier(spec, torchvision.models.get_model(spec, weights=None).to(device), None, 1000,
                               IMAGENET_MEAN, IMAGENET_STD)  # fmt: skip
    enum = torchvision.models.get_model_weights(spec)
    if weights == "pretrained":
        chosen = enum.DEFAULT
    elif weights in enum.__members__:
        chosen = enum[weights]
    else:
        raise UserError(
            f"--classifier_weights {weights!r}: pass pretrained, random or one of {', '.join(enum.__members__)}"
        )
    try:
        model = torchvision.models.get_model(spec, weights=chosen)
    except Exception as err:  # noqa: BLE001 - a download fails in many ways offline
        raise UserError(f"the {chosen} weights of {spec} could not be obtained ({summarize(err)}): put them in torch's "
                        "cache (torch.hub.get_dir()) or pass --classifier_weights random") from err  # fmt: skip
    categories = list(chosen.meta.get("categories") or []) or None
    transform = chosen.transforms()
    return ImageClassifier(spec, model.to(device), categories, len(categories) if categories else None,
                           transform.mean, transform.std)  # fmt: skip


def target_indices(dataset: ClassificationSet, classifier: ImageClassifier) -> tuple[list[int], str]:
    """The classifier output each image's label stands for, and how it was found: by class name where the classifier
    names every class of the dataset, else the label itself (an ImageNet index for ImageNet's sorted synset folders).

    Raises:
        UserError: a label the classifier has no output for.
    """
    if classifier.class_names and dataset.class_names and set(dataset.class_names) <= set(classifier.class_names):
        index = {name: i for i, name in enumerate(classifier.class_names)}
        return [index[dataset.class_names[label]] for label in dataset.labels], "by class name"
    if classifier.num_classes is not None and max(dataset.labels) >= classifier.num_classes:
        raise UserError(f"{dataset.name} has labels up to {max(dataset.labels)} but {classifier.name} has "
                        f"{classifier.num_classes} classes")  # fmt: skip
    return list(dataset.labels), "labels as class indices"


def top1_errors(classifiers: list[ImageClassifier], sources: list[SRSource], model_names: list[str],
                dataset: ClassificationSet, cache: SROutputCache | None, device: str | torch.device = "cpu",
                tile: int = 0, progress: bool = True) -> list[dict]:  # fmt: skip
    """Top-1 errors of every classifier on every SR model's restorations of ``dataset``: one record per (classifier,
    model) with ``images``, ``errors`` and ``top1_error`` (errors / images). The models' outputs of one image are
    classified as one batch."""
    from .progress import tqdm

    targets = [target_indices(dataset, c)[0] for c in classifiers]
    wrong = torch.zeros(len(classifiers), len(sources), dtype=torch.long)
    for i in tqdm(range(len(dataset)), desc=f"classify {dataset.name}", disable=not progress or len(dataset) < 2):
        one = dataset.one(i)
        batch = torch.cat([run_sr(source, one, cache, tile=tile)[dataset.names[i]] for source in sources])
        for k, classifier in enumerate(classifiers):
            predicted = classifier(batch.to(device)).argmax(1).cpu()
            wrong[k] += (predicted != targets[k][i]).long()
    return [{"classifier": c.name, "model": m, "dataset": dataset.name, "scale": dataset.scale, "images": len(dataset),
             "errors": int(wrong[k, j]), "top1_error": float(wrong[k, j]) / len(dataset)}
            for k, c in enumerate(classifiers) for j, m in enumerate(model_names)]  # fmt: skip


def top1_table(records: list[dict]) -> str:
    """Markdown: a row per SR model, a column per classifier, top-1 error in %."""
    classifiers = list(dict.fromkeys(r["classifier"] for r in records))
    by_key = {(r["model"], r["classifier"]): r for r in records}
    lines = ["| SR model | " + " | ".join(classifiers) + " |", "|" + " --- |" * (len(classifiers) + 1)]
    for model in dict.fromkeys(r["model"] for r in records):
        cells = [f"{100 * by_key[(model, c)]['top1_error']:.1f}" for c in classifiers]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    first = records[0]
    lines.append(f"\nTop-1 error (%) on {first['images']} images of {first['dataset']}: each HR crop downscaled "
                 f"x{first['scale']} (bicubic) and restored by the SR model, then classified.")  # fmt: skip
    return "\n".join(lines)


def plot_top1_errors(records: list[dict], path: str, labels: dict[str, str] | None = None) -> str:
    """Figure 1: a group of bars per SR model (``labels`` may rename them), one bar per classifier, top-1 error in %,
    each bar labelled with its value. Returns ``path`` (PNG, written atomically)."""
    from .analysis import _figure, save_figure

    classifiers = list(dict.fromkeys(r["classifier"] for r in records))
    models = list(dict.fromkeys(r["model"] for r in records))
    by_key = {(r["model"], r["classifier"]): r for r in records}
    fig = _figure(max(4.0, 1.2 + len(models) * (0.3 + 0.35 * len(classifiers))), 3.8)
    ax = fig.subplots()
    width = 0.8 / len(classifiers)
    for k, classifier in enumerate(classifiers):
        xs = [j + (k - (len(classifiers) - 1) / 2) * width for j in range(len(models))]
        heights = [100 * by_key[(m, classifier)]["top1_error"] for m in models]
        bars = ax.bar(xs, heights, width, label=classifier)
        ax.bar_label(bars, labels=[f"{h:.0f}" for h in heights], fontsize=7, padding=1)
    ax.set_xticks(range(len(models)), [(labels or {}).get(m, m) for m in models], rotation=20, ha="right")
    ax.set_ylabel("top-1 error (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Classifiers on super-resolved images ({records[0]['dataset']}, {records[0]['images']} images)",
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=8, title="classifier", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, path)


__all__ = [
    "ClassificationSet",
    "ImageClassifier",
    "imagenet_crop",
    "load_classification_set",
    "load_classifier",
    "plot_top1_errors",
    "target_indices",
    "top1_errors",
    "top1_table",
]
