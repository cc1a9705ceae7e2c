"""pyiqa-style meta-info csvs (``ref_name,dist_name,mos[,std]``), the form in which Liu13 and Ma17 are read too:
finding them in a folder, reading one, and the direction of its scores (pyiqa's own files by name, else the column).
"""

from __future__ import annotations

import os
import re

from asym.core.errors import UserError

from ..dataset import FRItem, Scores
from ..files import DMOS_NAME, FileIds, FileIndex, csv_header, parse_score, read_csv_rows, require_nonempty

SCORE_NAMES = ("mos", "dmos", "score", "elo_score")  # accepted score columns of a pyiqa-style csv, by preference
REF_NAMES = ("ref_name", "hq_name")  # the reference column: pyiqa's PIPAL csv names it hq_name (its elo_score: Elo)

# pyiqa's full-reference meta-info files (lower-cased name) -> (database, lower_better, score range), as pyiqa 0.1.16's
# default_dataset_configs.yml gives them (meta_info_file, lower_better, mos_range). For these files the name decides
# the direction, not the column: pyiqa's LIVE csv calls LIVE's DMOS "mos", and its KADID-10k csv
# (ref_name,dist_name,dmos,std, written from KADID's dmos.csv) calls KADID's mean rating "dmos".
PYIQA_META_INFO = {
    "meta_info_csiqdataset.csv": ("CSIQ", True, (0, 1)),
    "meta_info_tid2008dataset.csv": ("TID2008", False, (0, 9)),
    "meta_info_tid2013dataset.csv": ("TID2013", False, (0, 9)),
    "meta_info_liveiqadataset.csv": ("LIVE", True, (1, 100)),
    "meta_info_livemddataset.csv": ("LIVE MD", True, (1, 100)),
    "meta_info_kadid10kdataset.csv": ("KADID-10k", False, (1, 5)),
    "meta_info_pipaldataset.csv": ("PIPAL", False, (0, 1)),
}
KADID_DIST_NAME = re.compile(r"(?:^|[/\\])I\d\d_\d\d_\d\d\.png$", re.IGNORECASE)  # KADID-10k's images/I01_01_01.png


def find_pyiqa_csvs(folder: str) -> list[str]:
    """The pyiqa-style FR csvs in ``folder`` (a header with a reference column of ``REF_NAMES``, ``dist_name`` and a
    score column of ``SCORE_NAMES``), sorted: how ``detect_layout`` recognises the layout, and the csv ``READERS``
    reads."""
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.lower().endswith(".csv") and os.path.isfile(path):
            header = csv_header(path)  # [] where it is no csv: not ours to complain about
            if "dist_name" in header and any(r in header for r in REF_NAMES) and any(s in header for s in SCORE_NAMES):
                found.append(path)
    return found


def csv_column_direction(file: str, column: str, scores: list[float], names: list[str]) -> tuple[bool, str]:
    """Which way a csv's score column goes, and why, from its name (FR and NR pyiqa-style csvs alike): named like
    ``dmos`` lower-is-better unless the rows are KADID-10k's (its images' names, scores in 1..5: a mean rating,
    higher is better); ``mos``, ``score`` and anything else higher-is-better, as stated."""
    if DMOS_NAME.search(column):
        if names and all(KADID_DIST_NAME.search(n) for n in names) and scores and 1 <= min(scores) <= max(scores) <= 5:
            return False, (f"column {column!r} of {file}: the images are KADID-10k's (I01_01_01.png ...) and "
                           f"KADID-10k's dmos is a mean degradation category rating 1..5")  # fmt: skip
        return True, f"column {column!r} of {file}: a differential MOS"
    if column.lower() == "mos":
        return False, f"column {column!r} of {file}: a mean opinion score"
    return False, f"column {column!r} of {file}: taken as a quality score; --lower_better if not"


def _pyiqa_direction(path: str, column: str, items: list[FRItem], dist_names: list[str]) -> tuple[bool, str]:
    """Which way a pyiqa-style csv's scores go, and why: pyiqa's own meta-info files by their name (``PYIQA_META_INFO``,
    whatever the column is called); else the column (``csv_column_direction``)."""
    file = os.path.basename(path)
    if file.lower() in PYIQA_META_INFO:
        database, lower, (low, high) = PYIQA_META_INFO[file.lower()]
        return lower, (f"{file} is pyiqa's {database} meta-info: its {column!r} runs {low}..{high} with lower_better: "
                       f"{str(lower).lower()} in pyiqa's dataset config")  # fmt: skip
    return csv_column_direction(file, column, [item.score for item in items], dist_names)


def read_pyiqa_csv(path: str) -> Scores:
    """A pyiqa-style meta-info csv (``ref_name,dist_name,mos[,std]``; ``dmos``, ``score`` or ``elo_score`` also
    accepted as the score column, as in pyiqa's ``meta_info_KADID10kDataset.csv``: ``ref_name,dist_name,dmos,std``,
    and ``hq_name`` as the reference column, as in its ``meta_info_PIPALDataset.csv``: ``hq_name,dist_name,elo_score``).
    Image paths
    are relative to the csv's folder; a name not found there is looked for under ``ref/`` (references) or ``dist/``
    (distorted images), then by its file name (case-insensitive) anywhere below the folder. The score direction:
    ``_pyiqa_direction``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    ref_column = next((r for r in REF_NAMES if r in csv_header(path)), "ref_name")
    header, rows = read_csv_rows(path, (ref_column, "dist_name"))
    score_column = next((s for s in SCORE_NAMES if s in header), None)
    if score_column is None:
        raise UserError(f"{path} line 1: header {','.join(header)} has no score column ({', '.join(SCORE_NAMES)})")
    refs, dists, ids = FileIndex(folder, ["ref"]), FileIndex(folder, ["dist"]), FileIds()
    items, dist_names = [], []
    for line, row in rows:
        where = f"{path} line {line}"
        ref, dist = (require_nonempty(row[k], where, k) for k in (ref_column, "dist_name"))
        score = parse_score(require_nonempty(row[score_column], where, score_column), where)
        ref_path = refs.find(ref, where)
        items.append(FRItem(dists.find(dist, where), ref_path, score, ids(ref_path), ref, dist))
        dist_names.append(dist)
    return Scores(items, *_pyiqa_direction(path, score_column, items, dist_names))
