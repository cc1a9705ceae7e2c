"""The datasets every IQA source loads into: ``FRItem`` triplets and ``NRItem`` s (image, score), ``FRDataset`` and
``NRDataset`` on their common base ``IQADataset`` (decoding on access, crops, header-only image sizes, item keys for
split files, an up-front check that every image reads: ``verify_images``), the wording of a score direction, and
``split_by_reference``.

The readers (``builtin``, ``layouts``, ``tables``) produce items and their direction as ``Scores``; this module only
consumes them, so it imports none of its siblings.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from asym.core.decoded_cache import DecodedCache, active
from asym.core.errors import UserError, reading
from asym.core.images import decode, image_name, to_array, to_tensor


@dataclass
class FRItem:
    """One distorted image, its reference and its subjective score.

    ``dist`` / ``ref``: a file path, a ``(dataset, column, row)`` triple of a ``datasets`` table whose image column is
    not decoded (as in ``asym.sr.data``), or an in-memory HxW(x3) array. ``ref_id`` is the reference's identity, what
    splits go by: equal ids are one image (a resolved file path, a pixel hash, a ``ref_id_column`` value or a builtin
    name). ``ref_name`` is a short name for messages (defaults to ``ref_id``). ``key`` names the item in split files:
    stable and unique within its dataset (the distorted image's name as the release's score file writes it, ``row N``
    for tables, ``<photo>/<distortion>-<level>`` for builtin; default: ``dist`` when it is a path).
    """

    dist: str | tuple | np.ndarray
    ref: str | tuple | np.ndarray
    score: float
    ref_id: str
    ref_name: str = ""
    key: str = ""

    def __post_init__(self):
        self.ref_name = self.ref_name or self.ref_id
        self.key = self.key or (self.dist if isinstance(self.dist, str) else "")


@dataclass
class NRItem:
    """One image and its subjective score, for no-reference IQA.

    ``image``: a path, a ``(dataset, column, row)`` triple or an HxW(x3) array, as ``FRItem.dist``. ``key`` names the
    item in split files (as ``FRItem.key``). ``ref_id`` is the content identity that splits group by: the reference
    an image was distorted from where there is one (KADID-10k, builtin), so that one content never lands in two
    splits; default: ``key`` (no reference: each image is its own content).
    """

    image: str | tuple | np.ndarray
    score: float
    ref_id: str = ""
    key: str = ""

    def __post_init__(self):
        self.ref_id = self.ref_id or self.key


class Scores(NamedTuple):
    """What a reader found: the items, the direction of their scores with the reason for it, the release's own
    train/validation/test split where it has one (sorted index lists), and whether its images may share references
    nobody named (a table read without a reference column: ``IQADataset.references_unknown``). Every reader (a
    release layout, a table, builtin) returns one, so that the loaders treat all sources alike."""

    items: list
    lower_better: bool
    why: str  # e.g. "KADID-10k dmos.csv: mean degradation category rating 1..5"
    official_split: tuple[list[int], list[int], list[int]] | None = None
    references_unknown: bool = False


def _better(lower_better: bool) -> str:
    return "lower is better" if lower_better else "higher is better"


def resolve_direction(found: bool, why: str, override: bool | None) -> tuple[bool, str]:
    """The final score direction and its readable reason, as ``IQADataset.direction`` records it: the source's own
    (``found``, ``why``) unless ``override`` (``--lower_better`` / ``--higher_better``) is given, then marked so."""
    if override is None:
        return found, f"{_better(found)} ({why})"
    flag = "--lower_better" if override else "--higher_better"
    if override == found:
        return override, f"{_better(override)} ({flag})"
    return override, f"{_better(override)} ({flag}; without it: {_better(found)}, {why})"


def fr_scores_as_nr(found: Scores) -> Scores:
    """FR triplets read as NR (any FR layout, builtin, a table with a reference column): each distorted image with its
    score, grouped for splits by its reference so that one content never lands in two splits."""
    items = [NRItem(item.dist, item.score, item.ref_id, item.key) for item in found.items]
    return Scores(items, found.lower_better, found.why)


def _load(source, what: Callable[[], str], cache: DecodedCache | None = None) -> np.ndarray:
    if isinstance(source, np.ndarray):
        return to_array(source)
    with reading(what, as_what="an image"):
        return cache.load(source, decode) if cache else decode(source)


def _describe(source) -> str:
    if isinstance(source, np.ndarray):
        return "an in-memory image"
    if isinstance(source, tuple):
        _, column, row = source
        path = image_name(source)
        return f"row {row}, column {column!r}" + ("" if path == f"row {row}" else f" ({path})")
    return str(source)


def _header_size(source, what: str | Callable[[], str]) -> tuple[int, int]:
    """(height, width) from the file's header only (PIL opens lazily), as ``decode`` will return it: swapped for an
    EXIF rotation by 90 degrees. A PNG's EXIF is only seen when it precedes the pixels (reading it would decode)."""
    with reading(what, as_what="an image"), Image.open(source) as image:
        width, height = image.size
        if image.format != "PNG" or "exif" in image.info:
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # orientations that exif_transpose turns by 90 degrees
                width, height = height, width
    return height, width


