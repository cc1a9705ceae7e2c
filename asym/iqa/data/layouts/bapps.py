"""BAPPS 2AFC (Zhang et al. 2018, the LPIPS release): triplets of a reference and two distorted patches with the
fraction of humans who found the second closer; the ``builtin`` photographs arranged the same way, for smoke runs.

The release's layout: ``2afc/{train,val}/<subset>/{ref,p0,p1}/<name>.png`` and ``judge/<name>.npy`` (one number in
[0, 1], the fraction preferring ``p1``). Subsets: train ``traditional``, ``cnn``, ``mix``; val ``traditional``,
``cnn``, ``superres``, ``deblur``, ``color``, ``frameinterp``. Patches are 64x64. Not an FR/MOS dataset (no
score per image), so it has its own items and dataset here, not ``Scores``; ``train_metric.py --objective 2afc``
reads it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from asym.core.errors import UserError, list_names, reading
from asym.core.images import decode, to_array, to_tensor

from ..dataset import verify_images

BAPPS_SUBSETS = {"train": ("traditional", "cnn", "mix"),
                 "val": ("traditional", "cnn", "superres", "deblur", "color", "frameinterp")}  # fmt: skip
IMAGE_FOLDERS = ("ref", "p0", "p1")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
BAPPS_SIZE = 64  # the release's patches, and LPIPS's load_size


@dataclass
class TwoAFCTriplet:
    """A reference, two distorted versions and ``judge``, the fraction of humans who found ``p1`` closer to ``ref``.

    Images are file paths or in-memory HxW(x3) arrays; ``subset`` is the BAPPS subset, ``key`` names the triplet
    (``<subset>/<name>``).
    """

    ref: str | np.ndarray
    p0: str | np.ndarray
    p1: str | np.ndarray
    judge: float
    subset: str
    key: str


def bapps_split_folder(folder: str, split: str) -> str:
    """``<folder>/2afc/<split>`` (``folder`` may also be the ``2afc`` folder itself).

    Raises:
        UserError: the folder does not exist, or holds no ``2afc/<split>`` folder.
    """
    if not os.path.isdir(folder):
        raise UserError(f"BAPPS folder {folder} does not exist")
    for candidate in (os.path.join(folder, "2afc", split), os.path.join(folder, split)):
        if os.path.isdir(candidate):
            return candidate
    raise UserError(f"{folder} holds no 2afc/{split}/ folder: not the BAPPS release (2afc/{{train,val}}/<subset>/"
                    f"{{ref,p0,p1,judge}}/; pass the folder that holds 2afc/)")  # fmt: skip


def bapps_subsets(folder: str, split: str) -> list[str]:
    """The subsets of a BAPPS split, sorted: the folders of ``2afc/<split>`` that hold a ``ref/`` folder."""
    where = bapps_split_folder(folder, split)
    return sorted(name for name in os.listdir(where) if os.path.isdir(os.path.join(where, name, "ref")))


def _files(folder: str, suffixes: tuple[str, ...]) -> dict[str, str]:
    """``{stem: file name}`` of a subset's ``ref``/``p0``/``p1``/``judge`` folder (empty if it does not exist)."""
    if not os.path.isdir(folder):
        return {}
    names = sorted(n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in suffixes)
    return {os.path.splitext(n)[0]: n for n in names}


def _judge(path: str) -> float:
    """The fraction of humans preferring ``p1``, from a judge ``.npy`` (one number in [0, 1])."""
    with reading(path, "BAPPS judge", as_what="a .npy array"):
        array = np.load(path, allow_pickle=False)
    if array.size != 1 or array.dtype.kind not in "fiu":
        raise UserError(f"BAPPS judge {path} holds {array.size} values of type {array.dtype}, expected one number")
    value = float(array.reshape(-1)[0])
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UserError(f"BAPPS judge {path} is {value}, expected the fraction of humans preferring p1, in [0, 1]")
    return value


def read_bapps_subset(folder: str, split: str, subset: str) -> list[TwoAFCTriplet]:
    """The triplets of one subset, by name: every name must have its ``ref``, ``p0``, ``p1`` image and its judge.

    Raises:
        UserError: the subset does not exist (the message lists those that do) or is empty, a triplet is incomplete
            (the message names the missing file), or a judge is unreadable or outside [0, 1].
    """
    where = os.path.join(bapps_split_folder(folder, split), subset)
    if not os.path.isdir(os.path.join(where, "ref")):
        found = bapps_subsets(folder, split)
        raise UserError(f"BAPPS {split} subset {subset!r} does not exist in {os.path.dirname(where)} (found: "
                        f"{', '.join(found) or 'none'})")  # fmt: skip
    images = {name: _files(os.path.join(where, name), IMAGE_SUFFIXES) for name in IMAGE_FOLDERS}
    judges = _files(os.path.join(where, "judge"), (".npy",))
    stems = sorted(set(judges).union(*images.values()))
    if not stems:
        raise UserError(f"BAPPS subset {where} holds no triplets (ref/, p0/, p1/ images and judge/*.npy)")
    incomplete = [s for s in stems if s not in judges or any(s not in files for files in images.values())]
    if incomplete:
        stem = incomplete[0]
        suffix = next((os.path.splitext(files[stem])[1] for files in images.values() if stem in files), ".png")
        missing = [f"{name}/{stem}{suffix}" for name, files in images.items() if stem not in files]
        missing += [] if stem in judges else [f"judge/{stem}.npy"]
        raise UserError(f"BAPPS subset {where}: {os.path.join(where, missing[0])} is missing (triplet {stem!r} needs "
                        f"ref/, p0/, p1/ and judge/; {len(incomplete)} incomplete: "
                        f"{list_names(incomplete, 3)})")  # fmt: skip
    return [
        TwoAFCTriplet(*(os.path.join(where, name, images[name][s]) for name in IMAGE_FOLDERS),
                      judge=_judge(os.path.join(where, "judge", judges[s])), subset=subset, key=f"{subset}/{s}")
        for s in stems
    ]  # fmt: skip


