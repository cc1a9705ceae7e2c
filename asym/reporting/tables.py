"""Leaderboard tables and their files: unique row names, the FR / NR Markdown table, results json / csv.

Shared by every ``evaluate.py`` table, so that two entries can never collapse into one row and a number computed
under a caveat (a linear PLCC because the logistic fit did not converge, a metric whose weights could not be
obtained) is marked where it is shown. ``write_records`` writes a table's records as ``<stem>.json`` / ``.csv``;
``read_records`` reads such a json back, refusing one that is not what evaluate.py wrote.

The tables built on these live beside them: ``asym.iqa.leaderboard`` (scoring FR / NR models on IQA datasets),
``asym.iqa.results`` (train_iqa.py / train_metric.py results.json, the init comparison), ``asym.sr.table`` (the
SR Table 1) and ``asym.robust.table`` (the robust-loss study's table).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence

import numpy as np

from ..core.atomic import write_text
from ..core.errors import UserError, reading

LINEAR_MARK = "†"  # PLCC computed without the logistic fit (it failed, or too few scores for one)
OK = "ok"  # the status of a record with numbers; any other status (``unavailable: <reason>``) has none
MISSING = "n/a"  # how a cell without numbers is shown


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


def _available(record: dict) -> bool:
    """Whether a record has numbers (no ``status``, as fr_results' records, means it has)."""
    return record.get("status", OK) == OK


def _cell(record: dict) -> str:
    if not _available(record):
        return f"{MISSING} | {MISSING}"
    mark = LINEAR_MARK if record.get("plcc_fit") == "linear" else ""
    return f"{record['srcc']:.3f} | {record['plcc']:.3f}{mark}"


def escape_cell(text: str) -> str:
    """``text`` fit for one Markdown table cell: no pipes, no line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown_table(records: list[dict], metrics: list[str], datasets: list[str], row_key: str = "metric") -> str:
    """Metric rows x dataset columns (SRCC / PLCC) plus their averages, like the paper's Table 4.

    A PLCC marked ``†`` is the linear correlation: the logistic fit failed there (no convergence, a local optimum, or
    fewer than 5 scores). A metric that is constant on a dataset shows ``nan``, and so does its average. Records
    with a ``status`` other than ``"ok"`` (``"unavailable: <reason>"``: a pyiqa metric whose weights could not be
    obtained) show ``n/a`` cells, and the table gains a Status column saying why.

    Args:
        records: one dict per (row, dataset) with ``srcc``, ``plcc``, ``plcc_fit`` and optionally ``status``.
        metrics: the row names, in order.
        datasets: the column names, in order.
        row_key: the record field that names the row (``"metric"``, or ``"model"`` for NR tables).
    """
    by_key = {(r[row_key], r["dataset"]): r for r in records}
    with_status = not all(_available(r) for r in records)
    head = f"| {row_key.capitalize()} | " + " | ".join(f"{d} SRCC | {d} PLCC" for d in datasets)
    head += " | Avg SRCC | Avg PLCC |" + (" Status |" if with_status else "")
    lines = [head, "|" + " --- |" * (2 * len(datasets) + 3 + with_status)]
    for m in metrics:
        cells = [by_key[(m, d)] for d in datasets]
        if all(_available(c) for c in cells):
            avg = f"{np.mean([c['srcc'] for c in cells]):.3f} | {np.mean([c['plcc'] for c in cells]):.3f}"
        else:
            avg = f"{MISSING} | {MISSING}"
        line = f"| {escape_cell(m)} | " + " | ".join(_cell(c) for c in cells) + f" | {avg} |"
        if with_status:
            statuses = dict.fromkeys(c.get("status", OK) for c in cells)  # one per row, unless datasets differ
            line += f" {escape_cell('; '.join(statuses))} |"
        lines.append(line)
    shown = [r for r in records if _available(r)]
    if any(r.get("plcc_fit") == "linear" for r in shown):
        lines.append(f"\n{LINEAR_MARK} linear PLCC: the 4-parameter logistic fit failed (see the warning printed)")
    if any(math.isnan(r["srcc"]) for r in shown):
        lines.append("\nnan: the metric gave the same score to every image of that dataset")
    if with_status:
        lines.append(f"\n{MISSING}: no scores, see the Status column (e.g. weights that could not be downloaded)")
    return "\n".join(lines)


def write_records(records: list[dict], output_dir: str, stem: str) -> None:
    """``<stem>.json`` and ``<stem>.csv`` in ``output_dir`` (created), one row per record, each written atomically.

    ``None`` (no number: an unavailable metric) is ``null`` in the json and an empty csv cell."""
    import io

    os.makedirs(output_dir, exist_ok=True)
    write_text(os.path.join(output_dir, f"{stem}.json"), json.dumps(records, indent=2))
    fields = list(dict.fromkeys(key for record in records for key in record))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(records)
    write_text(os.path.join(output_dir, f"{stem}.csv"), buffer.getvalue(), newline="")


def read_records(path: str, what: str, keys: tuple[str, ...], numbers: tuple[str, ...] = ()) -> list[dict]:
    """The records of an evaluate.py results json: each holds ``keys``, all strings but those in ``numbers``, which
    are numbers or null wherever they appear; a UserError naming the file, the record and the first bad field."""
    if not os.path.isfile(path):
        raise UserError(f"{what} {path} does not exist")
    with reading(path, what, "JSON"), open(path, encoding="utf-8") as file:
        records = json.load(file)
    if not isinstance(records, list) or not all(isinstance(r, dict) and all(k in r for k in keys) for r in records):
        raise UserError(f"{path} is not a {what} written by evaluate.py (a list of records with {', '.join(keys)})")
    for i, record in enumerate(records):
        for key in dict.fromkeys((*keys, *numbers)):
            value = record.get(key)
            if key in numbers:
                fine = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
            else:
                fine = isinstance(value, str)
            if not fine:
                kind = "a number or null" if key in numbers else "a string"
                raise UserError(f"{path}, record {i}: {key} must be {kind}, got {value!r} (is it a {what} written "
                                "by evaluate.py?)")  # fmt: skip
    return records


__all__ = [
    "LINEAR_MARK",
    "MISSING",
    "OK",
    "escape_cell",
    "markdown_table",
    "read_records",
    "unique_names",
    "write_records",
]