def _check_image(source, what: Callable[[], str]) -> None:
    """Read one image through: a PNG's chunks and their checksums (``Image.verify``: a truncated or damaged file fails,
    at ~1/60 of a decode), any other format decoded in full (PIL's ``verify`` checks nothing there)."""
    with reading(what, as_what="an image"), Image.open(source) as image:
        if image.format == "PNG":
            image.verify()
        else:
            image.load()


def verify_images(sources: Sequence, what: Callable[[object], str], progress: bool = True,
                  cache: DecodedCache | None = None) -> None:  # fmt: skip
    """Read every image of ``sources`` (paths, ``(dataset, column, row)`` cells, arrays) once, up front, in threads, so
    that a truncated file or one that is no image (a text file named ``.png``) ends a run with one ``UserError``
    naming it (the first in order) before the run writes anything, rather than hours into training.

    ``what(source)`` names a source for the message. Arrays are skipped (they are decoded already); a path listed
    several times (a reference shared by many items) is read once. A tqdm bar unless ``progress`` is False. With a
    ``cache``, each image not cached yet is decoded into it (the whole decode checks it), and a cached one is not read
    again (its entry's key changes with the file).
    """
    from tqdm.auto import tqdm

    jobs, seen = [], set()
    for source in sources:
        if isinstance(source, np.ndarray) or (isinstance(source, str) and source in seen):
            continue
        if isinstance(source, str):
            seen.add(source)
        jobs.append(source)
    if cache is not None:  # what is cached was decoded whole once, and its entry changes with the file
        jobs = [source for source in jobs if not cache.holds(source)]
    workers = min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(jobs), desc="checking images", leave=False,
                                                    disable=not progress or not jobs) as bar:  # fmt: skip
        for start in range(0, len(jobs), 256):  # a batch at a time: the first broken image stops the check
            chunk = jobs[start : start + 256]
            if cache is not None:  # decoded whole into the cache: the check and the cache's one decode in one
                checks = pool.map(lambda source: _load(source, lambda: what(source), cache), chunk)
            else:
                cells = iter(_cell_sources([s for s in chunk if isinstance(s, tuple)]))
                openable = [next(cells) if isinstance(s, tuple) else s for s in chunk]
                checks = pool.map(lambda pair: _check_image(pair[0], lambda: what(pair[1])), zip(openable, chunk))
            for _ in checks:
                bar.update(1)


