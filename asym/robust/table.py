"""The robust-loss study's table (Uelwer et al.: SR losses on standard or adversarially robust VGG features).

``study_loss`` names a train_sr.py ``--loss`` in the study's letters (mse E, feat P, texture T); ``robust_label``
the row of a run whose feature-loss weights are or are not adversarially trained (``asym.sr.cards``'s
``feat_weights_robustness`` reads that from the weights' own card); ``select_study_records`` keeps the sr_results
records of the study's runs, ``study_columns`` picks the
metric of each column, and ``robust_table_records`` / ``robust_table`` lay them out as the study's table: a row per
(loss letters, robust features), each metric averaged over the row's runs, then over the datasets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..core.errors import UserError
from ..reporting.tables import MISSING, OK, escape_cell
from ..sr.cards import feat_weights_robustness
from ..sr.table import format_sr_value, record_number

STUDY_TERMS = {"mse": "E", "feat": "P", "texture": "T"}  # train_sr.py --loss terms -> the study's letters, in order


STUDY_COLUMNS = (
    ("PSNR", ("psnr",), False), ("SSIM", ("ssim",), False), ("UQI", ("uqi",), False), ("IFC", ("ifc",), False),
    ("GMSD", ("gmsd",), True), ("LPIPS", ("lpips", "lpips-vgg"), True),
    ("R-LPIPS", ("rlpips", "r-lpips", "r_lpips"), True),
)  # fmt: skip


def study_loss(loss: str | None) -> str | None:
    """The study's name of a ``--loss`` (``mse+feat`` -> ``EP``, letters in E, P, T order), None where a term is not
    one of the study's (``rec``, ``per``, ``adv``) or there is none."""
    terms = [t.strip() for t in str(loss or "").split("+") if t.strip()]
    if not terms or any(t not in STUDY_TERMS for t in terms):
        return None
    letters = {STUDY_TERMS[t] for t in terms}
    return "".join(letter for letter in STUDY_TERMS.values() if letter in letters)


ROBUST = ("no", "yes", "unknown")  # the Robust column's values (and its row order); None: no feature loss


def robust_label(letters: str, feat_weights: str | None) -> str | None:
    """The table's Robust column: ``None`` for ``E`` (no feature loss), else ``feat_weights_robustness``'s verdict
    (``yes``, ``no`` or ``unknown``)."""
    if letters == "E":
        return None
    return feat_weights_robustness(feat_weights)[0]


def _group_order(key: tuple[str, str | None]) -> tuple:
    letters, robust = key
    return len(letters), ["EPT".index(c) for c in letters], ROBUST.index(robust) if robust in ROBUST else -1


def select_study_records(files: Sequence[tuple[str, list[dict]]]) -> tuple[list[dict], dict[str, str], dict[str, str]]:
    """The records of the study's runs among ``files`` ((path, sr_results records)), each with ``run`` (what
    identifies its model across files), ``letters`` (``study_loss``) and ``robust`` (its ``feat_robust``; None for E).

    Returns:
        (records, left out: {model: why}, for models not trained with the study's losses or on a GAN
        discriminator's features, unknown: {model: why}, for models whose feature weights record no robustness).

    Raises:
        UserError: a file written before evaluate.py sr recorded feat_weights / feat_robust, a run scored by one
            metric on one dataset in two files, or a feat_robust value that is not one of ``ROBUST``.
    """
    records, seen, left_out, unknown = [], {}, {}, {}
    for path, file_records in files:
        for r in file_records:
            run = os.path.normpath(str(r.get("source") or r["model"]))
            letters = study_loss(r.get("loss"))
            if letters is None:
                loss = f"loss {r['loss']}" if r.get("loss") else "no loss recorded"
                left_out.setdefault(r["model"], f"{loss}, not one of the study's ({', '.join(STUDY_TERMS)})")
                continue
            if letters != "E" and not {"feat_weights", "feat_robust"} <= set(r):
                raise UserError(f"{path} was written before evaluate.py sr recorded feat_weights and their robustness "
                                "(feat_robust): run evaluate.py sr on it again (its cached outputs make that "
                                "quick)")  # fmt: skip
            if letters != "E" and str(r.get("feat_weights") or "").startswith("gan:"):
                left_out.setdefault(r["model"], f"features {r['feat_weights']} (a GAN discriminator's: neither "
                                                "standard nor robust)")  # fmt: skip
                continue
            key = (run, r["metric"], r["dataset"])
            if key in seen:
                raise UserError(f"{run} is scored by {r['metric']} on {r['dataset']} in both {seen[key]} and {path}: "
                                "pass each evaluation once")  # fmt: skip
            seen[key] = path
            robust = None if letters == "E" else r["feat_robust"]
            if letters != "E" and robust not in ROBUST:
                raise UserError(f"{path}: {r['model']} has feat_robust {robust!r}, not one of {', '.join(ROBUST)}")
            if robust == "unknown":
                unknown.setdefault(r["model"], r.get("feat_robust_why") or "no reason recorded")
            records.append({**r, "run": run, "letters": letters, "robust": robust})
    return records, left_out, unknown


