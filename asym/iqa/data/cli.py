"""The command-line flags that describe an IQA dataset, shared by the scripts: an FR dataset's
(``add_fr_dataset_args``: train_metric.py, evaluate.py), an NR dataset's (``add_nr_dataset_args``: evaluate.py), or
either kind declared once (``add_iqa_dataset_args``: train_iqa.py); and the loader keywords they mean
(``fr_dataset_kwargs`` for ``load_fr_dataset``, ``nr_dataset_kwargs`` for ``load_nr_dataset``). Apart from the
loaders, which it does not import (it reads no data), so that the FR and NR flags share their split and direction
flags in one place.
"""

from __future__ import annotations


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


def add_nr_dataset_args(parser) -> None:
    """The command-line flags that describe an NR dataset: the score direction override (any source) and the
    columns of a Hub / ``datasets`` dataset. ``nr_dataset_kwargs(args)`` turns them into ``load_nr_dataset``
    keywords."""
    g = parser.add_argument_group("NR dataset (columns: Hub ids, local datasets and csvs; direction: any source)")
    g.add_argument("--image_column", default="image", help="image column")
    g.add_argument("--score_column", default="score",
                   help="subjective score (MOS) column; KonIQ-10k: MOS_zscore (default) or MOS")  # fmt: skip
    _add_split_and_direction_args(g)


def nr_dataset_kwargs(args) -> dict:
    """``load_nr_dataset`` keywords from ``add_nr_dataset_args``' (or ``add_iqa_dataset_args``') flags:
    ``lower_better`` True, False or None (the source decides); a column flag that is None or absent is left to the
    loader's default."""
    columns = _given(args, image_column="image_column", score_column="score_column", split="dataset_split",
                     ref_column="ref_column", ref_id_column="ref_id_column")  # fmt: skip
    return {**columns, "lower_better": _lower_better_flag(args)}


def add_iqa_dataset_args(parser) -> None:
    """The flags of an FR or an NR dataset, declared once (train_iqa.py, which picks the kind by its mode): column
    defaults are None, so ``fr_dataset_kwargs`` / ``nr_dataset_kwargs`` leave each to its loader's default."""
    g = parser.add_argument_group("IQA dataset (columns: Hub ids, local datasets and csvs; direction: any source)")
    g.add_argument("--image_column", default=None, help="(distorted-)image column (default: FR dist_image, NR image)")
    g.add_argument("--ref_column", default=None,
                   help="reference-image column. FR: default ref_image; NR: optional, a KADID-like table's references, "
                        "so that the split by reference keeps each content in one split (without it or "
                        "--ref_id_column an NR table is split by image, with a warning)")  # fmt: skip
    g.add_argument("--score_column", default=None,
                   help="subjective score (MOS) column (default: score; KonIQ-10k: MOS_zscore, or MOS)")  # fmt: skip
    g.add_argument("--ref_id_column", default=None,
                   help="column naming each row's reference image, for the split by reference (FR and NR; "
                        "default: references are told apart by their decoded pixels)")  # fmt: skip
    _add_split_and_direction_args(g)
