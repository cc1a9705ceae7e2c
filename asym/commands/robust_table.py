"""``evaluate.py robust-table``: the robust-loss study's table, SR metrics by loss and feature robustness."""

from __future__ import annotations

import argparse
import os

from asym.core.atomic import write_text
from asym.core.errors import UserError
from asym.reporting.tables import write_records
from asym.robust.table import STUDY_TERMS, robust_table, robust_table_records, select_study_records, study_columns
from asym.sr.table import check_image_sets, read_sr_results

DESCRIPTION = """\
    python evaluate.py robust-table --sr_results results/enhancenet/sr_results.json --output_dir results/robust

`robust-table` (the robust-loss study's table): sr_results.json files of `sr` runs (uqi / ifc: asym.metrics.fidelity, Y
channel, --scale border cropped, as psnr / ssim), their models grouped by the card's --loss in the study's letters
(mse E, feat P, texture T) and whether its card's --feat_weights are robust by their own card (recorded by `sr` as
feat_robust: yes for a train_robust.py output trained with PGD, no for standard weights, unknown where the weights
say neither): each metric averaged over a group's runs, then over the datasets; files that scored one test set on
different images are refused, naming both. robust_table.md / .csv / .json."""


def register_subcommand(subparsers) -> None:
    table = subparsers.add_parser(
        "robust-table",
        help="the robust-loss study's table: SR metrics by loss and robustness",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    table.add_argument(
        "--sr_results",
        required=True,
        action="append",
        help="sr_results.json of evaluate.py sr (comma-separated or repeated: several runs / datasets)",
    )
    table.add_argument("--metric", action="append", default=[], metavar="COLUMN=NAME",
                       help="the sr_results metric that fills a column, e.g. R-LPIPS=lpips-robust (repeatable; "
                            "default: psnr, ssim, uqi, ifc, gmsd, lpips, rlpips)")  # fmt: skip
    table.set_defaults(run=run)


def run(args) -> list[dict]:
    """The robust-loss study's table: SR metrics of its runs, averaged by (loss letters, robust features)."""
    files = [f for entry in args.sr_results for f in entry.split(",") if f]
    if not files:
        raise UserError("--sr_results must name at least one sr_results.json")
    read = [(path, read_sr_results(path)) for path in files]
    check_image_sets(read)  # one image set per test set, across all the files
    records, left_out, unknown = select_study_records(read)
    for model, why in left_out.items():
        print(f"{model}: {why}; left out")
    for model, why in unknown.items():
        print(f"{model}: robustness of its feature weights unknown ({why}); its row says unknown")
    if not records:
        raise UserError(f"no model in {', '.join(files)} was trained with the study's losses "
                        f"({'+'.join(STUDY_TERMS)} in train_sr.py --loss)")  # fmt: skip
    columns = study_columns(args.metric, list(dict.fromkeys(r["metric"] for r in records)))
    rows, notes = robust_table_records(records, columns)
    text = robust_table(rows, columns, notes)
    write_records(rows, args.output_dir, "robust_table")
    write_text(os.path.join(args.output_dir, "robust_table.md"), text + "\n")
    print(text)
    return rows
