"""PIPAL as released for NTIRE 2021: one ``*_Label/A0001.txt`` score file per reference (Elo scores), images found by
name wherever the archives were unpacked."""

from __future__ import annotations

import os

from asym.core.errors import UserError

from ..dataset import FRItem, Scores
from ..files import FileIds, FileIndex, file_stem, numbered_lines, parse_score, require_nonempty


def find_pipal_label_files(folder: str) -> list[str]:
    """PIPAL's score files: the ``*.txt`` in ``Train_Label/`` (and ``Val_Label/``, ``Test_Label/`` or the earlier
    ``MOS_Scores_train/`` where present)."""
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and (name.lower().endswith("_label") or name.lower().startswith("mos_scores")):
            found += [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.lower().endswith(".txt")]
    return found


def read_pipal(folder: str) -> Scores:
    """PIPAL as released for NTIRE 2021: ``Train_Label/A0001.txt`` .. (one file per reference) with lines
    ``A0001_00_00.bmp,1446.2068`` (distorted name, Elo score: higher is better); references ``Train_Ref/A0001.bmp``,
    distorted images ``Train_Dis/`` or split over ``Distortion_1/`` .. ``Distortion_4/``. The reference of
    ``A0001_10_02.bmp`` is ``A0001.bmp`` (the name before the first ``_``); images are found by file name anywhere
    below the folder, so the way the archives were unpacked does not matter.
    """
    files, ids, items = FileIndex(folder), FileIds(), []
    for path in find_pipal_label_files(folder):
        for line, text in numbered_lines(path):
            if not text.strip():
                continue
            where = f"{path} line {line}"
            fields = [field.strip() for field in text.split(",")]
            if len(fields) != 2:
                raise UserError(f"{where}: {len(fields)} fields, expected 2 ('<image>.bmp,<elo score>')")
            dist = require_nonempty(fields[0], where, "image name")
            ref = dist.split("_")[0] + os.path.splitext(dist)[1]
            ref_path = files.find(ref, where)
            items.append(FRItem(files.find(dist, where), ref_path, parse_score(fields[1], where), ids(ref_path),
                                file_stem(ref).upper(), dist))  # fmt: skip
    return Scores(items, False, "PIPAL: Elo scores")
