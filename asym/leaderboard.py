"""Leaderboard tables: unique row names, Markdown tables, csv/json files.

Shared by every ``evaluate.py`` table, so that two entries can never collapse into one row and a number computed
under a caveat (a linear PLCC because the logistic fit did not converge) is marked where it is shown.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence

import numpy as np

from .errors import UserError

LINEAR_MARK = "†"  # PLCC computed without the logistic fit (it failed, or too few scores for one)


def unique_names(sources: Sequence[str], what: str = "entry") -> list[str]:
    """Short display names that tell ``sources`` apart: the last path component, extended by parent folders only
    where two would collide (``runs/a/metric``, ``runs/b/metric`` -> ``a/metric``, ``b/metric``).

    Raises:
        UserError: the same source is listed twice.
    """
    parts = [[p for p in os.path.normpath(s).replace("\\", "/").split("/") if p not in ("", ".")] or [s]
             for s in sources]  # fmt: skip
    depth = [1] * len(sources)
    while True:
        names = ["/".join(p[-k:]) for p, k in zip(parts, depth)]
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(name, []).append(i)
        clashes = [group for group in groups.values() if len(group) > 1]
        if not clashes:
            return names
        for group in clashes:
            growable = [i for i in group if depth[i] < len(parts[i])]
            if not growable:
                listed = ", ".join(sources[i] for i in group)
                raise UserError(f"{what} listed twice ({listed}): each must appear once")
            for i in growable:
                depth[i] += 1


def _cell(record: dict) -> str:
    mark = LINEAR_MARK if record.get("plcc_fit") == "linear" else ""
    return f"{record['srcc']:.3f} | {record['plcc']:.3f}{mark}"


def markdown_table(records: list[dict], metrics: list[str], datasets: list[str]) -> str:
    """Metric rows x dataset columns (SRCC / PLCC) plus their averages, like the paper's Table 4.

    A PLCC marked ``†`` is the linear correlation: the logistic fit failed there (no convergence, a local optimum, or
    fewer than 5 scores). A metric that is constant on a dataset shows ``nan``, and so does its average.
    """
    by_key = {(r["metric"], r["dataset"]): r for r in records}
    head = "| Metric | " + " | ".join(f"{d} SRCC | {d} PLCC" for d in datasets) + " | Avg SRCC | Avg PLCC |"
    lines = [head, "|" + " --- |" * (2 * len(datasets) + 3)]
    for m in metrics:
        cells = [by_key[(m, d)] for d in datasets]
        avg = f"{np.mean([c['srcc'] for c in cells]):.3f} | {np.mean([c['plcc'] for c in cells]):.3f}"
        lines.append(f"| {m} | " + " | ".join(_cell(c) for c in cells) + f" | {avg} |")
    if any(r.get("plcc_fit") == "linear" for r in records):
        lines.append(f"\n{LINEAR_MARK} linear PLCC: the 4-parameter logistic fit failed (see the warning printed)")
    if any(math.isnan(r["srcc"]) for r in records):
        lines.append("\nnan: the metric gave the same score to every image of that dataset")
    return "\n".join(lines)


def write_records(records: list[dict], output_dir: str, stem: str) -> None:
    """``<stem>.json`` and ``<stem>.csv`` in ``output_dir`` (created), one row per record."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, f"{stem}.json"), "w") as f:
        json.dump(records, f, indent=2)
    fields = list(dict.fromkeys(key for record in records for key in record))
    with open(os.path.join(output_dir, f"{stem}.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)


__all__ = ["LINEAR_MARK", "markdown_table", "unique_names", "write_records"]
