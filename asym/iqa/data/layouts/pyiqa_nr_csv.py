"""pyiqa's no-reference meta-info csvs (its ``GeneralNRDataset``: the image path, then the MOS, then anything, e.g.
``meta_info_KonIQ10kDataset.csv``: ``img_name,mos,std,split,c1,c2,c3,c4,c5,c_total``), with the official split of a
``split`` / ``official_split`` column where there is one."""

from __future__ import annotations

import os
import re

from asym.core.errors import UserError

from ..dataset import NRItem, Scores
from ..files import FileIndex, csv_header, parse_score, read_csv_rows, require_nonempty
from .koniq10k import KONIQ_SCORES, KONIQ_SETS
from .pyiqa_csv import csv_column_direction

NR_SCORE_HEADER = re.compile(r"mos|score", re.IGNORECASE)  # how a folder's NR csv names its second column
SPLIT_COLUMNS = ("official_split", "split")  # in order of preference
SPLIT_VALUES = {"0": 0, "train": 0, "training": 0, "1": 1, "val": 1, "valid": 1, "validation": 1, "2": 2, "test": 2}
# Subfolders where a csv's images are looked for before a search by file name below its folder (KonIQ-10k's two
# resolutions in order of preference: pyiqa's KonIQ csv names bare image files).
NR_IMAGE_FOLDERS = ("1024x768", "512x384", "images")


def find_pyiqa_nr_csvs(folder: str) -> list[str]:
    """The pyiqa-style NR csvs in ``folder``: a header of 2 or more columns whose second is named like a score
    (``mos``, ``dmos``, ``score``, ...); not an FR csv (``ref_name,dist_name``) nor a KonIQ-10k release file."""
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.lower().endswith(".csv") and os.path.isfile(path) and name not in (KONIQ_SCORES, KONIQ_SETS):
            header = csv_header(path)
            if len(header) >= 2 and NR_SCORE_HEADER.search(header[1]) and not {"ref_name", "dist_name"} <= set(header):
                found.append(path)
    return found


def _split_label(value: str, where: str, column: str) -> int:
    text = value.strip().lower()
    if re.fullmatch(r"[012]\.0*", text):
        text = text[0]
    if text not in SPLIT_VALUES:
        raise UserError(f"{where}: {column} {value!r} is not 0/1/2 or train/val/test; fix the row or drop the column")
    return SPLIT_VALUES[text]


def read_pyiqa_nr_csv(path: str, image_column: str | None = None, score_column: str | None = None) -> Scores:
    """A pyiqa-style NR meta-info csv: image paths in the first column (or ``image_column`` where the header has
    it), scores in the second (or ``score_column``). Paths are relative to the csv's folder; a name not found there
    is looked for under ``NR_IMAGE_FOLDERS``, then by file name anywhere below it. A ``split`` (or
    ``official_split``) column of 0/1/2 or train/val/test is the official split. Keys are the paths as written.
    Direction: by the score column's name, as for FR csvs (``dmos``-like lower, else higher).
    """
    header, rows = read_csv_rows(path, ())
    if len(header) < 2:
        raise UserError(f"{path} line 1: header {','.join(header) or '(empty)'} has fewer than 2 columns; expected "
                        f"pyiqa's NR meta-info: image path, then MOS (e.g. img_name,mos,std)")  # fmt: skip
    image = image_column if image_column in header else header[0]
    if score_column not in (None, "score", *header):
        raise UserError(f"{path} line 1: header {','.join(header)} has no column {score_column!r}")
    score = score_column if score_column in header else header[1]
    split = next((column for column in SPLIT_COLUMNS if column in header), None)
    files = FileIndex(os.path.dirname(os.path.abspath(path)), NR_IMAGE_FOLDERS)
    items, names, labels = [], [], []
    for line, row in rows:
        where = f"{path} line {line}"
        name = require_nonempty(row[image], where, image)
        value = parse_score(require_nonempty(row[score], where, score), where)
        items.append(NRItem(files.find(name, where), value, key=name))
        names.append(name)
        if split:
            labels.append(_split_label(row[split], where, split))
    official = tuple([i for i, label in enumerate(labels) if label == s] for s in range(3)) if split else None
    lower, why = csv_column_direction(os.path.basename(path), score, [i.score for i in items], names)
    return Scores(items, lower, why, official)
