"""``evaluate.py correlation`` (Fig. 3): does a backbone that assesses better also train better SR models?"""

from __future__ import annotations

import argparse
import os

from asym.core.errors import UserError
from asym.reporting.figures import plot_correlation
from asym.reporting.tables import OK, read_records, write_records
from asym.sr.cards import metric_for_backbone
from asym.sr.table import check_image_sets, read_sr_results, sr_model_averages

DESCRIPTION = """\
    python evaluate.py correlation --fr_results results/table4/fr_results.json \\
        --sr_results results/table1/sr_results.json --output_dir results/fig3

`correlation` (Fig. 3): each FR metric's SRCC (mean over fr_results.json datasets) against the leaderboard average of
the SR model trained with that backbone as perceptual loss (its card's backbone equals the metric name or ends it
after -, _ or /; or --pairs metric=model,...), one point per (backbone, loss setting): correlation.png, .csv, .json,
and Spearman's rho per loss setting (none for n < 3)."""


def register_subcommand(subparsers) -> None:
    corr = subparsers.add_parser(
        "correlation",
        help="assessment SRCC of a backbone vs its SR loss's leaderboard average",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    corr.add_argument("--fr_results", required=True, help="fr_results.json of evaluate.py fr")
    corr.add_argument("--sr_results", required=True, help="sr_results.json of evaluate.py sr")
    corr.add_argument("--pairs", default=None,
                      help="comma-separated metric=model pairs (names as in the two files); default: matched by "
                           "the SR models' perceptual loss backbone")  # fmt: skip
    corr.set_defaults(run=run)


def run(args) -> list[dict]:
    """Fig. 3: does a backbone that assesses better (FR SRCC) also train better SR models (leaderboard average)?"""
    import numpy as np
    from scipy.stats import spearmanr

    fr = read_records(args.fr_results, "fr_results.json", ("metric", "dataset", "srcc"), ("srcc",))
    sr = read_sr_results(args.sr_results)
    check_image_sets([(args.sr_results, sr)])
    srcc = {}
    for metric in dict.fromkeys(r["metric"] for r in fr):
        values = [r["srcc"] for r in fr if r["metric"] == metric and r.get("status", OK) == OK]
        if values and all(v is not None for v in values):
            srcc[metric] = float(np.mean(values))
    averages = sr_model_averages(sr)
    info = {r["model"]: r for r in sr}
    if args.pairs:
        pairs = []
        for entry in (e for e in args.pairs.split(",") if e):
            metric, sep, model = entry.partition("=")
            if not sep or metric not in srcc or model not in info:
                raise UserError(f"--pairs {entry!r}: expected metric=model, a metric of {args.fr_results} "
                                f"({', '.join(srcc)}), a model of {args.sr_results} ({', '.join(info)})")  # fmt: skip
            pairs.append((metric, model))
    else:
        pairs = []
        for model, record in info.items():
            backbone = record.get("per_backbone")
            metric = metric_for_backbone(backbone, list(srcc)) if backbone else None
            if metric is None:
                print(f"{model}: no perceptual loss backbone with an FR metric of that name; left out")
                continue
            pairs.append((metric, model))
    points, seen = [], {}
    for metric, model in pairs:
        if model not in averages:
            print(f"{model}: no leaderboard average (no available metric); left out")
            continue
        loss = info[model].get("loss") or "unknown"
        key = (metric, loss)
        if key in seen:
            raise UserError(f"{seen[key]} and {model} both pair {metric} with loss {loss}: pass --pairs to choose one")
        seen[key] = model
        points.append({"backbone": info[model].get("per_backbone") or metric, "metric": metric, "model": model,
                       "loss": loss, "srcc": srcc[metric], "average": averages[model]})  # fmt: skip
    if not points:
        raise UserError("no (FR metric, SR model) pair found: pass --pairs metric=model,...")
    write_records(points, args.output_dir, "correlation")
    path = plot_correlation(points, os.path.join(args.output_dir, "correlation.png"))
    for loss in dict.fromkeys(p["loss"] for p in points):
        group = [p for p in points if p["loss"] == loss]
        if len(group) < 3:
            print(f"{loss}: n = {len(group)} backbones; a Spearman correlation needs at least 3, none reported")
            continue
        rho = spearmanr([p["srcc"] for p in group], [p["average"] for p in group]).statistic
        print(f"{loss}: Spearman {rho:.3f} between assessment SRCC and SR leaderboard average (n = {len(group)})")
    print(f"scatter written to {path}; points to correlation.csv / .json")
    return points
