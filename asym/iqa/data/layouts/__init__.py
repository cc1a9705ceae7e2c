"""The official layouts of known IQA releases, one reader module per release: which FR layout a folder is in
(``detect_layout``, from the files that identify it; ``LAYOUTS`` describes them) and its reader (``READERS``); the
no-reference layouts (``NR_LAYOUTS``: ``koniq10k``, ``pyiqa_nr_csv``), which ``asym.iqa.data.nr`` detects itself.

A reader takes the folder and returns ``Scores``: the items, the direction of their scores and the reason for it
(and an NR release's official split). A new release is a module here plus its entries in ``LAYOUTS``,
``detect_layout`` and ``READERS`` (FR) or ``NR_LAYOUTS`` and ``asym.iqa.data.nr`` (NR).
"""

from __future__ import annotations

import os

from asym.core.errors import UserError, list_names

from .kadid10k import read_kadid10k
from .koniq10k import KONIQ_SCORES, KONIQ_SETS, find_koniq10k_files
from .pipal import find_pipal_label_files, read_pipal
from .pyiqa_csv import find_pyiqa_csvs, read_pyiqa_csv
from .pyiqa_nr_csv import find_pyiqa_nr_csvs
from .tid2013 import read_tid2013
from .tqd import find_tqd_score_file, read_tqd

# Layout name -> what identifies it in a folder (shown in the "unknown layout" error).
LAYOUTS = {
    "kadid10k": "dmos.csv (header dist_img,ref_img,dmos,var) + images/",
    "tid2013": "mos_with_names.txt ('<mos> <name>' lines) + distorted_images/ + reference_images/",
    "pipal": "Train_Label/ (or another *_Label/ folder) of A0001.txt files with 'A0001_00_00.bmp,<elo>' lines",
    "tqd": "images/<texture>-0.png references, images/<texture>-<k>.png distorted + a score file of "
    "'images/<texture>-<k>.png,<mos>' lines",
    "pyiqa-csv": "a *.csv with header ref_name|hq_name,dist_name,mos|dmos|score|elo_score[,std] (also Liu13, Ma17)",
}
FR_RELEASES = ("kadid10k", "tid2013", "pipal", "tqd")  # layouts told by fixed file names (not a csv's header)
# No-reference layouts (read by asym.iqa.data.nr; every FR layout above is also read as NR: its distorted images).
NR_LAYOUTS = {
    "koniq10k": f"{KONIQ_SCORES} and/or {KONIQ_SETS} (official split) + 1024x768/ or 512x384/",
    "pyiqa-nr-csv": "one *.csv of pyiqa's NR meta-info: image path, then MOS (e.g. img_name,mos,std[,split,...])",
}


def detect_layout(folder: str) -> str:
    """Which known layout (a key of ``LAYOUTS``) a folder is in, from the files that identify it.

    Raises:
        UserError: the folder does not exist, or matches no known layout (the message lists them), or holds more
            than one pyiqa-style csv (then pass the csv's path itself).
    """
    if not os.path.isdir(folder):
        raise UserError(f"folder {folder} does not exist")
    if os.path.isfile(os.path.join(folder, "dmos.csv")):
        return "kadid10k"
    if os.path.isfile(os.path.join(folder, "mos_with_names.txt")):
        return "tid2013"
    if find_pipal_label_files(folder):
        return "pipal"
    if find_tqd_score_file(folder):
        return "tqd"
    found = find_pyiqa_csvs(folder)
    if len(found) > 1:
        raise UserError(f"{folder} holds {len(found)} pyiqa-style csvs ({list_names(found, 3)}): "
                        f"pass the path of the one to use")  # fmt: skip
    if found:
        return "pyiqa-csv"
    if any(find_koniq10k_files(folder)) or find_pyiqa_nr_csvs(folder):
        raise UserError(f"{folder} is a no-reference dataset (no reference images): load it as NR (load_nr_dataset; "
                        f"train_iqa.py's NR mode)")  # fmt: skip
    known = "; ".join(f"{name}: {files}" for name, files in LAYOUTS.items())
    raise UserError(f"{folder} is in no known IQA layout. Known layouts: {known}")


# Layout name (a key of LAYOUTS) -> the reader of a folder in that layout: its items, the direction of their scores
# (lower_better) and the reason for it (layouts fix it; a pyiqa-style csv by its file name and column).
READERS = {
    "kadid10k": read_kadid10k,
    "tid2013": read_tid2013,
    "pipal": read_pipal,
    "tqd": read_tqd,
    "pyiqa-csv": lambda folder: read_pyiqa_csv(find_pyiqa_csvs(folder)[0]),
}
