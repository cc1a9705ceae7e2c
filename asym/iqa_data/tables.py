"""FR triplets from a Hub dataset or a local ``datasets`` table (``save_to_disk`` folder, parquet/arrow files): the
direction from the score column's name, and a reference's identity from its decoded pixels (``_PixelIds``), its
file, or a ``ref_id_column``, never from how a row names it.
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np

from asym.errors import UserError, reading
from asym.images import decode, open_image_table

from .dataset import FRItem, _Scores
from .files import DMOS_NAME, _FileIds, _score


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


def _hub_items(name: str, image_column: str, ref_column: str, score_column: str, split: str,
               ref_id_column: str | None = None) -> _Scores:  # fmt: skip
    """A table's triplets. A reference is identified by ``ref_id_column`` when given, else by its decoded pixels
    (``_PixelIds``), or its resolved path for a cell that holds only a path. The table is read in row batches."""
    if ref_id_column in (image_column, ref_column):
        raise UserError(f"--ref_id_column {ref_id_column!r} is an image column: name a column that names references")
    values = [score_column, *([ref_id_column] if ref_id_column else [])]
    table = open_image_table(name, [image_column, ref_column], split, values)
    pixel_ids, file_ids, items, row = _PixelIds(), _FileIds(), [], 0
    for batch in table.select_columns(list(dict.fromkeys([ref_column, *values]))).iter(batch_size=64):
        for i, (score, ref) in enumerate(zip(batch[score_column], batch[ref_column])):
            where = f"{name} row {row + i}"
            value = _score("None" if score is None else str(score), f"{where}, column {score_column!r}")
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
    return _Scores(items, *_table_direction(label, score_column, [item.score for item in items]))
