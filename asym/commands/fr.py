"""``evaluate.py fr``: full-reference metrics scored against MOS on FR datasets (the paper's Table 4)."""

from __future__ import annotations

import argparse

from asym.core.flags import int_at_least
from asym.iqa.data import add_fr_dataset_args
from asym.iqa.leaderboard import add_image_choice_args, iqa_leaderboard

DESCRIPTION = """\
    python evaluate.py fr --metrics psnr,ssim,output/metric --datasets builtin --output_dir results

`fr`: full-reference metrics (asym.list_metrics() names, trained asym metrics) scored against MOS on FR datasets
(builtin, official layouts such as KADID-10k / TID2013, Hub ids): SRCC, KRCC and PLCC after the 4-parameter logistic
fit; prints a Markdown table (the paper's Table 4) and writes fr_results.csv and fr_results.json. A metric that
cannot be built here (its weights offline) is reported `unavailable: <reason>` and the others are still scored. A
train_metric.py metric is scored on its own test split where the split.json beside it was made for the dataset (as
`nr`)."""


def register_subcommand(subparsers) -> None:
    fr = subparsers.add_parser(
        "fr",
        help="score FR metrics against MOS on FR datasets",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fr.add_argument("--metrics", required=True, help="comma-separated pyiqa names and/or asym metric folders/Hub ids")
    fr.add_argument("--datasets", default="builtin", help="comma-separated: builtin, IQA folders, Hub ids")
    fr.add_argument("--max_samples", type=int_at_least(3), default=None,
                    help="score at most N pairs per dataset, evenly spaced (quick runs)")  # fmt: skip
    add_image_choice_args(fr, "a train_metric.py metric")
    add_fr_dataset_args(fr)  # columns of Hub / datasets sources, the same for each
    fr.set_defaults(run=run)


def run(args) -> list[dict]:
    """The FR leaderboard (Table 4): every metric on every dataset. A train_metric.py metric is scored on its own test
    split where its split.json was made for the dataset (``--split``), so its training images never score it."""
    return iqa_leaderboard(args, "fr")
