"""TID2013: ``mos_with_names.txt``, ``distorted_images/`` and ``reference_images/``, names matched
case-insensitively as the release mixes cases."""

from __future__ import annotations

import os

from asym.core.errors import UserError

from ..dataset import FRItem, Scores
from ..files import FileIds, file_stem, numbered_lines, parse_score


def _files_by_lower_name(folder: str, where: str) -> dict[str, str]:
    if not os.path.isdir(folder):
        raise UserError(f"{where}: folder {folder} does not exist")
    return {name.lower(): os.path.join(folder, name) for name in sorted(os.listdir(folder))}


def read_tid2013(folder: str) -> Scores:
    """TID2013: ``mos_with_names.txt`` lines ``<mos> <name>`` (e.g. ``5.51429 i01_01_1.bmp``), distorted images in
    ``distorted_images/``, references ``reference_images/I01.BMP`` .. ``I25.BMP``. The release mixes cases
    (``i01_01_1.bmp`` listed, ``I01_01_1.BMP`` on disk, ``i25`` vs ``I25``), so names match case-insensitively;
    the reference is named by the first 3 characters. MOS 0..9, higher is better.
    """
    path = os.path.join(folder, "mos_with_names.txt")
    distorted = _files_by_lower_name(os.path.join(folder, "distorted_images"), path)
    references = _files_by_lower_name(os.path.join(folder, "reference_images"), path)
    ref_by_id = {file_stem(name).upper(): file for name, file in references.items()}
    ids, items = FileIds(), []
    for line, text in numbered_lines(path):
        fields = text.split()
        if not fields:
            continue
        where = f"{path} line {line}"
        if len(fields) != 2:
            raise UserError(f"{where}: {len(fields)} fields, expected 2 ('<mos> <name>')")
        mos, name = parse_score(fields[0], where), fields[1]
        if name.lower() not in distorted:
            raise UserError(f"{where}: image {os.path.join(folder, 'distorted_images', name)} does not exist")
        ref_name = name[:3].upper()
        if ref_name not in ref_by_id:
            raise UserError(f"{where}: reference image {ref_name}.BMP does not exist in "
                            f"{os.path.join(folder, 'reference_images')}")  # fmt: skip
        ref_path = ref_by_id[ref_name]
        items.append(FRItem(distorted[name.lower()], ref_path, mos, ids(ref_path), ref_name, name))
    return Scores(items, False, "TID2013 mos_with_names.txt: MOS 0..9")