def _cell_sources(cells: Sequence[tuple]) -> list:
    """What PIL opens for each ``(dataset, column, row)`` cell (its bytes, else its path), rows read in one batch per
    table and column."""
    out: list = [None] * len(cells)
    groups: dict[tuple[int, str], tuple] = {}
    for i, (table, column, row) in enumerate(cells):
        groups.setdefault((id(table), column), (table, column, []))[2].append((i, row))
    for table, column, rows in groups.values():
        values = table.select_columns([column])[[row for _, row in rows]][column]
        for (i, _), cell in zip(rows, values):
            out[i] = io.BytesIO(cell["bytes"]) if cell["bytes"] else cell["path"]
    return out


def _sizes(sources: Sequence) -> list[tuple[int, int]]:
    """(height, width) of each source without decoding: array shapes, file headers (each distinct path once), and
    table cells' headers (read in row batches)."""
    sizes: list = [None] * len(sources)
    by_path: dict[str, tuple[int, int]] = {}
    cells = []
    for i, source in enumerate(sources):
        if isinstance(source, np.ndarray):
            sizes[i] = tuple(source.shape[:2])
        elif isinstance(source, tuple):
            cells.append((i, source))
        else:
            if source not in by_path:
                by_path[source] = _header_size(source, f"image {source}")
            sizes[i] = by_path[source]
    for start in range(0, len(cells), 256):
        chunk = cells[start : start + 256]
        for (i, cell), opened in zip(chunk, _cell_sources([cell for _, cell in chunk])):
            sizes[i] = _header_size(opened, lambda cell=cell: f"image in {_describe(cell)}")
    return sizes


