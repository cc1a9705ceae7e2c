"""The SR leaderboard's table (the paper's Table 1) and what is read back from its sr_results.json.

``sr_table`` lays one dataset's records out as Table 1 (a row per metric, a column per model grouped by loss, Average
/ Std rows from ``sr_summary``); ``sr_model_averages`` gives each model's leaderboard average over the datasets (what
Fig. 3 and Fig. 7 plot); ``read_sr_results`` reads an sr_results.json back and ``check_image_sets`` refuses to
combine records made on different images of one test set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..core.errors import UserError
from ..reporting.tables import MISSING, OK, escape_cell, read_records

REFERENCE = "n/a: reference"  # the status of the ``hr`` source on a full-reference metric: it is the reference
SR_KEYS = ("model", "metric", "dataset", "status")  # what every sr_results.json record names (strings)
SR_NUMBERS = ("score", "score_norm")  # its numbers (or null)


def read_sr_results(path: str) -> list[dict]:
    """The records of an sr_results.json written by evaluate.py sr (``read_records``: a UserError naming the file and
    the first bad record otherwise)."""
    return read_records(path, "sr_results.json", SR_KEYS, SR_NUMBERS)


def record_number(record: dict, normalised: bool) -> float | None:
    """The number a record shows: its ``score_norm`` if ``normalised`` (None where it has none), else ``score``."""
    if record.get("status", OK) != OK:
        return None
    value = record.get("score_norm") if normalised else record.get("score")
    return None if value is None else float(value)


def sr_summary(records: list[dict], models: list[str], metrics: list[str]) -> dict:
    """The Average and Std rows of an SR table (one dataset's records), per model.

    The basis is the metrics shown normalised (1..100). Without any, there is no Average: raw means differ in scale
    and direction (PSNR in dB, higher is better; PIQE 0..100, lower is better), so their mean would be a number
    without meaning, and ``average`` / ``std`` are None. A model's Average is the mean, its Std the population
    standard deviation (``np.std``, ddof 0), of the basis metrics' numbers in its column; cells without a number
    (an unavailable metric, the reference on an FR metric) are skipped and ``partial`` lists the models where that
    happened.

    Returns:
        ``{"normalised": bool, "basis": [metric, ...], "average": {model: float | None}, "std": {...},
        "partial": [model, ...]}``.
    """
    by_key = {(r["model"], r["metric"]): r for r in records}
    normalised = any(r.get("score_norm") is not None for r in records)
    basis = [m for m in metrics if normalised and any(record_number(by_key[(x, m)], True) is not None for x in models
                                                      if (x, m) in by_key)]  # fmt: skip
    average, std, partial = {}, {}, []
    for model in models:
        values = [record_number(by_key[(model, m)], normalised) for m in basis if (model, m) in by_key]
        shown = [v for v in values if v is not None]
        if basis and len(shown) < len(basis):
            partial.append(model)
        average[model] = float(np.mean(shown)) if shown else None
        std[model] = float(np.std(shown)) if shown else None
    return {"normalised": normalised, "basis": basis, "average": average, "std": std, "partial": partial}


def check_image_sets(files: Sequence[tuple[str, list[dict]]]) -> None:
    """Refuse to combine sr_results records made on different images of one test set.

    ``files`` are (path, records) of sr_results.json files; every record carries the number of images scored
    (``images``) and their ``fingerprint`` (``asym.sr.output_cache.fingerprint``), which evaluate.py sr writes. Two
    records of one dataset name must share both, whichever files they come from: an average over runs scored with
    ``--max_images 1`` and 4, or before and after a test folder changed, would mix different images silently.

    Raises:
        UserError: a record without the two fields (a file written before evaluate.py sr recorded them: re-run it),
            or two image sets for one dataset, naming both files and their image counts.
    """
    seen: dict[str, tuple[object, object, str]] = {}
    for path, records in files:
        for r in records:
            if "images" not in r or "fingerprint" not in r:
                raise UserError(f"{path} was written before evaluate.py sr recorded which images it scored "
                                "(images, fingerprint): run evaluate.py sr on it again (its cached outputs make that "
                                "quick)")  # fmt: skip
            dataset, images, fingerprint = r["dataset"], r["images"], r["fingerprint"]
            first = seen.setdefault(dataset, (images, fingerprint, path))
            if first[:2] != (images, fingerprint):
                raise UserError(f"{dataset} was scored on different images in {first[2]} ({first[0]} images, "
                                f"fingerprint {first[1]}) and in {path} ({images} images, fingerprint "
                                f"{fingerprint}): evaluate every model on the same images (the same test set and "
                                "--max_images)")  # fmt: skip


def sr_model_averages(records: list[dict]) -> dict[str, float]:
    """Each model's leaderboard average over every dataset of an sr_results.json (the mean of its per-dataset
    ``sr_summary`` Average); models without one are left out."""
    out: dict[str, list[float]] = {}
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        group = [r for r in records if r["dataset"] == dataset]
        models = list(dict.fromkeys(r["model"] for r in group))
        summary = sr_summary(group, models, list(dict.fromkeys(r["metric"] for r in group)))
        for model, value in summary["average"].items():
            if value is not None:
                out.setdefault(model, []).append(value)
    return {model: float(np.mean(values)) for model, values in out.items()}


def format_sr_value(value: float | None, digits: int = 2) -> str:
    """A table cell's number: ``n/a`` for None, ``inf``, else ``digits`` decimals (4 below 1 at 2: SSIM-like)."""
    if value is None:
        return MISSING
    if math.isinf(value):
        return "inf"
    return f"{value:.4f}" if digits == 2 and abs(value) < 1 else f"{value:.{digits}f}"  # SSIM-like: 4 decimals


