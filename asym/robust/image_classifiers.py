"""Image classifiers as the robust-loss study's Figure 1 reads them: loaded with the cut their weights are evaluated
with, and their outputs matched to a labelled set's classes.

* ``load_classifier``: a torchvision classification model by name (``vgg19``, ``resnet50``, ...; pretrained, random
  or a named torchvision weights enum) or a folder saved by train_robust.py (``asym.robust.classifier.Classifier``),
  with its cut (``asym.robust.data.EvalCrop``: the weights' torchvision preset, e.g. shorter side resized to 232 and
  the centre 224 for ResNet-50's IMAGENET1K_V2, 256 / 224 for VGG-19's IMAGENET1K_V1).
* ``target_indices``: which classifier output each label stands for (by class name, by ImageNet synset, or the label
  itself where the classifier names no classes); a classifier that names classes but not all of the dataset's is
  refused.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import torch

from ..core.errors import UserError, summarize
from ..core.sources import resolve_source
from .data import EvalCrop
from .labelled_images import LABELS_FILE, ClassificationSet, LabelledSet


class ImageClassifier:
    """A classifier of images in [0, 1]: ``classifier(x)`` -> (B, classes) logits.

    Attributes:
        name: its display name.
        class_names: the class of each output (None where unknown).
        num_classes: its number of outputs (None where unknown).
        crop: the cut its weights are evaluated with; ``crop_source`` says where that cut comes from.
        synsets: the ImageNet WordNet id of each output for ImageNet-1k classifiers (torchvision's), else None.
    """

    def __init__(self, name: str, model: torch.nn.Module, class_names: list[str] | None, num_classes: int | None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 crop: EvalCrop | None = None, crop_source: str = "the standard ImageNet cut",
                 synsets: list[str] | None = None):  # fmt: skip
        self.name, self.model, self.class_names, self.num_classes = name, model.eval(), class_names, num_classes
        self.mean = None if mean is None else torch.tensor(mean).reshape(1, 3, 1, 1)
        self.std = None if std is None else torch.tensor(std).reshape(1, 3, 1, 1)
        self.crop, self.crop_source, self.synsets = crop or EvalCrop.standard(), crop_source, synsets

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is not None:
            x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return self.model(x).float()


@functools.cache
def _synsets() -> tuple[str, ...]:
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo("imagenet-1k").label_names())


def imagenet_synsets() -> list[str]:
    """The 1000 ImageNet-1k WordNet ids in class-index order (timm's table; torchvision's categories follow it)."""
    return list(_synsets())


def _card_crop(spec: str) -> int | None:
    """The ``--crop_size`` a train_robust.py classifier was trained and validated at (its config's card), if any."""
    from ..core.hub import CONFIG_NAME, read_config

    path = os.path.join(spec, CONFIG_NAME)
    if not os.path.isdir(spec):
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(spec, CONFIG_NAME)  # cached by from_pretrained
        except Exception:  # noqa: BLE001 - no card to read: the standard crop
            return None
    crop = (read_config(path).get("card") or {}).get("--crop_size")
    return int(crop) if isinstance(crop, int) and not isinstance(crop, bool) and crop > 0 else None


def load_classifier(spec: str, weights: str = "pretrained", device: str | torch.device = "cpu", seed: int = 0,
                    image_size: int | None = None) -> ImageClassifier:  # fmt: skip
    """A torchvision classification model by name, or a train_robust.py folder / Hub id
    (``asym.robust.classifier.Classifier``, which normalises its input itself and names its classes in
    ``class_names``), with the cut its weights are evaluated with (``crop``).

    ``weights`` (torchvision models only): ``pretrained`` (the name's default ImageNet weights, from torch's cache or
    downloaded), ``random`` (drawn after ``torch.manual_seed(seed)``, so a run is reproducible) or a weights enum
    member such as ``IMAGENET1K_V1``. The cut: the weights' torchvision preset (random weights: the default
    weights'); a train_robust.py classifier's ``--crop_size`` with the standard 256/224 resize (as train_robust.py
    validates), 224 where its card records none. ``image_size`` sets every cut's crop side, each keeping its own
    resize ratio and interpolation.

    Raises:
        UserError: an unknown name or weights, pretrained weights that cannot be obtained, a folder that is no
            saved classifier.
    """
    import torchvision

    resized = (lambda crop: crop) if image_size is None else (lambda crop: crop.scaled(image_size))  # noqa: E731
    if resolve_source(spec).kind in ("folder", "hub", "missing"):  # a train_robust.py output (or a typo of one)
        from .classifier import Classifier

        model = Classifier.from_pretrained(spec).to(device)
        names = getattr(model, "class_names", None)
        classes = getattr(model, "num_classes", None) or (len(names) if names else None)
        trained = _card_crop(spec)
        origin = f"trained at --crop_size {trained}" if trained else "no crop size in its card"
        origin = f"the standard cut at {'--image_size' if image_size else 'its card' if trained else '224'}; {origin}"
        return ImageClassifier(os.path.basename(os.path.normpath(spec)), model, list(names) if names else None,
                               classes, crop=EvalCrop.standard(image_size or trained or 224),
                               crop_source=origin)  # fmt: skip
    known = torchvision.models.list_models(module=torchvision.models)
    if spec not in known:
        raise UserError(f"unknown classifier {spec!r}: pass a train_robust.py folder or a torchvision classification "
                        f"model ({', '.join(known)})")  # fmt: skip
    enum = torchvision.models.get_model_weights(spec)
    if weights == "random":
        preset = enum.DEFAULT.transforms()
        torch.manual_seed(seed)
        return ImageClassifier(spec, torchvision.models.get_model(spec, weights=None).to(device), None, 1000,
                               preset.mean, preset.std, resized(EvalCrop.from_preset(preset)),
                               f"the {enum.DEFAULT} preset, random weights cut as the default ones",
                               imagenet_synsets())  # fmt: skip
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
    preset = chosen.transforms()
    return ImageClassifier(spec, model.to(device), categories, len(categories) if categories else None, preset.mean,
                           preset.std, resized(EvalCrop.from_preset(preset)), f"the {chosen} preset",
                           imagenet_synsets() if len(categories or []) == 1000 else None)  # fmt: skip


BY_NAME, BY_SYNSET, BY_INDEX = "by class name", "by ImageNet synset", "labels as class indices"


def target_indices(dataset: ClassificationSet | LabelledSet, classifier: ImageClassifier) -> tuple[list[int], str]:
    """The classifier output each image's label stands for, and how it was found (``BY_NAME``, ``BY_SYNSET`` or
    ``BY_INDEX`` and why):

    * by class name where the classifier names every class of the dataset;
    * by ImageNet synset where every class of the dataset is an ImageNet-1k WordNet id (ImageNet's validation
      folders ``n01440764``, ...) and the classifier is an ImageNet-1k one (any subset of the synsets maps right);
    * the label itself where the classifier names no classes (a random torchvision model, a classifier saved without
      names), or where the dataset gives its labels as class indices (labels.csv, an integer label column).

    Raises:
        UserError: a classifier that names classes but not every class of the dataset (an index mapping would
            silently score it against the wrong classes); a label the classifier has no output for.
    """
    names, labels = dataset.class_names, dataset.labels
    if names and classifier.class_names and set(names) <= set(classifier.class_names):
        index = {name: i for i, name in enumerate(classifier.class_names)}
        return [index[names[label]] for label in labels], BY_NAME
    if names and classifier.synsets and set(names) <= set(classifier.synsets):
        index = {name: i for i, name in enumerate(classifier.synsets)}
        return [index[names[label]] for label in labels], BY_SYNSET
    if names and classifier.class_names:
        known = set(classifier.class_names) | set(classifier.synsets or [])
        missing = [n for n in names if n not in known]
        listed = ", ".join(map(repr, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(f"classifier {classifier.name} has no class {listed} ({len(missing)} of the dataset's "
                        f"{len(names)} classes; it names {len(classifier.class_names)}, e.g. "
                        f"{', '.join(map(repr, classifier.class_names[:3]))}): name the class folders as its classes"
                        f"{' or as ImageNet synsets (n01440764, ...)' if classifier.synsets else ''}, or give the "
                        f"labels as its class indices in a {LABELS_FILE}")  # fmt: skip
    if classifier.num_classes is not None and max(labels) >= classifier.num_classes:
        raise UserError(f"the dataset has labels up to {max(labels)} but {classifier.name} has "
                        f"{classifier.num_classes} classes")  # fmt: skip
    if names:  # the classifier names no classes
        why = f"{classifier.name} names no classes: class k of the dataset, in sorted order, is taken as its output k"
        return list(labels), f"{BY_INDEX} ({why})"
    return list(labels), f"{BY_INDEX} (the dataset gives class indices)"


__all__ = [
    "ImageClassifier",
    "imagenet_synsets",
    "load_classifier",
    "target_indices",
]