def builtin_two_afc(split: str) -> dict[str, list[TwoAFCTriplet]]:
    """The ``builtin`` FR set as 2AFC triplets, a smoke-test stand-in for BAPPS (never a benchmark).

    Each pair of distorted versions of one photograph is a triplet; ``judge`` is a logistic of their pseudo-MOS
    difference, ``1 / (1 + exp(-(mos1 - mos0) / 10))`` (the less distorted one preferred), and ``p0``/``p1`` alternate
    so that judges fall on both sides. ``train``: the first 6 photographs, all 190 pairs each, subset ``builtin``.
    ``val``: the last 2, one subset per distortion type (pairs of its 4 levels: 12 triplets) and ``mixed`` (pairs
    of different types: 320).
    """
    from ..builtin import BUILTIN_FR_IMAGES, builtin_fr_items

    if split not in BAPPS_SUBSETS:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    photos = BUILTIN_FR_IMAGES[:6] if split == "train" else BUILTIN_FR_IMAGES[6:]
    items = builtin_fr_items()
    out: dict[str, list[TwoAFCTriplet]] = {}
    count = 0
    for photo in photos:
        versions = [item for item in items if item.ref_id == photo]
        for i, a in enumerate(versions):
            for b in versions[i + 1 :]:
                first, second = (a, b) if count % 2 == 0 else (b, a)
                count += 1
                judge = 1 / (1 + math.exp(-(second.score - first.score) / 10))
                kind_a, kind_b = (x.key.split("/")[1].rsplit("-", 1)[0] for x in (first, second))
                subset = "builtin" if split == "train" else kind_a if kind_a == kind_b else "mixed"
                key = f"{subset}/{first.key}~{second.key}"
                out.setdefault(subset, []).append(TwoAFCTriplet(first.ref, first.dist, second.dist, judge, subset, key))
    return dict(sorted(out.items()))


def load_two_afc(source: str, split: str, subsets: list[str] | None = None) -> dict[str, list[TwoAFCTriplet]]:
    """``{subset: triplets}`` of a BAPPS folder's ``split`` (``subsets``: default all that exist) or of ``builtin``.

    Raises:
        UserError: see ``read_bapps_subset``; an unknown builtin subset.
    """
    if source == "builtin":
        found = builtin_two_afc(split)
        unknown = [s for s in subsets or [] if s not in found]
        if unknown:
            raise UserError(f"builtin 2AFC {split} has no subset {unknown[0]!r} (it has {', '.join(found)})")
        return {s: found[s] for s in subsets} if subsets else found
    return {s: read_bapps_subset(source, split, s) for s in (subsets or bapps_subsets(source, split))}


def verify_triplets(triplets: list[TwoAFCTriplet], progress: bool = True) -> None:
    """Read every image of every triplet once, up front (``asym.iqa.data.dataset.verify_images``): a truncated patch
    or a file that is no image is a ``UserError`` naming it, before a run writes anything."""
    sources = [getattr(t, name) for t in triplets for name in IMAGE_FOLDERS]
    verify_images(sources, lambda source: f"BAPPS image {source}", progress)


class TwoAFCDataset(torch.utils.data.Dataset):
    """Triplets decoded on access: ``{"ref", "p0", "p1"}`` (3, S, S) float tensors in [0, 1] and ``"judge"``.

    Images not ``load_size`` x ``load_size`` are resized to it (bilinear, antialiased: LPIPS's loader resizes to its
    ``load_size`` 64; BAPPS patches already are). ``load_size=None`` keeps sizes as they are (they must agree).
    """

    def __init__(self, triplets: list[TwoAFCTriplet], load_size: int | None = BAPPS_SIZE):
        self.triplets, self.load_size = triplets, load_size

    def __len__(self) -> int:
        return len(self.triplets)

    def _image(self, source) -> torch.Tensor:
        if isinstance(source, np.ndarray):
            array = to_array(source)
        else:
            with reading(source, "BAPPS image", as_what="an image"):
                array = decode(source)
        image = to_tensor(array)
        size = self.load_size
        if size and tuple(image.shape[-2:]) != (size, size):
            image = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True,
                                  align_corners=False)[0].clamp(0, 1)  # fmt: skip
        return image

    def __getitem__(self, index: int) -> dict:
        t = self.triplets[index]
        images = {name: self._image(getattr(t, name)) for name in IMAGE_FOLDERS}
        if len({tuple(v.shape) for v in images.values()}) > 1:
            shapes = ", ".join(f"{k} {tuple(v.shape[-2:])}" for k, v in images.items())
            raise UserError(f"triplet {t.key}: images differ in size ({shapes}); pass a load size to resize them")
        return images | {"judge": torch.tensor(t.judge, dtype=torch.float32)}


__all__ = [
    "BAPPS_SIZE",
    "BAPPS_SUBSETS",
    "TwoAFCDataset",
    "TwoAFCTriplet",
    "bapps_split_folder",
    "bapps_subsets",
    "builtin_two_afc",
    "load_two_afc",
    "read_bapps_subset",
    "verify_triplets",
]
