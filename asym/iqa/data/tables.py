"""IQA items from a Hub dataset or a local ``datasets`` table (``save_to_disk`` folder, parquet/arrow files): FR
triplets (``read_fr_table``) and NR images (``read_nr_table``), the direction from the score column's name, and a
reference's identity from its decoded pixels (``_PixelIds``), its file, or a ``ref_id_column``, never from how a row
names it; which files of a folder make a table (``table_data_files``).
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np

from asym.core.errors import UserError, reading
from asym.core.images import decode, open_image_table

from .dataset import FRItem, NRItem, Scores, fr_scores_as_nr
from .files import DMOS_NAME, FileIds, parse_score


def table_data_files(folder: str) -> list[str]:
    """The data files of a folder ``datasets`` reads as a table (parquet, arrow, jsonl): a folder that holds some and
    is in no release layout is loaded as a table."""
    return [f for f in os.listdir(folder) if f.lower().endswith((".parquet", ".arrow", ".jsonl"))]


def _table_direction(name: str, column: str, scores: list[float]) -> tuple[bool, str]:
    """A table's score direction from its score column's name: named like ``dmos``, lower is better (unless the
    dataset is named KADID-10k and its scores lie in 1..5, KADID's mean rating); otherwise higher, as stated."""
    if DMOS_NAME.search(column):
        if "kadid" in name.lower() and scores and 1 <= min(scores) <= max(scores) <= 5:
            return False, f"column {column!r} of {name}: KADID-10k's dmos, a mean degradation category rating 1..5"
        return True, f"column {column!r} of {name}: named like a differential MOS"
    return False, f"column {column!r} of {name}: taken as a quality score; --lower_better if not"


class _PixelIds:
    """A table reference's identity: a hash of its decoded pixels (and shape, dtype), so that one image encoded two
    ways (another PNG compression level, added metadata) is one reference. Each distinct byte string is decoded
    once: a 10k-row table of 81 references decodes 81 images."""

    def __init__(self):
        self._by_bytes: dict[str, str] = {}

    def __call__(self, data: bytes, what: str) -> str:
        key = hashlib.sha1(data).hexdigest()
        if key not in self._by_bytes:
            with reading(what, as_what="an image"):
                pixels = np.ascontiguousarray(decode(io.BytesIO(data)))
            digest = hashlib.sha1(f"{pixels.shape} {pixels.dtype}".encode())
            digest.update(pixels.data)
            self._by_bytes[key] = f"pixels:{digest.hexdigest()[:20]}"
        return self._by_bytes[key]


def read_fr_table(name: str, image_column: str, ref_column: str, score_column: str, split: str,
                  ref_id_column: str | None = None) -> Scores:  # fmt: skip
    """A table's FR triplets (``row N`` keys). A reference is identified by ``ref_id_column`` when given, else by its
    decoded pixels (``_PixelIds``), or its resolved path for a cell that holds only a path. The table is read in row
    batches."""
    if ref_id_column in (image_column, ref_column):
        raise UserError(f"--ref_id_column {ref_id_column!r} is an image column: name a column that names references")
    values = [score_column, *([ref_id_column] if ref_id_column else [])]
    table = open_image_table(name, [image_column, ref_column], split, values)
    pixel_ids, file_ids, items, row = _PixelIds(), FileIds(), [], 0
    for batch in table.select_columns(list(dict.fromkeys([ref_column, *values]))).iter(batch_size=64):
        for i, (score, ref) in enumerate(zip(batch[score_column], batch[ref_column])):
            where = f"{name} row {row + i}"
            value = parse_score("None" if score is None else str(score), f"{where}, column {score_column!r}")
            if ref is None or not (ref.get("bytes") or ref.get("path")):
                raise UserError(f"{where}, column {ref_column!r}: no reference image")
            ref_name = os.path.basename(ref["path"]) if ref.get("path") else f"row {row + i}"
            if ref_id_column:
                ref_id = batch[ref_id_column][i]
                if ref_id is None or not str(ref_id).strip():
                    raise UserError(f"{where}, column {ref_id_column!r}: empty reference id")
                ref_id = ref_name = str(ref_id).strip()
            elif ref.get("bytes"):
                ref_id = pixel_ids(ref["bytes"], f"{where}, column {ref_column!r}: reference image {ref_name}")
            else:
                ref_id = file_ids(ref["path"])
            items.append(FRItem((table, image_column, row + i), (table, ref_column, row + i), value, ref_id, ref_name,
                                f"row {row + i}"))  # fmt: skip
        row += len(batch[score_column])
    label = os.path.basename(os.path.normpath(name)) if os.path.exists(name) else name  # a local path: its name
    return Scores(items, *_table_direction(label, score_column, [item.score for item in items]))


def read_nr_table(name: str, image_column: str, score_column: str, split: str, ref_column: str | None = None,
                  ref_id_column: str | None = None) -> Scores:  # fmt: skip
    """A Hub / local table's images and scores, for NR (``row N`` keys); direction from the score column's name. With
    ``ref_column`` its items are grouped by reference as FR tables' are (decoded pixels, or ``ref_id_column``);
    with ``ref_id_column`` alone, by that column's value; with neither, each image is its own content (and the
    result says ``references_unknown``: ``choose_split`` warns)."""
    if ref_column:
        return fr_scores_as_nr(read_fr_table(name, image_column, ref_column, score_column, split, ref_id_column))
    if ref_id_column == image_column:
        raise UserError(f"--ref_id_column {ref_id_column!r} is the image column: name a column that names references")
    table = open_image_table(name, [image_column], split, [score_column, *([ref_id_column] if ref_id_column else [])])
    columns = table.select_columns([score_column, *([ref_id_column] if ref_id_column else [])])
    ref_ids = columns[ref_id_column] if ref_id_column else [None] * len(table)
    items = []
    for row, (value, ref_id) in enumerate(zip(columns[score_column], ref_ids)):
        where = f"{name} row {row}"
        score = parse_score("None" if value is None else str(value), f"{where}, column {score_column!r}")
        if ref_id_column and (ref_id is None or not str(ref_id).strip()):
            raise UserError(f"{where}, column {ref_id_column!r}: empty reference id")
        items.append(NRItem((table, image_column, row), score, str(ref_id).strip() if ref_id_column else "",
                            key=f"row {row}"))  # fmt: skip
    label = os.path.basename(os.path.normpath(name)) if os.path.exists(name) else name
    lower, why = _table_direction(label, score_column, [item.score for item in items])
    return Scores(items, lower, why, references_unknown=not ref_id_column)