class IQADataset(torch.utils.data.Dataset):
    """What ``FRDataset`` and ``NRDataset`` share: items with scores, their direction, crops, sizes and keys.

    Subclasses name their image fields (``_image``: the one ``image_sizes`` reports, ``_others``: the rest, which
    ``min_side`` also reads) and build samples with ``_cut``, so both kinds crop, flip and fail alike.

    Args:
        items: the items (``FRItem`` or ``NRItem``).
        name: the source's name (for messages, reports and split files).
        lower_better: True when a lower score means better quality (e.g. LIVE's DMOS).
        crop_size: side of the square crop, or None for full images.
        train: random crops and flips when True.
        direction: the score direction and why, for people (``"lower is better (column 'dmos' of live.csv: a
            differential MOS)"``); default: the direction alone, marked as given.
        official_split: the release's own (train, validation, test) item indices, or None.
        references_unknown: True for a table that named no reference column: its images may share references
            (KADID-like) that nobody told apart, so a split by image may leak one content into two splits
            (``choose_split`` warns).
    """

    _image = "dist"
    _others: tuple[str, ...] = ()

    def __init__(self, items: list, name: str, lower_better: bool, crop_size: int | None = None, train: bool = False,
                 direction: str | None = None, official_split: tuple[list[int], list[int], list[int]] | None = None,
                 references_unknown: bool = False):  # fmt: skip
        if crop_size is not None and crop_size < 1:
            raise UserError(f"crop size must be positive, got {crop_size}")
        self.items, self.name, self.lower_better = list(items), name, bool(lower_better)
        self.direction = direction or f"{_better(self.lower_better)} (given)"
        self.crop_size, self.train = crop_size, train
        self.official_split, self.references_unknown = official_split, references_unknown
        self.cache = active()  # the decoded-image cache its images are read through (None: decode every access)

    def __len__(self) -> int:
        return len(self.items)

    def _cut(self, images: list[np.ndarray], what: str) -> list[torch.Tensor]:
        """Images of one size as (3, H, W) tensors, all cut at the same window and flipped together: a random window
        and a coin-flip horizontal flip (torch's RNG) when ``train``, the centre otherwise, whole without a crop
        size. ``what`` names the image for the too-small error."""
        h, w = images[0].shape[:2]
        if self.crop_size is not None:
            c = self.crop_size
            if min(h, w) < c:
                raise UserError(f"{what} is {h}x{w}, smaller than the {c}x{c} crop: use a smaller crop size")
            if self.train:
                top, left = int(torch.randint(h - c + 1, ())), int(torch.randint(w - c + 1, ()))
            else:
                top, left = (h - c) // 2, (w - c) // 2
            images = [image[top : top + c, left : left + c] for image in images]
        tensors = [to_tensor(image) for image in images]
        if self.train and torch.rand(()) < 0.5:
            tensors = [tensor.flip(-1) for tensor in tensors]
        return [tensor.contiguous() for tensor in tensors]

    def subset(self, indices: Sequence[int], crop_size: int | None = None, train: bool = False) -> IQADataset:
        """The items at ``indices`` as a new dataset of the same kind (same name and score direction, no official
        split: its indices are the parent's) with its own cropping."""
        return type(self)([self.items[i] for i in indices], self.name, self.lower_better, crop_size, train,
                          self.direction)  # fmt: skip

    def scores(self) -> np.ndarray:
        """All scores, in item order (float64)."""
        return np.array([item.score for item in self.items], dtype=np.float64)

    def quality(self) -> np.ndarray:
        """All scores oriented so that higher means better quality (negated when ``lower_better``)."""
        return -self.scores() if self.lower_better else self.scores()

    def check_scores_vary(self, what: str = "") -> None:
        """A ``UserError`` when every score is equal (``what`` names the part, e.g. "the training split"): a constant
        MOS leaves a model nothing to learn and no correlation to report, and is usually the wrong column."""
        scores = self.scores()
        if len(scores) > 1 and np.ptp(scores) == 0:
            where = f"{what} of {self.name}" if what else self.name
            raise UserError(f"all {len(scores)} scores of {where} are equal ({scores[0]:g}): a constant MOS gives "
                            "nothing to learn and no correlation; is --score_column the subjective-score "
                            "column?")  # fmt: skip

    def keys(self) -> list[str]:
        """Each item's key for split files, in item order: ``item.key`` (``item N`` where it has none), a repeated key
        suffixed ``#2``, ``#3``, ... in order, so keys are unique and stable."""
        seen: dict[str, int] = {}
        keys = []
        for i, item in enumerate(self.items):
            key = item.key or f"item {i}"
            seen[key] = seen.get(key, 0) + 1
            keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
        return keys

    def groups(self) -> list[str]:
        """What splits keep together, per item: its ``ref_id`` (the reference content), else its key."""
        return [item.ref_id or key for item, key in zip(self.items, self.keys())]

    def split_unit(self) -> str:
        """``"reference"`` when items share contents (splits go by reference), else ``"image"``."""
        return "image" if self.groups() == self.keys() else "reference"

    def image_sizes(self) -> list[tuple[int, int]]:
        """(height, width) of each (distorted) image, from file headers only (no decoding): cheap enough to check a
        crop size before any work. An unreadable header is a ``UserError`` naming the image."""
        return _sizes([getattr(item, self._image) for item in self.items])

    def verify_images(self, progress: bool = True) -> None:
        """Read every image of every item once (``verify_images``): a truncated or foreign file is a ``UserError``
        naming it, raised before a run writes anything."""
        fields = (self._image, *self._others)
        sources = [getattr(item, field) for item in self.items for field in fields]
        verify_images(sources, lambda source: f"{self.name}: image {_describe(source)}", progress, self.cache)

    def min_side(self) -> int:
        """The shortest side over all images of all items (headers only): the largest crop every item allows. Each
        distinct file is read once."""
        sizes = self.image_sizes()
        for field in self._others:
            sizes += _sizes([getattr(item, field) for item in self.items])
        if not sizes:
            raise UserError(f"{self.name} has no images")
        return int(min(min(size) for size in sizes))


