"""``evaluate.py sweep`` (Fig. 7): the leaderboard average of SR runs against their adversarial weight."""

from __future__ import annotations

import argparse
import os

from asym.core.errors import UserError
from asym.reporting.figures import plot_sweep
from asym.reporting.tables import unique_names, write_records
from asym.sr.cards import card_disc_backbone, card_loss, read_run_card
from asym.sr.table import check_image_sets, read_sr_results, sr_model_averages

DESCRIPTION = """\
    python evaluate.py sweep --runs runs/adv-0.001,runs/adv-0.005,runs/adv-0.01 \\
        --sr_results results/sweep/sr_results.json --output_dir results/fig7

`sweep` (Fig. 7): the leaderboard average of train_sr.py runs against their card's --lambda_adv, one line per
discriminator backbone (runs without an adversarial term: dashed lines): sweep.png, .csv, .json."""


def register_subcommand(subparsers) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        help="leaderboard average vs the adversarial weight, per discriminator backbone",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("--runs", required=True, help="comma-separated train_sr.py output folders")
    sweep.add_argument("--sr_results", required=True, help="sr_results.json of evaluate.py sr on those runs")
    sweep.set_defaults(run=run)


def run(args) -> list[dict]:
    """Fig. 7: the leaderboard average of SR runs vs their adversarial weight, one line per discriminator backbone."""
    runs = [r for r in args.runs.split(",") if r]
    if not runs:
        raise UserError("--runs must name at least one train_sr.py output folder")
    names = unique_names(runs, "run")
    sr = read_sr_results(args.sr_results)
    check_image_sets([(args.sr_results, sr)])
    averages = sr_model_averages(sr)
    by_source = {os.path.normpath(str(r.get("source", ""))): r["model"] for r in sr}
    points, baselines = [], []
    for run, name in zip(runs, names):
        card = read_run_card(run)
        model = by_source.get(os.path.normpath(run), name if name in averages else None)
        if model not in averages:
            raise UserError(f"{run} has no leaderboard average in {args.sr_results}: run evaluate.py sr on it first")
        loss, weight = card_loss(card) or "", card.get("--lambda_adv")
        backbone = card_disc_backbone(card)
        if "adv" not in loss.split("+") or backbone is None:
            baselines.append({"run": name, "model": model, "average": averages[model]})
            continue
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise UserError(f"{run}: its card records no numeric --lambda_adv ({weight!r})")
        points.append({"run": name, "model": model, "backbone": backbone, "lambda_adv": float(weight),
                       "average": averages[model]})  # fmt: skip
    write_records(points + [{**b, "backbone": None, "lambda_adv": 0.0} for b in baselines], args.output_dir, "sweep")
    path = plot_sweep(points, os.path.join(args.output_dir, "sweep.png"), baselines)
    for p in sorted(points, key=lambda p: (p["backbone"], p["lambda_adv"])):
        print(f"{p['backbone']}: lambda_adv {p['lambda_adv']:g} -> average {p['average']:.3f} ({p['run']})")
    for b in baselines:
        print(f"{b['run']}: no adversarial term -> average {b['average']:.3f} (dashed line)")
    print(f"plot written to {path}; points to sweep.csv / .json")
    return points
