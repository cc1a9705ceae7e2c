"""Full-reference IQA data: (distorted, reference, score) triplets, from the official layouts of known databases, the
Hub, or ``builtin``; and the split by reference image.

``load_fr_dataset`` resolves a source into an ``FRDataset`` of ``FRItem`` s (images decoded on access):

* ``"builtin"``: 8 photographs shipped inside scikit-image with graded synthetic distortions and a pseudo-MOS
  (see ``builtin_fr_items``). A smoke-test set that needs no download, never a benchmark.
* a folder in a known official layout (``detect_layout``, ``LAYOUTS``): KADID-10k, TID2013, PIPAL (NTIRE 2021
  release), TQD, or a pyiqa-style meta-info csv (which is also how Liu13 and Ma17 are read, see below).
* otherwise a Hub dataset id or a local path ``datasets`` understands (a ``save_to_disk`` folder, a parquet/arrow
  file, a folder of parquet files) with a distorted-image, a reference-image and a score column.

Liu13 (deblurring) and Ma17 (super-resolution): we could not obtain their releases to check file names against,
so they are not parsed from the releases. Write their scores into the pyiqa-style meta-info csv
(``ref_name,dist_name,mos[,std]``, one row per distorted image, paths relative to the folder) and load that folder.

    >>> data = load_fr_dataset("builtin")
    >>> train, val, test = split_by_reference(data)
    >>> sample = data.subset(train, crop_size=128, train=True)[0]
    >>> sample["dist"].shape, sample["ref"].shape, sample["score"].dtype
    (torch.Size([3, 128, 128]), torch.Size([3, 128, 128]), torch.float32)
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from asym.data import _decode, _list_names, _name, _to_array, is_saved_dataset, open_image_table, to_tensor

# Layout name -> what identifies it in a folder (shown in the "unknown layout" error).
LAYOUTS = {
    "kadid10k": "dmos.csv (header dist_img,ref_img,dmos,var) + images/",
    "tid2013": "mos_with_names.txt ('<mos> <name>' lines) + distorted_images/ + reference_images/",
    "pipal": "Train_Label/ (or another *_Label/ folder) of A0001.txt files with 'A0001_00_00.bmp,<elo>' lines",
    "tqd": "images/<texture>-0.png references, images/<texture>-<k>.png distorted + a score file of "
    "'images/<texture>-<k>.png,<mos>' lines",
    "pyiqa-csv": "a *.csv with header ref_name,dist_name,mos|dmos|score[,std] (also used for Liu13, Ma17)",
}
SCORE_NAMES = ("mos", "dmos", "score")  # accepted score columns of a pyiqa-style csv, in order of preference

# builtin: skimage.data photographs that need no download; distortion -> 4 parameter levels (mild to strong).
BUILTIN_FR_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "brick", "grass")
BUILTIN_SIZE = 192
DISTORTIONS = {
    "blur": (0.5, 1.0, 2.0, 4.0),  # Gaussian sigma, pixels
    "noise": (5.0, 10.0, 20.0, 40.0),  # Gaussian noise std, on the 0..255 scale
    "jpeg": (60, 30, 15, 5),  # PIL JPEG quality
    "contrast": (0.8, 0.6, 0.4, 0.2),  # contrast kept: x -> mean + c (x - mean)
    "color": (0.05, 0.1, 0.2, 0.4),  # channel gain g: R * (1 + g), B * (1 - g)
}
SEVERITY = {"blur": 1.0, "noise": 0.9, "jpeg": 0.95, "contrast": 0.7, "color": 0.6}


@dataclass
class FRItem:
    """One distorted image, its reference and its subjective score.

    ``dist`` / ``ref``: a file path, a ``(dataset, column, row)`` triple of a ``datasets`` table whose image column is
    not decoded (as in ``asym.data``), or an in-memory HxW(x3) array. ``ref_id`` names the reference (for splits).
    """

    dist: str | tuple | np.ndarray
    ref: str | tuple | np.ndarray
    score: float
    ref_id: str


def _load(source) -> np.ndarray:
    return _to_array(source) if isinstance(source, np.ndarray) else _decode(source)


def _describe(source) -> str:
    return "an in-memory image" if isinstance(source, np.ndarray) else str(_name(source))


class FRDataset(torch.utils.data.Dataset):
    """Full-reference IQA triplets: ``{"dist": (3, H, W), "ref": (3, H, W), "score": 0-d float32, "index": int}``.

    Images are floats in [0, 1], RGB, decoded on access. With ``crop_size`` both images are cut at the SAME window:
    random (torch's RNG, so ``torch.manual_seed`` makes it reproducible) and randomly flipped horizontally (both) when
    ``train``, centred otherwise. ``crop_size=None`` returns the full images.

    Args:
        items: the triplets.
        name: the source's name (for messages and reports).
        lower_better: True when a lower score means better quality (e.g. LIVE's DMOS).
        crop_size: side of the square crop, or None for full images.
        train: random crops and flips when True.
    """

    def __init__(self, items: list[FRItem], name: str, lower_better: bool, crop_size: int | None = None,
                 train: bool = False):  # fmt: skip
        if crop_size is not None and crop_size < 1:
            raise ValueError(f"crop size must be positive, got {crop_size}")
        self.items, self.name, self.lower_better = list(items), name, bool(lower_better)
        self.crop_size, self.train = crop_size, train

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        dist, ref = _load(item.dist), _load(item.ref)
        if dist.shape[:2] != ref.shape[:2]:
            raise ValueError(f"{_describe(item.dist)} is {dist.shape[0]}x{dist.shape[1]} but its reference "
                             f"{_describe(item.ref)} is {ref.shape[0]}x{ref.shape[1]}: expected one size")  # fmt: skip
        h, w = dist.shape[:2]
        if self.crop_size is not None:
            c = self.crop_size
            if min(h, w) < c:
                raise ValueError(f"{_describe(item.dist)} is {h}x{w}, smaller than the {c}x{c} crop: "
                                 f"use a smaller crop size")  # fmt: skip
            if self.train:
                top, left = int(torch.randint(h - c + 1, ())), int(torch.randint(w - c + 1, ()))
            else:
                top, left = (h - c) // 2, (w - c) // 2
            dist, ref = dist[top : top + c, left : left + c], ref[top : top + c, left : left + c]
        dist, ref = to_tensor(dist), to_tensor(ref)
        if self.train and torch.rand(()) < 0.5:
            dist, ref = dist.flip(-1), ref.flip(-1)
        score = torch.tensor(item.score, dtype=torch.float32)
        return {"dist": dist.contiguous(), "ref": ref.contiguous(), "score": score, "index": index}

    def subset(self, indices: Sequence[int], crop_size: int | None = None, train: bool = False) -> FRDataset:
        """The items at ``indices`` as a new dataset (same name and score direction) with its own cropping."""
        return FRDataset([self.items[i] for i in indices], self.name, self.lower_better, crop_size, train)

    def scores(self) -> np.ndarray:
        """All scores, in item order (float64)."""
        return np.array([item.score for item in self.items], dtype=np.float64)

    def quality(self) -> np.ndarray:
        """All scores oriented so that higher means better quality (negated when ``lower_better``)."""
        return -self.scores() if self.lower_better else self.scores()


# ----------------------------------------------------------------------------------------------------------- builtin
def _square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize (PIL bicubic) to ``size`` x ``size``."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(image[top : top + side, left : left + side])
    return np.asarray(crop.resize((size, size), Image.BICUBIC))


def _distort(image: np.ndarray, kind: str, value: float, seed: int) -> np.ndarray:
    """One synthetic distortion of a uint8 HxWx3 image, as uint8."""
    if kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(value))
        return np.asarray(Image.open(buffer).convert("RGB"))
    x = image.astype(np.float64)
    if kind == "blur":
        from scipy.ndimage import gaussian_filter

        x = gaussian_filter(x, sigma=(value, value, 0), mode="reflect")
    elif kind == "noise":
        x = x + np.random.default_rng(seed).normal(0.0, value, x.shape)
    elif kind == "contrast":
        mean = x.mean(axis=(0, 1), keepdims=True)
        x = mean + value * (x - mean)
    elif kind == "color":
        x = x * np.array([1 + value, 1.0, 1 - value])
    else:
        raise ValueError(f"unknown distortion {kind!r}; known: {', '.join(DISTORTIONS)}")
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def pseudo_mos(kind: str, level: int) -> float:
    """The builtin set's score: ``mos = 100 - 20 * level * SEVERITY[kind]``, level 1 (mild) .. 4 (strong).

    Higher is better. It falls with the level inside each distortion type, and ``SEVERITY`` (blur 1.0, jpeg 0.95,
    noise 0.9, contrast 0.7, color 0.6) puts the types on one scale (a level-4 blur scores 20, a level-1 color shift
    88). It is a fixed design choice, independent of every metric, so correlations on it measure nothing but
    agreement with this ranking: a smoke test, not a benchmark.
    """
    return 100.0 - 20.0 * level * SEVERITY[kind]


def builtin_fr_items() -> list[FRItem]:
    """The builtin triplets: ``BUILTIN_FR_IMAGES`` (skimage.data, grayscale as RGB), each centre-cropped and resized
    to 192x192, times the 5 ``DISTORTIONS`` at 4 levels: 8 x 5 x 4 = 160 items scored by ``pseudo_mos``.

    Deterministic: the noise is seeded per (image, level). Images are kept in memory as uint8 arrays.
    """
    import skimage.data

    items = []
    for i, name in enumerate(BUILTIN_FR_IMAGES):
        ref = _square(_to_array(getattr(skimage.data, name)()), BUILTIN_SIZE)
        for kind, values in DISTORTIONS.items():
            for level, value in enumerate(values, start=1):
                dist = _distort(ref, kind, value, seed=1000 * i + level)
                items.append(FRItem(dist, ref, pseudo_mos(kind, level), name))
    return items


# ----------------------------------------------------------------------------------------------- official layouts
def _score(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: score {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: score is {text!r}, expected a finite number")
    return value


def _csv_rows(path: str, required: Sequence[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the ``(line number, row)`` pairs of a csv, every row checked for its field count."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = [column.strip() for column in next(reader, [])]
        missing = [column for column in required if column not in header]
        if missing:
            raise ValueError(f"{path} line 1: header {','.join(header)} lacks {', '.join(missing)}")
        rows = []
        for fields in reader:
            if not fields or not "".join(fields).strip():
                continue  # blank line
            if len(fields) != len(header):
                raise ValueError(f"{path} line {reader.line_num}: {len(fields)} fields, expected {len(header)} "
                                 f"({','.join(header)})")  # fmt: skip
            rows.append((reader.line_num, {k: v.strip() for k, v in zip(header, fields)}))
    return header, rows


def _require_name(name: str, where: str, what: str) -> str:
    if not name:
        raise ValueError(f"{where}: empty {what}")
    return name


def _existing(path: str, where: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"{where}: image {path} does not exist")
    return path


def _stem(name: str) -> str:
    return os.path.splitext(os.path.basename(name))[0]


def _kadid(folder: str) -> list[FRItem]:
    """KADID-10k: ``dmos.csv`` (``dist_img,ref_img,dmos,var``) and ``images/I01_01_01.png`` .. ``images/I81.png``.

    The dmos is the mean of degradation category ratings, 1 (imperceptible... bad) to 5: higher is better.
    """
    path = os.path.join(folder, "dmos.csv")
    _, rows = _csv_rows(path, ("dist_img", "ref_img", "dmos"))
    items = []
    for line, row in rows:
        where = f"{path} line {line}"
        dist, ref = (_require_name(row[k], where, k) for k in ("dist_img", "ref_img"))
        items.append(FRItem(_existing(os.path.join(folder, "images", dist), where),
                            _existing(os.path.join(folder, "images", ref), where),
                            _score(row["dmos"], where), _stem(ref)))  # fmt: skip
    return items


def _files_by_lower_name(folder: str, where: str) -> dict[str, str]:
    if not os.path.isdir(folder):
        raise ValueError(f"{where}: folder {folder} does not exist")
    return {name.lower(): os.path.join(folder, name) for name in sorted(os.listdir(folder))}


def _tid2013(folder: str) -> list[FRItem]:
    """TID2013: ``mos_with_names.txt`` lines ``<mos> <name>`` (e.g. ``5.51429 i01_01_1.bmp``), distorted images in
    ``distorted_images/``, references ``reference_images/I01.BMP`` .. ``I25.BMP``. The release mixes cases
    (``i01_01_1.bmp`` listed, ``I01_01_1.BMP`` on disk, ``i25`` vs ``I25``), so names match case-insensitively;
    the reference is named by the first 3 characters. MOS 0..9, higher is better.
    """
    path = os.path.join(folder, "mos_with_names.txt")
    distorted = _files_by_lower_name(os.path.join(folder, "distorted_images"), path)
    references = _files_by_lower_name(os.path.join(folder, "reference_images"), path)
    ref_by_id = {_stem(name).upper(): file for name, file in references.items()}
    items = []
    with open(path, encoding="utf-8-sig", errors="replace") as file:
        for line, text in enumerate(file, start=1):
            fields = text.split()
            if not fields:
                continue
            where = f"{path} line {line}"
            if len(fields) != 2:
                raise ValueError(f"{where}: {len(fields)} fields, expected 2 ('<mos> <name>')")
            mos, name = _score(fields[0], where), fields[1]
            if name.lower() not in distorted:
                raise ValueError(f"{where}: image {os.path.join(folder, 'distorted_images', name)} does not exist")
            ref_id = name[:3].upper()
            if ref_id not in ref_by_id:
                raise ValueError(f"{where}: reference image {ref_id}.BMP does not exist in "
                                 f"{os.path.join(folder, 'reference_images')}")  # fmt: skip
            items.append(FRItem(distorted[name.lower()], ref_by_id[ref_id], mos, ref_id))
    return items


def _pyiqa_csvs(folder: str) -> list[str]:
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.lower().endswith(".csv") and os.path.isfile(path):
            with open(path, newline="", encoding="utf-8-sig", errors="replace") as file:
                header = [column.strip() for column in next(csv.reader(file), [])]
            if {"ref_name", "dist_name"} <= set(header) and any(s in header for s in SCORE_NAMES):
                found.append(path)
    return found


def _pyiqa_csv(path: str) -> list[FRItem]:
    """A pyiqa-style meta-info csv (``ref_name,dist_name,mos[,std]``; ``dmos`` or ``score`` also accepted as the
    score column, as in pyiqa's ``meta_info_KADID10kDataset.csv``). Image paths are relative to the csv's folder;
    a name not found there is looked for under ``ref/`` (references) or ``dist/`` (distorted images), then by its
    file name (case-insensitive) anywhere below the folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    header, rows = _csv_rows(path, ("ref_name", "dist_name"))
    score_column = next((s for s in SCORE_NAMES if s in header), None)
    if score_column is None:
        raise ValueError(f"{path} line 1: header {','.join(header)} has no score column ({', '.join(SCORE_NAMES)})")
    refs, dists = _FileIndex(folder, ["ref"]), _FileIndex(folder, ["dist"])
    items = []
    for line, row in rows:
        where = f"{path} line {line}"
        ref, dist = (_require_name(row[k], where, k) for k in ("ref_name", "dist_name"))
        score = _score(_require_name(row[score_column], where, score_column), where)
        items.append(FRItem(dists.find(dist, where), refs.find(ref, where), score, ref.lower()))
    return items


class _FileIndex:
    """Finds a release's images: at the listed path (relative to the folder or to one of ``subfolders``), else by
    file name (case-insensitive) anywhere below the folder, for releases that scatter images over subfolders. The
    folder is walked once, on the first name that needs it."""

    def __init__(self, folder: str, subfolders: Sequence[str] = ()):
        self.folder, self.subfolders, self._paths = folder, subfolders, None

    def find(self, name: str, where: str) -> str:
        for sub in ("", *self.subfolders):
            if os.path.isfile(candidate := os.path.join(self.folder, sub, name)):
                return candidate
        if self._paths is None:
            self._paths = {}
            for root, _, files in os.walk(self.folder):
                for file in sorted(files):
                    self._paths.setdefault(file.lower(), []).append(os.path.join(root, file))
        matches = self._paths.get(os.path.basename(name).lower(), [])
        if len(matches) > 1:
            raise ValueError(f"{where}: {name} is ambiguous, found {_list_names(sorted(matches), 3)}")
        if not matches:
            looked = ", ".join([self.folder, *(f"{sub}/" for sub in self.subfolders), "and below"])
            raise ValueError(f"{where}: image {name} does not exist (looked in {looked})")
        return matches[0]


def _pipal_label_files(folder: str) -> list[str]:
    """PIPAL's score files: the ``*.txt`` in ``Train_Label/`` (and ``Val_Label/``, ``Test_Label/`` or the earlier
    ``MOS_Scores_train/`` where present)."""
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and (name.lower().endswith("_label") or name.lower().startswith("mos_scores")):
            found += [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.lower().endswith(".txt")]
    return found


def _pipal(folder: str) -> list[FRItem]:
    """PIPAL as released for NTIRE 2021: ``Train_Label/A0001.txt`` .. (one file per reference) with lines
    ``A0001_00_00.bmp,1446.2068`` (distorted name, Elo score: higher is better); references ``Train_Ref/A0001.bmp``,
    distorted images ``Train_Dis/`` or split over ``Distortion_1/`` .. ``Distortion_4/``. The reference of
    ``A0001_10_02.bmp`` is ``A0001.bmp`` (the name before the first ``_``); images are found by file name anywhere
    below the folder, so the way the archives were unpacked does not matter.
    """
    files = _FileIndex(folder)
    items = []
    for path in _pipal_label_files(folder):
        with open(path, encoding="utf-8-sig", errors="replace") as file:
            for line, text in enumerate(file, start=1):
                if not text.strip():
                    continue
                where = f"{path} line {line}"
                fields = [field.strip() for field in text.split(",")]
                if len(fields) != 2:
                    raise ValueError(f"{where}: {len(fields)} fields, expected 2 ('<image>.bmp,<elo score>')")
                dist = _require_name(fields[0], where, "image name")
                ref = dist.split("_")[0] + os.path.splitext(dist)[1]
                items.append(FRItem(files.find(dist, where), files.find(ref, where),
                                    _score(fields[1], where), _stem(ref).upper()))  # fmt: skip
    return items


TQD_NAME = re.compile(r"(?:^|[/\\])(\d+)-(\d+)\.(?:png|bmp|jpe?g|tiff?)$", re.IGNORECASE)


def _tqd_score_file(folder: str) -> str | None:
    """The TQD score file: a ``*.txt`` / ``*.csv`` in the folder whose first line is ``images/<t>-<k>.png,<mos>``."""
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.lower().endswith((".txt", ".csv")) and os.path.isfile(path):
            with open(path, encoding="utf-8-sig", errors="replace") as file:
                first = next((line for line in file if line.strip()), "")
            fields = [f.strip() for f in re.split(r"[,\s]+", first.strip()) if f.strip()]
            if len(fields) == 2 and TQD_NAME.search(fields[0]):
                return path
    return None


def _tqd(folder: str) -> list[FRItem]:
    """TQD (DISTS's texture quality database): 10 reference textures ``images/<t>-0.png`` with 15 distorted versions
    each, ``images/<t>-1.png`` .. ``images/<t>-15.png`` (resampled, synthesised, and conventionally distorted
    textures), and a score file with one ``images/<t>-<k>.png,<mos>`` line per distorted image (comma or white
    space between the two; MOS in 0..1, higher is better).
    """
    path = _tqd_score_file(folder)
    files = _FileIndex(folder)
    items = []
    with open(path, encoding="utf-8-sig", errors="replace") as file:
        for line, text in enumerate(file, start=1):
            if not text.strip():
                continue
            where = f"{path} line {line}"
            fields = [f for f in re.split(r"[,\s]+", text.strip()) if f]
            if len(fields) != 2:
                raise ValueError(f"{where}: {len(fields)} fields, expected 2 ('images/<texture>-<k>.png,<mos>')")
            match = TQD_NAME.search(fields[0])
            if match is None:
                raise ValueError(f"{where}: {fields[0]!r} is not named <texture>-<k>.png")
            texture, k = match.group(1), int(match.group(2))
            if k == 0:
                raise ValueError(f"{where}: {fields[0]} is the reference texture (k = 0), not a distorted image")
            ref = os.path.join(os.path.dirname(fields[0]), f"{texture}-0{os.path.splitext(fields[0])[1]}")
            items.append(
                FRItem(files.find(fields[0], where), files.find(ref, where), _score(fields[1], where), texture)
            )
    return items


def detect_layout(folder: str) -> str:
    """Which known layout (a key of ``LAYOUTS``) a folder is in, from the files that identify it.

    Raises:
        ValueError: the folder does not exist, or matches no known layout (the message lists them), or holds more
            than one pyiqa-style csv (then pass the csv's path itself).
    """
    if not os.path.isdir(folder):
        raise ValueError(f"folder {folder} does not exist")
    if os.path.isfile(os.path.join(folder, "dmos.csv")):
        return "kadid10k"
    if os.path.isfile(os.path.join(folder, "mos_with_names.txt")):
        return "tid2013"
    if _pipal_label_files(folder):
        return "pipal"
    if _tqd_score_file(folder):
        return "tqd"
    found = _pyiqa_csvs(folder)
    if len(found) > 1:
        raise ValueError(f"{folder} holds {len(found)} pyiqa-style csvs ({_list_names(found, 3)}): "
                         f"pass the path of the one to use")  # fmt: skip
    if found:
        return "pyiqa-csv"
    known = "; ".join(f"{name}: {files}" for name, files in LAYOUTS.items())
    raise ValueError(f"{folder} is in no known IQA layout. Known layouts: {known}")


# Layout name (a key of LAYOUTS) -> the reader of a folder in that layout.
READERS = {
    "kadid10k": _kadid,
    "tid2013": _tid2013,
    "pipal": _pipal,
    "tqd": _tqd,
    "pyiqa-csv": lambda folder: _pyiqa_csv(_pyiqa_csvs(folder)[0]),
}


# ------------------------------------------------------------------------------------------------------------- Hub
def _hub_items(name: str, image_column: str, ref_column: str, score_column: str, split: str) -> list[FRItem]:
    table = open_image_table(name, [image_column, ref_column], split, [score_column])
    items = []
    for row, (score, ref) in enumerate(zip(table[score_column], table[ref_column])):
        where = f"{name} row {row}, column {score_column!r}"
        value = _score("None" if score is None else str(score), where)
        # The reference's identity: a hash of its bytes (exact), else its stored path.
        ref_id = hashlib.sha1(ref["bytes"]).hexdigest()[:16] if ref["bytes"] else str(ref["path"])
        items.append(FRItem((table, image_column, row), (table, ref_column, row), value, ref_id))
    return items


def load_fr_dataset(source: str, image_column: str = "dist_image", ref_column: str = "ref_image",
                    score_column: str = "score", lower_better: bool | None = None,
                    split: str = "train") -> FRDataset:  # fmt: skip
    """Full-reference IQA triplets from ``builtin``, a folder in a known layout, a pyiqa-style csv, or a dataset.

    Args:
        source: ``"builtin"`` (see ``builtin_fr_items``); a folder in a layout of ``LAYOUTS`` (KADID-10k's
            ``dmos.csv``, TID2013's ``mos_with_names.txt``, PIPAL's ``Train_Label/``, TQD's ``images/`` and
            score file, a pyiqa-style meta-info csv: the form in which Liu13 and Ma17 are read); the
            path of a pyiqa-style csv; otherwise a Hub dataset id or a local path ``datasets`` understands
            (``save_to_disk`` folder, parquet/arrow file, folder of data files).
        image_column: the distorted-image column of a dataset.
        ref_column: the reference-image column of a dataset.
        score_column: the score column of a dataset.
        lower_better: whether lower scores mean better quality. None: the source's own convention (False for
            builtin, KADID-10k's dmos, TID2013's MOS, PIPAL's Elo, a csv's mos, and datasets).
        split: the split of a dataset.

    Raises:
        ValueError: a missing folder or file, an unknown layout, a malformed row (naming file and line), a missing
            image, a missing column, or no items at all.
    """
    if source == "builtin":
        items, name = builtin_fr_items(), "builtin"
    elif os.path.isfile(source) and source.lower().endswith(".csv"):
        items, name = _pyiqa_csv(source), _stem(source)
    elif os.path.isdir(source) and not is_saved_dataset(source):
        try:
            layout = detect_layout(source)
        except ValueError:
            data_files = [f for f in os.listdir(source) if f.lower().endswith((".parquet", ".arrow", ".jsonl"))]
            if not data_files:
                raise
            layout = None
        name = os.path.basename(os.path.normpath(source))
        if layout:
            items = READERS[layout](source)
        else:
            items = _hub_items(source, image_column, ref_column, score_column, split)
    elif source.startswith((os.sep, ".", "~")) and not os.path.exists(os.path.expanduser(source)):
        raise ValueError(f"folder {source} does not exist")
    else:  # a Hub id (named as such) or a saved local dataset (named by its folder, as the layouts above)
        items = _hub_items(source, image_column, ref_column, score_column, split)
        name = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
    if not items:
        raise ValueError(f"{source} has no distorted images with scores")
    return FRDataset(items, name, bool(lower_better) if lower_better is not None else False)


def add_fr_dataset_args(parser) -> None:
    """The command-line flags that describe a Hub / ``datasets`` FR dataset (shared by train_metric.py and
    evaluate.py); ``fr_dataset_kwargs(args)`` turns them into ``load_fr_dataset`` keywords."""
    g = parser.add_argument_group("FR dataset columns (Hub ids and local datasets)")
    g.add_argument("--image_column", default="dist_image", help="distorted-image column")
    g.add_argument("--ref_column", default="ref_image", help="reference-image column")
    g.add_argument("--score_column", default="score", help="subjective score (MOS) column")
    g.add_argument("--dataset_split", default="train", help="split of a Hub / datasets dataset")
    g.add_argument("--lower_better", action="store_true", help="the scores are lower-is-better (e.g. a DMOS)")


def fr_dataset_kwargs(args) -> dict:
    return {"image_column": args.image_column, "ref_column": args.ref_column, "score_column": args.score_column,
            "split": args.dataset_split, "lower_better": True if args.lower_better else None}  # fmt: skip


# ----------------------------------------------------------------------------------------------------------- split
def split_by_reference(dataset: FRDataset, ratios: Sequence[float] = (0.6, 0.2, 0.2),
                       seed: int = 0) -> tuple[list[int], list[int], list[int]]:  # fmt: skip
    """Train/validation/test item indices such that no reference image is in two splits.

    The references (``ref_id``) are shuffled with ``seed`` and cut by ``ratios``; every split with a positive ratio
    gets at least one reference. Each list is sorted.

    Raises:
        ValueError: fewer than 3 references, or ratios that are not 3 non-negative numbers with a positive sum.
    """
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ValueError(f"ratios must be 3 non-negative numbers with a positive sum, got {tuple(ratios)}")
    ref_ids = sorted({item.ref_id for item in dataset.items})
    n = len(ref_ids)
    if n < 3:
        raise ValueError(f"{dataset.name} has {n} reference image(s): a train/validation/test split by reference "
                         f"needs at least 3")  # fmt: skip
    total = float(sum(ratios))
    counts = [max(1, round(n * r / total)) if r > 0 else 0 for r in ratios[1:]]  # validation, test
    while n - sum(counts) < (1 if ratios[0] > 0 else 0):  # give train its share back, largest other split first
        counts[int(np.argmax(counts))] -= 1
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    shuffled = [ref_ids[i] for i in order]
    n_val, n_test = counts
    n_train = n - n_val - n_test
    groups = shuffled[:n_train], shuffled[n_train : n_train + n_val], shuffled[n_train + n_val :]
    split_of = {ref: s for s, group in enumerate(groups) for ref in group}
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for index, item in enumerate(dataset.items):
        parts[split_of[item.ref_id]].append(index)
    return parts


__all__ = [
    "FRItem",
    "FRDataset",
    "load_fr_dataset",
    "split_by_reference",
    "detect_layout",
    "builtin_fr_items",
    "pseudo_mos",
    "LAYOUTS",
]
