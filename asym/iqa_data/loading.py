"""``load_fr_dataset``: which reader a source goes to (builtin, a release folder, a pyiqa-style csv, a Hub or local
table) and the final score direction; and the command-line flags that describe an FR dataset, shared by
train_metric.py, evaluate.py and (with the NR ones, ``asym.iqa_data.nr``) train_iqa.py.
"""

from __future__ import annotations

import os

from asym.errors import UserError
from asym.images import is_saved_dataset

from .builtin import builtin_fr_items
from .dataset import FRDataset, _direction, _Scores
from .files import _stem
from .layouts import READERS, detect_layout
from .layouts.pyiqa_csv import _pyiqa_csv
from .tables import _hub_items

BUILTIN_WHY = "builtin pseudo-MOS: 100 - 20 x level x severity"  # the builtin set's direction, FR and NR alike


def _data_files(folder: str) -> list[str]:
    """The data files of a folder ``datasets`` reads as a table (parquet, arrow, jsonl)."""
    return [f for f in os.listdir(folder) if f.lower().endswith((".parquet", ".arrow", ".jsonl"))]


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
    try:
        if source == "builtin":
            found, name = _Scores(builtin_fr_items(), False, BUILTIN_WHY), source
        elif os.path.isfile(source) and source.lower().endswith(".csv"):
            found, name = _pyiqa_csv(source), _stem(source)
        elif os.path.isdir(source) and not is_saved_dataset(source):
            try:
                layout = detect_layout(source)
            except UserError:
                if not _data_files(source):
                    raise
                layout = None
            name = os.path.basename(os.path.normpath(source))
            if layout:
                found = READERS[layout](source)
            else:
                found = _hub_items(source, image_column, ref_column, score_column, split, ref_id_column)
        elif source.startswith((os.sep, ".", "~")) and not os.path.exists(os.path.expanduser(source)):
            raise UserError(f"folder {source} does not exist")
        else:  # a Hub id (named as such) or a saved local dataset (named by its folder, as the layouts above)
            found = _hub_items(source, image_column, ref_column, score_column, split, ref_id_column)
            name = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
    except OSError as err:  # listing or reading the user's folder failed (permissions, I/O)
        raise UserError(f"{source} cannot be read ({err})") from err
    if not found.items:
        raise UserError(f"{source} has no distorted images with scores")
    lower, direction = _direction(found.lower_better, found.why, lower_better)
    return FRDataset(found.items, name, lower, direction=direction)


def add_fr_dataset_args(parser) -> None:
    """The command-line flags that describe an FR dataset (shared by train_metric.py and evaluate.py): the score
    direction override (any source) and the columns of a Hub / ``datasets`` dataset. ``fr_dataset_kwargs(args)``
    turns them into ``load_fr_dataset`` keywords."""
    g = parser.add_argument_group("FR dataset (columns: Hub ids and local datasets; direction: any source)")
    g.add_argument("--image_column", default="dist_image", help="distorted-image column")
    g.add_argument("--ref_column", default="ref_image", help="reference-image column")
    g.add_argument("--score_column", default="score", help="subjective score (MOS) column")
    g.add_argument("--ref_id_column", default=None,
                   help="column naming each row's reference image, for the split by reference (default: references "
                        "are told apart by their decoded pixels)")  # fmt: skip
    _add_split_and_direction_args(g)


def _add_split_and_direction_args(g) -> None:
    """The flags every IQA dataset has (FR, NR, and train_iqa.py's either): the table split, the direction override."""
    g.add_argument("--dataset_split", default="train", help="split of a Hub / datasets dataset")
    direction = g.add_mutually_exclusive_group()
    direction.add_argument("--lower_better", action="store_true",
                           help="the scores are lower-is-better (e.g. a DMOS); default: decided from the layout, "
                                "file and column names, and printed with the reason")  # fmt: skip
    direction.add_argument("--higher_better", action="store_true", help="the scores are higher-is-better (a MOS)")


def _lower_better_flag(args) -> bool | None:
    """``--lower_better`` / ``--higher_better`` as ``lower_better``: True, False, or None (the source decides)."""
    return True if getattr(args, "lower_better", False) else False if getattr(args, "higher_better", False) else None


def _given(args, **flags: str) -> dict:
    """Loader keyword -> the value of its flag (``keyword=flag name``), for the flags that have a value: a flag left
    None or absent (``add_iqa_dataset_args``' columns) means the loader's default, which differs between FR and NR."""
    values = {key: getattr(args, flag, None) for key, flag in flags.items()}
    return {key: value for key, value in values.items() if value is not None}


def fr_dataset_kwargs(args) -> dict:
    """``load_fr_dataset`` keywords from ``add_fr_dataset_args``' (or ``add_iqa_dataset_args``') flags: ``lower_better``
    True, False or None (the source decides); a column flag that is None or absent is left to the loader's default."""
    columns = _given(args, image_column="image_column", ref_column="ref_column", score_column="score_column",
                     split="dataset_split")  # fmt: skip
    return {**columns, "lower_better": _lower_better_flag(args), "ref_id_column": getattr(args, "ref_id_column", None)}
