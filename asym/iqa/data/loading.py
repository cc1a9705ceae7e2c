"""``load_fr_dataset``: which reader a source goes to (builtin, a release folder, a pyiqa-style csv, a Hub or local
table) and the final score direction; ``read_iqa_source``: the one way a source is told apart, for FR and NR
alike. Its command-line flags are in ``asym.iqa.data.cli``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from asym.core.errors import UserError
from asym.core.images import is_saved_dataset

from .builtin import read_builtin
from .dataset import FRDataset, resolve_direction
from .files import file_stem
from .layouts import READERS, detect_layout
from .layouts.pyiqa_csv import read_pyiqa_csv
from .pyiqa_datasets import PREFIX as PYIQA_PREFIX
from .pyiqa_datasets import fetch_pyiqa_dataset
from .tables import read_fr_table, table_data_files


def load_fr_dataset(source: str, image_column: str = "dist_image", ref_column: str = "ref_image",
                    score_column: str = "score", lower_better: bool | None = None, split: str = "train",
                    ref_id_column: str | None = None) -> FRDataset:  # fmt: skip
    """Full-reference IQA triplets from ``builtin``, a folder in a known layout, a pyiqa-style csv, or a dataset.

    Args:
        source: ``"builtin"`` (see ``builtin_fr_items``); a folder in a layout of ``LAYOUTS`` (KADID-10k's
            ``dmos.csv``, TID2013's ``mos_with_names.txt``, PIPAL's ``Train_Label/``, TQD's ``images/`` and
            score file, a pyiqa-style meta-info csv: the form in which Liu13 and Ma17 are read); the
            path of a pyiqa-style csv; otherwise a Hub dataset id or a local path ``datasets`` understands
            (``save_to_disk`` folder, parquet/arrow file, folder of data files).
        image_column: the distorted-image column of a dataset.
        ref_column: the reference-image column of a dataset.
        score_column: the score column of a dataset.
        lower_better: whether lower scores mean better quality. None: the source's own convention, stated in the
            result's ``direction``: higher is better for builtin, KADID-10k's dmos, TID2013's MOS, PIPAL's Elo,
            TQD's MOS; for a pyiqa-style csv, pyiqa's own meta-info files by name (``PYIQA_META_INFO``: LIVE, CSIQ
            lower), else ``mos``/``score`` higher, ``dmos`` lower unless KADID-10k's; for a dataset, a column named
            like ``dmos`` lower, any other higher. True/False override it (recorded as ``--lower_better`` /
            ``--higher_better``).
        split: the split of a dataset.
        ref_id_column: a dataset's column that names each row's reference (default: references are told apart by
            their decoded pixels).

    Raises:
        UserError: a missing folder or file, an unknown layout, a malformed row (naming file and line), a missing
            or unreadable image, a missing column, or no items at all.
    """

    def table(path: str):
        return read_fr_table(path, image_column, ref_column, score_column, split, ref_id_column)

    found, name = read_iqa_source(source, "distorted images", read_builtin, read_pyiqa_csv,
                                  lambda folder: _fr_folder(folder, table), table)  # fmt: skip
    lower, direction = resolve_direction(found.lower_better, found.why, lower_better)
    return FRDataset(found.items, name, lower, direction=direction)


def _fr_folder(source: str, read_table: Callable):
    """A folder in a known release layout, else a folder of data files read as a table."""
    try:
        layout = detect_layout(source)
    except UserError:
        if not table_data_files(source):
            raise
        layout = None
    return READERS[layout](source) if layout else read_table(source)


def read_iqa_source(source: str, what: str, builtin: Callable, csv_file: Callable, folder: Callable,
                    table: Callable) -> tuple:  # fmt: skip
    """The one way an IQA dataset source is told apart, for FR and NR alike: ``pyiqa:<name>`` (pyiqa's Hub mirror,
    fetched once into the user cache), ``builtin``, a csv file, a local folder (``folder``), a
    local path that does not exist (a ``UserError``), else a Hub id or a saved ``datasets`` folder (``table``). Returns
    what the reader found and the dataset's name (the file's stem, the folder's name, the Hub id); a folder that
    cannot be listed or read, or a source with no ``what`` with scores, is a ``UserError``."""
    if source.startswith(PYIQA_PREFIX):
        source = fetch_pyiqa_dataset(source)
    try:
        if source == "builtin":
            found, name = builtin(), source
        elif source.lower().endswith(".csv") and not os.path.isdir(source):
            if not os.path.isfile(source):
                raise UserError(f"file {source} does not exist")
            found, name = csv_file(source), file_stem(source)
        elif os.path.isdir(source) and not is_saved_dataset(source):
            found, name = folder(source), os.path.basename(os.path.normpath(source))
        elif source.startswith((os.sep, ".", "~")) and not os.path.exists(os.path.expanduser(source)):
            raise UserError(f"folder {source} does not exist")
        else:  # a Hub id (named as such) or a saved local dataset (named by its folder, as the layouts above)
            found = table(source)
            name = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
    except OSError as err:  # listing or reading the user's folder failed (permissions, I/O)
        raise UserError(f"{source} cannot be read ({err})") from err
    if not found.items:
        raise UserError(f"{source} has no {what} with scores")
    return found, name