L1_LOSS = "rec"  # the paper's stage 1 (L1 only): its own "l1" column, outside the loss-setting groups


def sr_table(records: list[dict], models: list[str], metrics: list[str], losses: dict[str, str | None],
             kinds: dict[str, str]) -> str:  # fmt: skip
    """Markdown like the paper's Table 1 for one dataset: a row per metric, a column per model, then Average / Std.

    Trained models come first, grouped by their loss setting (``losses``: the card's ``--loss``; the header says
    ``name [loss]``), each group of two or more followed by a ``Std. [loss]`` column (population std across that
    group's models, as the paper's Std.; empty in the Std row, where it would be a std of stds), then the stage-1
    models (``--loss rec``: the paper's ``l1`` column), ``bicubic`` and the reference (``Ref.``: the ``hr`` source).
    A normalised metric has two rows: ``(1..100)``, the mean of the per-image normalised scores (``score_norm``, what
    Average / Std use), and ``(raw mean)`` below it, the mean of the raw scores (``score``): ``N`` is non-linear, so
    the first is not ``N`` of the second and the two can order models differently. Other metrics show the raw mean.
    ``n/a`` marks a cell without numbers (its status in sr_results.json says why, listed below the table).
    """
    by_key = {(r["model"], r["metric"]): r for r in records}
    trained = [m for m in models if kinds.get(m) not in ("bicubic", "hr") and losses.get(m) != L1_LOSS]
    groups = list(dict.fromkeys(losses.get(m) for m in trained))
    columns: list[tuple[str, list[str] | str]] = []  # (header, model name or the models of a Std. column)
    for loss in groups:
        members = [m for m in trained if losses.get(m) == loss]
        columns += [(f"{m} [{loss}]" if loss else m, m) for m in members]
        if len(members) > 1:
            columns.append((f"Std. [{loss or 'no loss recorded'}]", members))
    columns += [(f"l1 ({m})", m) for m in models if kinds.get(m) not in ("bicubic", "hr") and losses.get(m) == L1_LOSS]
    columns += [("bicubic" if kinds[m] == "bicubic" else f"Ref. ({m})", m) for m in models
                if kinds.get(m) in ("bicubic", "hr")]  # fmt: skip
    summary = sr_summary(records, models, metrics)

    def number(model: str, metric: str, normalised: bool) -> float | None:
        record = by_key.get((model, metric))
        return None if record is None else record_number(record, normalised)

    def row(label: str, value, spread: bool = True) -> str:
        cells = []
        for _, target in columns:
            if isinstance(target, list) and not spread:
                cells.append("–")
            elif isinstance(target, list):
                values = [value(m) for m in target]
                ok = [v for v in values if v is not None and math.isfinite(v)]
                cells.append(format_sr_value(float(np.std(ok)) if len(ok) == len(values) else None, 3))
            else:
                cells.append(format_sr_value(value(target)))
        return f"| {escape_cell(label)} | " + " | ".join(cells) + " |"

    lines = ["| Metric | " + " | ".join(escape_cell(h) for h, _ in columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    shown_normalised = []
    for metric in metrics:
        statuses = {r.get("status", OK) for r in records if r["metric"] == metric}
        unavailable = " (unavailable)" if statuses and all(s.startswith("unavailable") for s in statuses) else ""
        if any(r.get("score_norm") is not None for r in records if r["metric"] == metric):
            shown_normalised.append(metric)
            lines.append(row(f"{metric} (1..100)", lambda m, metric=metric: number(m, metric, True)))
            lines.append(row(f"{metric} (raw mean)", lambda m, metric=metric: number(m, metric, False)))
        else:
            lines.append(row(f"{metric} (raw){unavailable}", lambda m, metric=metric: number(m, metric, False)))
    lines.append(row("Average", lambda m: summary["average"].get(m)))
    lines.append(row("Std", lambda m: summary["std"].get(m), spread=False))
    basis = ", ".join(summary["basis"]) or "none"
    if summary["normalised"]:
        lines.append(f"\nAverage / Std: mean and population std across the normalised (1..100) metrics ({basis}).")
    else:
        lines.append("\nAverage / Std: not computed: no metric is normalised to 1..100, and raw means differ in "
                     "scale and direction (pass --normalisation or --calibration_dataset).")  # fmt: skip
    if summary["partial"]:
        lines.append(f"Average / Std of {', '.join(summary['partial'])} skip the cells shown n/a.")
    if shown_normalised:
        lines.append("(1..100): the mean over images of each image's normalised score (score_norm), not the "
                     "normalised mean score: the map is non-linear, so two models can rank differently on it and on "
                     "the raw mean (score) in the row below it.")  # fmt: skip
    if any(isinstance(target, list) for _, target in columns):
        lines.append("Std. [loss] columns: population std across that loss setting's models, per row (none in the "
                     "Std row: a std of stds).")  # fmt: skip
    unavailable = sorted({f"{r['metric']}: {r['status']}" for r in records if str(r.get("status")).startswith("unav")})
    failed = [f"{r['metric']} of {r['model']}: {r['status']}" for r in records
              if r.get("status", OK) not in (OK, REFERENCE) and not str(r["status"]).startswith("unav")]  # fmt: skip
    if unavailable or failed:
        lines.append(f"{MISSING}: " + "; ".join(unavailable + failed))
    if any(r.get("status") == REFERENCE for r in records):
        lines.append(f"{MISSING} in Ref.: a full-reference metric of the reference against itself ({REFERENCE}).")
    return "\n".join(lines)


__all__ = [
    "REFERENCE",
    "SR_KEYS",
    "SR_NUMBERS",
    "check_image_sets",
    "format_sr_value",
    "read_sr_results",
    "record_number",
    "sr_model_averages",
    "sr_summary",
    "sr_table",
]
