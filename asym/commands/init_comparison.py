"""``evaluate.py init-comparison``: test correlations of training runs by backbone and initialisation (Fig. 5/8)."""

from __future__ import annotations

import argparse
import os

from asym.core.atomic import write_text
from asym.core.errors import UserError
from asym.iqa.results import check_test_sets, init_comparison_records, init_comparison_table, load_results
from asym.reporting.figures import plot_init_comparison
from asym.reporting.tables import write_records

DESCRIPTION = """\
    python evaluate.py init-comparison --results runs/vgg-random,runs/vgg-gan/results.json --output_dir results

`init-comparison`: test SRCC / PLCC of train_iqa.py / train_metric.py runs (their results.json) by backbone and
initialisation (random / pretrained / gan / file), as the paper's Fig. 5/8: init_comparison.png, .csv, .json, .md.
Runs side by side must have been tested on one test set (results.json's test-set fingerprint; the table gives n):
others are refused unless --allow_different_test_sets."""


def register_subcommand(subparsers) -> None:
    init = subparsers.add_parser(
        "init-comparison",
        help="test correlations of training runs by backbone and initialisation",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("--results", required=True,
                      help="comma-separated results.json files of train_iqa.py / train_metric.py runs, or their "
                           "output folders")  # fmt: skip
    init.add_argument("--allow_different_test_sets", action="store_true",
                      help="set side by side runs whose test sets differ (their results.json test-set fingerprints: "
                           "another seed's split, another --max_eval_samples) or cannot be checked (results.json "
                           "without one); refused by default. The table then gives n per cell")  # fmt: skip
    init.set_defaults(run=run)


def run(args) -> list[dict]:
    """Test correlations of training runs by backbone and initialisation: a bar chart and a table per dataset."""
    sources = [r for r in args.results.split(",") if r]
    if not sources:
        raise UserError("--results must name at least one results.json or run folder")
    results = load_results(sources)
    notes = check_test_sets(results, args.allow_different_test_sets)  # runs side by side share one test set
    records = init_comparison_records(results)
    table = "\n\n".join([init_comparison_table(records), *notes])
    write_records(records, args.output_dir, "init_comparison")
    write_text(os.path.join(args.output_dir, "init_comparison.md"), table + "\n")
    path = plot_init_comparison(records, os.path.join(args.output_dir, "init_comparison.png"))
    print(table)
    print(f"\nchart written to {path}; tables to init_comparison.csv / .json / .md")
    return records
