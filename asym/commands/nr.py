"""``evaluate.py nr``: no-reference quality models scored against MOS on NR datasets."""

from __future__ import annotations

import argparse

from asym.core.flags import int_at_least
from asym.iqa.data import add_nr_dataset_args
from asym.iqa.leaderboard import add_image_choice_args, iqa_leaderboard

DESCRIPTION = """\
    python evaluate.py nr --models output/iqa,maniqa,musiq --datasets builtin,data/koniq10k --output_dir results

`nr`: no-reference quality models (train_iqa.py outputs or pyiqa NR names; pyiqa's own direction, oriented so that
higher is better) on NR datasets (builtin, KonIQ-10k, FR layouts read as NR, pyiqa NR csvs, Hub ids): the same
table, nr_results.csv and nr_results.json. A train_iqa.py model is scored on its own test split where the split.json
beside it was made for the dataset (else, and for pyiqa models, on all images); each record and the lines under the
table say which images and how many (`--split`, `--split_file` choose). A pyiqa metric whose weights cannot be
obtained is reported as `unavailable: <reason>` and the rest of the table is still produced."""


def register_subcommand(subparsers) -> None:
    nr = subparsers.add_parser(
        "nr",
        help="score NR quality models against MOS on NR datasets",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    nr.add_argument("--models", required=True, help="comma-separated train_iqa.py outputs and/or pyiqa NR names")
    nr.add_argument("--datasets", default="builtin", help="comma-separated: builtin, IQA folders, csvs, Hub ids")
    nr.add_argument("--max_samples", type=int_at_least(3), default=None,
                    help="score at most N images per dataset, evenly spaced (quick runs)")  # fmt: skip
    add_image_choice_args(nr, "a train_iqa.py model")
    add_nr_dataset_args(nr)  # columns of Hub / datasets sources, the same for each
    nr.set_defaults(run=run)


def run(args) -> list[dict]:
    """The NR leaderboard: every model on every dataset, unavailable pyiqa metrics reported in place of numbers. A
    trained model is scored on its own test split where its split.json was made for the dataset (``--split``)."""
    return iqa_leaderboard(args, "nr")