def robust_table_records(records: list[dict], columns: dict[str, str]) -> tuple[list[dict], list[str]]:
    """The study's table from sr_results records of the study's runs: a row per (loss letters, robust), each column
    the mean over datasets of the mean over that row's runs.

    Args:
        records: sr_results.json records, each with ``run`` (what identifies the model across files), ``model``,
            ``metric``, ``dataset``, ``status``, ``score``, ``letters`` (``study_loss``) and ``robust``
            (``robust_label``).
        columns: {column header: the sr_results metric that fills it}.

    Returns:
        (rows, notes): one dict per row (``loss``, ``robust``, ``runs``, ``models``, ``datasets``, then each column
        header: its number, or None where any run lacks an available score on any dataset), and the notes saying why
        cells are empty.
    """
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    groups: dict[tuple[str, str | None], dict[str, str]] = {}
    for r in records:
        groups.setdefault((r["letters"], r["robust"]), {})[r["run"]] = r["model"]
    by_key = {(r["run"], r["metric"], r["dataset"]): r for r in records}
    notes = []
    for header, metric in columns.items():  # a column without any number: one note instead of one per row
        statuses = list(dict.fromkeys(r.get("status", OK) for r in records if r["metric"] == metric))
        if not statuses:
            notes.append(f"{header}: no metric {metric!r} in the sr_results files")
        elif OK not in statuses:
            notes.append(f"{header} ({metric}): {'; '.join(statuses)}")
    whole = {m for m in columns.values() if any(r["metric"] == m and r.get("status", OK) == OK for r in records)}
    rows = []
    for key in sorted(groups, key=_group_order):
        runs = groups[key]
        row = {"loss": key[0], "robust": key[1], "runs": len(runs), "models": "; ".join(runs.values()),
               "datasets": "; ".join(datasets)}  # fmt: skip
        for header, metric in columns.items():
            means, missing = [], []
            for dataset in datasets:
                values = []
                for run, name in runs.items():
                    record = by_key.get((run, metric, dataset))
                    value = record_number(record, False) if record else None
                    if value is None:
                        missing.append(f"{name} on {dataset} ({record.get('status', OK) if record else 'not scored'})")
                    values.append(value)
                if not missing:
                    means.append(float(np.mean(values)))
            row[header] = None if missing else float(np.mean(means))
            if missing and metric in whole:
                label = key[0] + (f"/{key[1]}" if key[1] else "")
                notes.append(f"{header} of {label}: no score for {'; '.join(dict.fromkeys(missing))}")
        rows.append(row)
    return rows, notes


def robust_table(rows: list[dict], columns: dict[str, str], notes: list[str] = ()) -> str:
    """Markdown of ``robust_table_records``: rows E, EP/no, EP/yes, ...; columns marked higher (↑) or lower (↓) is
    better, each naming the sr_results metric it shows where that is not one of its default names."""
    lower = {header: low for header, _, low in STUDY_COLUMNS}
    defaults = {header: names for header, names, _ in STUDY_COLUMNS}
    heads = [f"{h} {'↓' if lower.get(h) else '↑'}" + (f" ({m})" if m.lower() not in defaults.get(h, ()) else "")
             for h, m in columns.items()]  # fmt: skip
    lines = [
        "| Loss | Robust | Runs | " + " | ".join(escape_cell(h) for h in heads) + " |",
        "|" + " --- |" * (len(heads) + 3),
    ]
    for row in rows:
        cells = [format_sr_value(row[h], 3 if h == "IFC" else 2) for h in columns]
        lines.append(f"| {row['loss']} | {row['robust'] or '–'} | {row['runs']} | " + " | ".join(cells) + " |")
    datasets = rows[0]["datasets"] if rows else ""
    lines.append(
        f"\nEach cell: the mean over datasets ({datasets.replace('; ', ', ')}) of the mean over the row's runs."
    )
    lines.append("Robust: yes: the feature (and texture) loss on weights whose card records PGD adversarial training "
                 "(train_robust.py); no: standard weights (auto / pretrained / random, or a card recording standard "
                 "training); unknown: weights that record neither (e.g. a robustness-library checkpoint file); –: no "
                 "feature loss.")  # fmt: skip
    for note in notes:
        lines.append(f"{MISSING}: {note}")
    return "\n".join(lines)


def study_columns(overrides: list[str], metrics: list[str]) -> dict[str, str]:
    """{column header: sr_results metric} of the study's table: the first default name present in ``metrics``
    (case-insensitive), unless ``--metric COLUMN=NAME`` says otherwise."""
    headers = {h.lower(): h for h, _, _ in STUDY_COLUMNS}
    chosen = {}
    for entry in overrides:
        header, sep, name = entry.partition("=")
        if not sep or header.strip().lower() not in headers or not name.strip():
            raise UserError(
                f"--metric {entry!r}: expected COLUMN=NAME with COLUMN one of {', '.join(headers.values())}"
            )
        chosen[headers[header.strip().lower()]] = name.strip()
    lowered = {m.lower(): m for m in metrics}
    for header, defaults, _ in STUDY_COLUMNS:
        if header not in chosen:
            chosen[header] = next((lowered[d] for d in defaults if d in lowered), defaults[0])
    return {h: chosen[h] for h, _, _ in STUDY_COLUMNS}


__all__ = [
    "ROBUST",
    "STUDY_COLUMNS",
    "STUDY_TERMS",
    "robust_label",
    "robust_table",
    "robust_table_records",
    "select_study_records",
    "study_columns",
    "study_loss",
]
