"""Leaderboard tables: unique row names, Markdown tables, csv/json files, and the results of training runs.

Shared by every ``evaluate.py`` table, so that two entries can never collapse into one row and a number computed
under a caveat (a linear PLCC because the logistic fit did not converge, a metric whose weights could not be
obtained) is marked where it is shown.

``init_label`` names a backbone's starting weights (random / pretrained / gan / file) from its provenance string;
``load_results`` reads the ``results.json`` files that train_iqa.py and train_metric.py write, and
``init_comparison_table`` sets their test correlations side by side per initialisation (the paper's Fig. 5/8).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence

import numpy as np

from .atomic import write_text
from .errors import UserError, reading

LINEAR_MARK = "†"  # PLCC computed without the logistic fit (it failed, or too few scores for one)
OK = "ok"  # the status of a record with numbers; any other status (``unavailable: <reason>``) has none
MISSING = "n/a"  # how a cell without numbers is shown
INITS = ("random", "pretrained", "gan", "file")  # the starting weights compared by init-comparison, in this order
RESULT_FIELDS = ("script", "mode", "backbone", "init", "dataset", "test")  # what every results.json must hold


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


def _escape(text: str) -> str:
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
        line = f"| {_escape(m)} | " + " | ".join(_cell(c) for c in cells) + f" | {avg} |"
        if with_status:
            statuses = dict.fromkeys(c.get("status", OK) for c in cells)  # one per row, unless datasets differ
            line += f" {_escape('; '.join(statuses))} |"
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


# --- Results of training runs: which initialisation did best --------------------------------------------------


def init_label(weights_source: str) -> str:
    """The initialisation a backbone's ``weights_source`` stands for: ``random``, ``pretrained``, ``gan`` or ``file``.

    ``random`` and ``random (pretrained unavailable)`` are random; ``pretrained`` is ImageNet; ``gan:<run> (...)`` a
    GAN discriminator's backbone; a reloaded model's ``stored in <folder>, from <origin>`` is what ``origin`` is;
    anything else (a weights file, a Hub id, a stored model without recorded origin) is ``file``. The train scripts
    record it as ``init`` in results.json, which is what init-comparison groups by.
    """
    source = str(weights_source).strip()
    if source.startswith("stored in ") and ", from " in source:
        source = source.split(", from ", 1)[1].strip()
    if source == "random" or source.startswith("random ("):
        return "random"
    if source == "pretrained":
        return "pretrained"
    if source.startswith("gan:"):
        return "gan"
    return "file"


def _results_path(source: str) -> str:
    """The results.json that ``source`` (the file, or the run folder holding it) names; a UserError if none."""
    path = os.path.join(source, "results.json") if os.path.isdir(source) else source
    if not os.path.isfile(path):
        where = f"{source} holds no results.json" if os.path.isdir(source) else f"{source} does not exist"
        raise UserError(f"--results: {where} (pass the results.json of a train_iqa.py / train_metric.py run, or its "
                        "output folder)")  # fmt: skip
    return path


def load_results(sources: Sequence[str]) -> list[dict]:
    """The results.json files of train_iqa.py / train_metric.py runs (files or the folders holding them), each with
    ``path`` added and ``init`` filled in from ``weights_source`` where a file lacks it.

    Raises:
        UserError: a missing file, one that is not a results.json (unparsable, or without the fields ``script``,
            ``mode``, ``backbone``, ``init`` or ``weights_source``, ``dataset``, ``test`` with ``srcc`` and ``plcc``),
            an unknown ``init``, or two runs with one (dataset, mode, backbone, init), naming both.
    """
    results, seen = [], {}
    for source in sources:
        path = _results_path(source)
        with reading(path, "results file"), open(path, encoding="utf-8") as f:
            result = json.load(f)
        if isinstance(result, dict) and not result.get("init") and isinstance(result.get("weights_source"), str):
            result["init"] = init_label(result["weights_source"])
        missing = [k for k in RESULT_FIELDS if not isinstance(result, dict) or k not in result]
        test = result.get("test") if isinstance(result, dict) else None
        numbers = isinstance(test, dict) and all(isinstance(test.get(k), (int, float)) for k in ("srcc", "plcc"))
        if missing or not numbers:
            what = f"no {', '.join(missing)}" if missing else "no numeric test srcc / plcc"
            raise UserError(f"{path} is not a results.json written by train_iqa.py / train_metric.py ({what})")
        if result["init"] not in INITS:
            raise UserError(f"{path}: unknown init {result['init']!r} (expected one of {', '.join(INITS)})")
        key = tuple(str(result[k]) for k in ("dataset", "mode", "backbone", "init"))
        if key in seen:
            raise UserError(f"{seen[key]} and {path} are both {key[2]} / {key[3]} init / {key[1].upper()} on "
                            f"{key[0]}: pass one run per (dataset, mode, backbone, init)")  # fmt: skip
        seen[key] = path
        results.append({**result, "path": path})
    return results


def init_comparison_records(results: list[dict]) -> list[dict]:
    """One flat record per run (dataset, mode, backbone, init, then the test srcc, plcc, krcc, n, and the file),
    sorted by dataset, mode, backbone (in order of appearance) and init (``INITS`` order)."""
    backbones = list(dict.fromkeys(r["backbone"] for r in results))
    order = sorted(results, key=lambda r: (str(r["dataset"]), str(r["mode"]), backbones.index(r["backbone"]),
                                           INITS.index(r["init"])))  # fmt: skip
    return [{"dataset": r["dataset"], "mode": r["mode"], "backbone": r["backbone"], "init": r["init"],
             **{k: r["test"].get(k) for k in ("srcc", "plcc", "krcc", "n")}, "results": r["path"]}
            for r in order]  # fmt: skip


def init_comparison_table(records: list[dict]) -> str:
    """Markdown: per (dataset, mode) a table of backbone rows x init columns (test SRCC / PLCC), ``n/a`` where a
    backbone was not run from that init."""
    inits = [i for i in INITS if any(r["init"] == i for r in records)]
    sections = []
    for dataset, mode in dict.fromkeys((r["dataset"], r["mode"]) for r in records):
        group = [r for r in records if (r["dataset"], r["mode"]) == (dataset, mode)]
        by_key = {(r["backbone"], r["init"]): r for r in group}
        lines = [f"### {dataset} ({str(mode).upper()}), test set",
                 "",
                 "| Backbone | " + " | ".join(f"{i} SRCC | {i} PLCC" for i in inits) + " |",
                 "|" + " --- |" * (2 * len(inits) + 1)]  # fmt: skip
        for backbone in dict.fromkeys(r["backbone"] for r in group):
            cells = [by_key.get((backbone, i)) for i in inits]
            numbers = [f"{c['srcc']:.3f} | {c['plcc']:.3f}" if c else f"{MISSING} | {MISSING}" for c in cells]
            lines.append(f"| {_escape(backbone)} | " + " | ".join(numbers) + " |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


__all__ = [
    "INITS",
    "LINEAR_MARK",
    "init_comparison_records",
    "init_comparison_table",
    "init_label",
    "load_results",
    "markdown_table",
    "unique_names",
    "write_records",
    "write_text",
]