class FRDataset(IQADataset):
    """Full-reference IQA triplets: ``{"dist": (3, H, W), "ref": (3, H, W), "score": 0-d float32, "index": int}``.

    Images are floats in [0, 1], RGB, decoded on access (an unreadable image is a ``UserError`` naming it). With
    ``crop_size`` both images are cut at the SAME window: random (torch's RNG, so ``torch.manual_seed`` makes it
    reproducible) and randomly flipped horizontally (both) when ``train``, centred otherwise. ``crop_size=None``
    returns the full images. Arguments: see ``IQADataset``; ``image_sizes`` reports the distorted images,
    ``min_side`` also reads the references.
    """

    _image, _others = "dist", ("ref",)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        dist = _load(item.dist, lambda: f"{self.name}: image {_describe(item.dist)}", self.cache)
        ref = _load(item.ref, lambda: f"{self.name}: reference image {_describe(item.ref)}", self.cache)
        if dist.shape[:2] != ref.shape[:2]:
            raise UserError(f"{_describe(item.dist)} is {dist.shape[0]}x{dist.shape[1]} but its reference "
                            f"{_describe(item.ref)} is {ref.shape[0]}x{ref.shape[1]}: expected one size")  # fmt: skip
        dist, ref = self._cut([dist, ref], _describe(item.dist))
        score = torch.tensor(item.score, dtype=torch.float32)
        return {"dist": dist, "ref": ref, "score": score, "index": index}


class NRDataset(IQADataset):
    """No-reference IQA items: ``{"image": (3, H, W), "score": 0-d float32, "index": int}``.

    Images are floats in [0, 1], RGB, decoded on access (an unreadable image is a ``UserError`` naming it). With
    ``crop_size``: a random window, randomly flipped horizontally, when ``train`` (torch's RNG), the centre
    otherwise; ``crop_size=None`` returns the full image. ``official_split``: the release's own (train, validation,
    test) indices (KonIQ-10k's sets file, a pyiqa csv's split column), or None. Arguments: see ``IQADataset``.
    """

    _image = "image"

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        image = _load(item.image, lambda: f"{self.name}: image {_describe(item.image)}", self.cache)
        (image,) = self._cut([image], _describe(item.image))
        return {"image": image, "score": torch.tensor(item.score, dtype=torch.float32), "index": index}


def split_by_reference(dataset: IQADataset, ratios: Sequence[float] = (0.6, 0.2, 0.2),
                       seed: int = 0) -> tuple[list[int], list[int], list[int]]:  # fmt: skip
    """Train/validation/test item indices such that no content is in two splits: FR or NR datasets alike.

    Items are grouped by ``dataset.groups()``: their ``ref_id`` (what the reference image is, not how a row names it:
    see ``FRItem``; an NR item's reference content where it has one), else their key (by image). Groups are shuffled
    with ``seed`` and cut by ``ratios``; every split with a positive ratio gets at least one group. Each list is
    sorted.

    Raises:
        UserError: fewer than 3 groups, or ratios that are not 3 non-negative numbers with a positive sum.
    """
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise UserError(f"ratios must be 3 non-negative numbers with a positive sum, got {tuple(ratios)}")
    groups = dataset.groups()
    ref_ids = sorted(set(groups))
    n = len(ref_ids)
    if n < 3:
        unit = "reference image" if dataset.split_unit() == "reference" else "image"
        raise UserError(f"{dataset.name} has {n} {unit}(s): a train/validation/test split by {unit} needs at least 3")
    total = float(sum(ratios))
    counts = [max(1, round(n * r / total)) if r > 0 else 0 for r in ratios[1:]]  # validation, test
    while n - sum(counts) < (1 if ratios[0] > 0 else 0):  # give train its share back, largest other split first
        counts[int(np.argmax(counts))] -= 1
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    shuffled = [ref_ids[i] for i in order]
    n_val, n_test = counts
    n_train = n - n_val - n_test
    parts_of = shuffled[:n_train], shuffled[n_train : n_train + n_val], shuffled[n_train + n_val :]
    split_of = {ref: s for s, part in enumerate(parts_of) for ref in part}
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for index, group in enumerate(groups):
        parts[split_of[group]].append(index)
    return parts
