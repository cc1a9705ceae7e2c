"""TQD (DISTS's texture quality database): ``images/<texture>-<k>.png`` (k = 0 the reference) and a score file of
``images/<texture>-<k>.png,<mos>`` lines."""

from __future__ import annotations

import os
import re

from asym.core.errors import UserError

from ..dataset import FRItem, Scores
from ..files import FileIds, FileIndex, numbered_lines, parse_score

TQD_NAME = re.compile(r"(?:^|[/\\])(\d+)-(\d+)\.(?:png|bmp|jpe?g|tiff?)$", re.IGNORECASE)


def find_tqd_score_file(folder: str) -> str | None:
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


def read_tqd(folder: str) -> Scores:
    """TQD (DISTS's texture quality database): 10 reference textures ``images/<t>-0.png`` with 15 distorted versions
    each, ``images/<t>-1.png`` .. ``images/<t>-15.png`` (resampled, synthesised, and conventionally distorted
    textures), and a score file with one ``images/<t>-<k>.png,<mos>`` line per distorted image (comma or white
    space between the two; MOS in 0..1, higher is better).
    """
    path = find_tqd_score_file(folder)
    files, ids, items = FileIndex(folder), FileIds(), []
    for line, text in numbered_lines(path):
        if not text.strip():
            continue
        where = f"{path} line {line}"
        fields = [f for f in re.split(r"[,\s]+", text.strip()) if f]
        if len(fields) != 2:
            raise UserError(f"{where}: {len(fields)} fields, expected 2 ('images/<texture>-<k>.png,<mos>')")
        match = TQD_NAME.search(fields[0])
        if match is None:
            raise UserError(f"{where}: {fields[0]!r} is not named <texture>-<k>.png")
        texture, k = match.group(1), int(match.group(2))
        if k == 0:
            raise UserError(f"{where}: {fields[0]} is the reference texture (k = 0), not a distorted image")
        ref_path = files.find(os.path.join(os.path.dirname(fields[0]), f"{texture}-0{os.path.splitext(fields[0])[1]}"),
                              where)  # fmt: skip
        items.append(FRItem(files.find(fields[0], where), ref_path, parse_score(fields[1], where), ids(ref_path),
                            texture, fields[0]))  # fmt: skip
    return Scores(items, False, "TQD: MOS 0..1")
