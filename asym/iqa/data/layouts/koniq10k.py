"""KonIQ-10k as released (no-reference): ``koniq10k_scores_and_distributions.csv`` and/or the GitHub metadata file
``koniq10k_distributions_sets.csv`` (with the official split), images in ``1024x768/`` or ``512x384/``."""

from __future__ import annotations

import os

from asym.core.errors import UserError

from ..dataset import NRItem, Scores
from ..files import existing_image, parse_score, read_csv_rows, require_nonempty

KONIQ_SCORES = "koniq10k_scores_and_distributions.csv"  # image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore
KONIQ_SETS = "koniq10k_distributions_sets.csv"  # image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set
KONIQ_IMAGE_FOLDERS = ("1024x768", "512x384")  # in order of preference
# The sets file's ``set`` column -> split index (train, validation, test); pyiqa's short names accepted too.
KONIQ_SETS_SPLIT = {"training": 0, "train": 0, "validation": 1, "val": 1, "test": 2}
# (file, column) -> the range it is on: the scores file's MOS is the mean 1..5 rating, its MOS_zscore the z-scored
# ratings rescaled to 0..100; the sets file's MOS is on that 0..100 scale (as pyiqa and HyperIQA use it).
KONIQ_RANGES = {(KONIQ_SCORES, "MOS"): "mean rating 1..5", (KONIQ_SCORES, "MOS_zscore"): "0..100",
                (KONIQ_SETS, "MOS"): "0..100"}  # fmt: skip
_NUMERIC = ("MOS", "SD", "MOS_zscore")  # checked on every row, used or not: a corrupt row is named where it is


def find_koniq10k_files(folder: str) -> tuple[str | None, str | None]:
    """The KonIQ-10k score files in ``folder``: (scores file or None, sets file or None)."""
    found = (os.path.join(folder, name) for name in (KONIQ_SCORES, KONIQ_SETS))
    return tuple(path if os.path.isfile(path) else None for path in found)


def _read(path: str, required: tuple[str, ...]) -> dict[str, tuple[int, dict[str, str]]]:
    """A KonIQ csv's rows by image name (``(line, row)``), numbers checked, each name once."""
    header, rows = read_csv_rows(path, required)
    by_name: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        where = f"{path} line {line}"
        name = require_nonempty(row["image_name"], where, "image_name")
        if name in by_name:
            raise UserError(f"{where}: image {name} is listed twice (also line {by_name[name][0]}); list it once")
        for column in _NUMERIC:
            if column in header:
                parse_score(row[column], f"{where}, column {column!r}")
        by_name[name] = line, row
    return by_name


def _missing(names: dict, other: dict, path: str, other_path: str) -> None:
    for name, (line, _) in names.items():
        if name not in other:
            raise UserError(f"{path} line {line}: image {name} is not in {other_path}; use the two files of one "
                            f"KonIQ-10k release (or remove one of them)")  # fmt: skip


def read_koniq10k(folder: str, score_column: str | None = None) -> Scores:
    """KonIQ-10k: the scores file (``MOS_zscore``, 0..100, the default score) and/or the sets file (``MOS``, on the
    same 0..100 scale, and ``set``: the official training/validation/test split), joined on ``image_name`` when
    both are there. ``score_column`` ``MOS`` or ``MOS_zscore`` picks the column (``MOS`` is the scores file's 1..5
    mean rating where that file is present); None or ``score`` the default. Images: ``1024x768/`` if present, else
    ``512x384/``. Keys are the image names, so one split file serves both resolutions. Higher is better.
    """
    scores_path, sets_path = find_koniq10k_files(folder)
    if scores_path is None and sets_path is None:
        raise UserError(f"{folder} holds neither {KONIQ_SCORES} nor {KONIQ_SETS}")
    known = {"mos": "MOS", "mos_zscore": "MOS_zscore"}
    if score_column not in (None, "score") and score_column.lower() not in known:
        raise UserError(f"--score_column {score_column}: KonIQ-10k's scores are MOS_zscore (0..100) and MOS; pass "
                        f"one of them or leave the flag out")  # fmt: skip
    column = known[score_column.lower()] if score_column not in (None, "score") else None
    scores = _read(scores_path, ("image_name", "MOS", "MOS_zscore")) if scores_path else None
    sets = _read(sets_path, ("image_name", "MOS", "set")) if sets_path else None
    if scores is not None and sets is not None:
        _missing(scores, sets, scores_path, sets_path)
        _missing(sets, scores, sets_path, scores_path)
    if column == "MOS_zscore" and scores is None:
        raise UserError(f"{folder} has no {KONIQ_SCORES}, whose MOS_zscore --score_column names: add that file or "
                        f"use --score_column MOS (the sets file's MOS, 0..100)")  # fmt: skip
    source, source_path = (scores, scores_path) if scores is not None else (sets, sets_path)
    column = column or ("MOS_zscore" if scores is not None else "MOS")
    sub = next((s for s in KONIQ_IMAGE_FOLDERS if os.path.isdir(os.path.join(folder, s))), None)
    if sub is None:
        raise UserError(f"{folder} has no image folder {' or '.join(f'{s}/' for s in KONIQ_IMAGE_FOLDERS)}: unpack "
                        f"koniq10k_1024x768.zip (or koniq10k_512x384.zip) there")  # fmt: skip
    items, labels = [], []
    for name, (line, row) in source.items():
        where = f"{source_path} line {line}"
        image = existing_image(os.path.join(folder, sub, name), where)
        items.append(NRItem(image, float(row[column]), key=name))
        if sets is not None:
            set_line, set_row = sets[name]
            label = set_row["set"].lower()
            if label not in KONIQ_SETS_SPLIT:
                raise UserError(f"{sets_path} line {set_line}: set {set_row['set']!r} is not training, validation "
                                f"or test")  # fmt: skip
            labels.append(KONIQ_SETS_SPLIT[label])
    official = tuple([i for i, label in enumerate(labels) if label == s] for s in range(3)) if sets else None
    file = os.path.basename(source_path)
    why = f"KonIQ-10k {column} of {file}, {KONIQ_RANGES[file, column]}; images from {sub}/"
    return Scores(items, False, why, official)
