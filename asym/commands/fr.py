"""``evaluate.py fr``: full-reference metrics scored against MOS on FR datasets (the paper's Table 4)."""

from __future__ import annotations

import argparse

from asym.core.errors import UserError
from asym.core.flags import int_at_least
from asym.core.processes import evaluation_state, sharded
from asym.iqa.data import add_fr_dataset_args, fr_dataset_kwargs, load_fr_dataset
from asym.iqa.leaderboard import add_image_choice_args, create_scorers, own_split_file, score_leaderboard
from asym.metrics import score_pairs
from asym.reporting.tables import unique_names

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
    state = evaluation_state(args)  # one process unless launched with `accelerate launch`: then each scores a share
    metric_sources = [m for m in args.metrics.split(",") if m]
    dataset_sources = [d for d in args.datasets.split(",") if d]
    if not metric_sources or not dataset_sources:
        raise UserError("--metrics and --datasets must each name at least one entry")
    metric_names = unique_names(metric_sources, "metric")
    source_names = unique_names(dataset_sources, "dataset")  # fails early on a dataset listed twice
    metrics = create_scorers(metric_names, metric_sources, args.device, "fr")  # a bad name fails here, early
    own_splits = [own_split_file(source, metric) for source, metric in zip(metric_sources, metrics)]
    datasets = [load_fr_dataset(source, **fr_dataset_kwargs(args)) for source in dataset_sources]  # all before work
    main = state.is_main_process  # its bar alone is drawn (its share of the items)
    score = sharded(lambda metric, part, desc: score_pairs(metric, part, args.device, desc=desc, progress=main), state)
    return score_leaderboard("metric", metric_names, metrics, own_splits, datasets, source_names,
                             score,
                             args.output_dir, "fr_results", split=args.split, split_file=args.split_file,
                             max_samples=args.max_samples, main=state.is_main_process)  # fmt: skip
