"""Leaderboard tables: unique row names, Markdown tables, csv/json files, and the results of training runs.

Shared by every ``evaluate.py`` table, so that two entries can never collapse into one row and a number computed
under a caveat (a linear PLCC because the logistic fit did not converge, a metric whose weights could not be
obtained) is marked where it is shown.

``init_label`` names a backbone's starting weights (random / pretrained / gan / file) from its provenance string;
``load_results`` reads the ``results.json`` files that train_iqa.py and train_metric.py write (``write_results``),
``check_test_sets`` refuses to compare runs tested on different test sets, and ``init_comparison_table`` sets their
test correlations side by side per initialisation (the paper's Fig. 5/8).
``robust_table_records`` / ``robust_table`` lay SR leaderboard records out as the robust-loss study's table: a row per
loss setting in its letters (``study_loss``: mse E, feat P, texture T) and feature weights (``robust_label``).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence

import numpy as np

from .atomic import write_json, write_text
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


def write_results(output_dir: str, script: str, args, *, mode: str, weights_source: str, dataset: str, split: str,
                  steps: int, best_step: int | None, initial: dict, validation: dict, test: dict,
                  test_set: dict) -> dict:  # fmt: skip
    """Write a training run's ``results.json`` (the record ``load_results`` reads back) and return it: the script,
    mode, ``--backbone`` / ``--weights`` and the weights' provenance with its ``init`` label, the dataset and split,
    the steps, the untrained, validation and test correlations, and ``test_set``: the fingerprint and size of the
    exact set the test numbers come from (``asym.iqa_data.splits.eval_set_record``, after ``--max_eval_samples``),
    which init-comparison checks before it sets two runs side by side."""
    results = {
        "script": script, "mode": mode, "backbone": args.backbone, "weights": args.weights,
        "weights_source": weights_source, "init": init_label(weights_source), "dataset": dataset, "split": split,
        "steps": steps, "best_step": best_step, "initial_validation": initial, "validation": validation, "test": test,
        "test_set": {"fingerprint": str(test_set["fingerprint"]), "n": int(test_set["n"])},
    }  # fmt: skip
    write_json(os.path.join(output_dir, "results.json"), results)
    return results


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


def _fingerprint(result: dict) -> str | None:
    """A results.json's test-set fingerprint, None where it has none (written before test sets were recorded)."""
    test_set = result.get("test_set")
    value = test_set.get("fingerprint") if isinstance(test_set, dict) else None
    return value if isinstance(value, str) and value else None


def check_test_sets(results: list[dict], allow_different: bool = False) -> list[str]:
    """Refuse to set side by side (one (dataset, mode) section of init-comparison) runs tested on different sets:
    test-set fingerprints that differ (another seed's split, another ``--max_eval_samples``), or a run without one.

    A results.json without a fingerprint predates them: it cannot be checked, so it is refused like a mismatch
    (re-running it is the way to a comparison one can trust); a run alone in its section is compared with nothing
    and passes. ``allow_different`` lets them through; the returned notes say which sections are unchecked.

    Raises:
        UserError: naming both runs (or the run without a fingerprint), unless ``allow_different``.
    """
    notes = []
    for dataset, mode in dict.fromkeys((r["dataset"], r["mode"]) for r in results):
        group = [r for r in results if (r["dataset"], r["mode"]) == (dataset, mode)]
        if len(group) < 2:
            continue
        section = f"{dataset} ({str(mode).upper()})"
        old = next((r for r in group if _fingerprint(r) is None), None)
        first = group[0]
        other = next((r for r in group if _fingerprint(r) != _fingerprint(first)), None)
        if old is None and other is None:
            continue
        if allow_different:
            notes.append(f"{section}: the runs' test sets differ or cannot be checked (--allow_different_test_sets); "
                         f"n per cell")  # fmt: skip
        elif old is not None:
            raise UserError(f"{old['path']} records no test-set fingerprint (written before results.json had one), so "
                            f"its test set cannot be checked against the other {section} runs: re-run it, or pass "
                            f"--allow_different_test_sets to compare unchecked")  # fmt: skip
        else:
            n_a, n_b = (r.get("test_set", {}).get("n") for r in (first, other))
            raise UserError(f"{first['path']} (n = {n_a}) and {other['path']} (n = {n_b}) were tested on different "
                            f"{section} test sets: train them on one split (--split_file of the first, the same "
                            f"--max_eval_samples), or pass --allow_different_test_sets")  # fmt: skip
    return notes


def init_comparison_records(results: list[dict]) -> list[dict]:
    """One flat record per run (dataset, mode, backbone, init, then the test srcc, plcc, krcc, n, plcc_fit, the
    test-set fingerprint, and the file), sorted by dataset, mode, backbone (in order of appearance) and init
    (``INITS`` order)."""
    backbones = list(dict.fromkeys(r["backbone"] for r in results))
    order = sorted(results, key=lambda r: (str(r["dataset"]), str(r["mode"]), backbones.index(r["backbone"]),
                                           INITS.index(r["init"])))  # fmt: skip
    return [{"dataset": r["dataset"], "mode": r["mode"], "backbone": r["backbone"], "init": r["init"],
             **{k: r["test"].get(k) for k in ("srcc", "plcc", "krcc", "n", "plcc_fit")},
             "test_set": _fingerprint(r), "results": r["path"]}
            for r in order]  # fmt: skip


def init_comparison_table(records: list[dict]) -> str:
    """Markdown: per (dataset, mode) a table of backbone rows x init columns (test SRCC / PLCC), ``n/a`` where a
    backbone was not run from that init. The heading gives the test set's size where the section's runs share one
    (same fingerprint); otherwise (``--allow_different_test_sets``) each cell gives its own n. A PLCC marked ``†``
    is linear (the logistic fit failed there)."""
    inits = [i for i in INITS if any(r["init"] == i for r in records)]
    sections, linear = [], False
    for dataset, mode in dict.fromkeys((r["dataset"], r["mode"]) for r in records):
        group = [r for r in records if (r["dataset"], r["mode"]) == (dataset, mode)]
        by_key = {(r["backbone"], r["init"]): r for r in group}
        prints = {r.get("test_set") for r in group}
        shared = len(group) == 1 or (len(prints) == 1 and None not in prints)
        heading = f"test set, n = {group[0]['n']}" if shared else "test sets differ or unchecked: n per cell"
        lines = [f"### {dataset} ({str(mode).upper()}), {heading}",
                 "",
                 "| Backbone | " + " | ".join(f"{i} SRCC | {i} PLCC" for i in inits) + " |",
                 "|" + " --- |" * (2 * len(inits) + 1)]  # fmt: skip
        for backbone in dict.fromkeys(r["backbone"] for r in group):
            cells = []
            for c in (by_key.get((backbone, i)) for i in inits):
                if c is None:
                    cells.append(f"{MISSING} | {MISSING}")
                    continue
                mark = LINEAR_MARK if c.get("plcc_fit") == "linear" else ""
                linear = linear or bool(mark)
                cells.append(f"{c['srcc']:.3f} | {c['plcc']:.3f}{mark}" + ("" if shared else f" (n = {c['n']})"))
            lines.append(f"| {_escape(backbone)} | " + " | ".join(cells) + " |")
        sections.append("\n".join(lines))
    if linear:
        sections.append(f"{LINEAR_MARK} linear PLCC: the 4-parameter logistic fit failed on that test set (too few "
                        f"scores, no convergence, or a step)")  # fmt: skip
    return "\n\n".join(sections)


# --- SR leaderboards (the paper's Table 1) ---------------------------------------------------------------------

REFERENCE = "n/a: reference"  # the status of the ``hr`` source on a full-reference metric: it is the reference


def card_loss(card: dict | None) -> str | None:
    """The loss setting a train_sr.py model card records (``--loss``, e.g. ``rec+per+adv``), None if it has none."""
    loss = (card or {}).get("--loss")
    return str(loss) if loss else None


def _fact_backbone(fact) -> str | None:
    """The backbone in a train_sr.py card fact ``"<what> on <backbone> (<weights>)..."``, None if it has none."""
    if not isinstance(fact, str) or " on " not in fact:
        return None
    rest = fact.split(" on ", 1)[1]
    return rest.split(" (", 1)[0].split(",", 1)[0].strip() or None


def card_per_backbone(card: dict | None) -> str | None:
    """The perceptual loss backbone of a train_sr.py card (``--per_backbone``, else its ``perceptual loss`` fact)."""
    card = card or {}
    return str(card["--per_backbone"]) if card.get("--per_backbone") else _fact_backbone(card.get("perceptual loss"))


def card_disc_backbone(card: dict | None) -> str | None:
    """The discriminator backbone of a train_sr.py card (``--disc_backbone``, else its ``discriminator`` fact)."""
    card = card or {}
    return str(card["--disc_backbone"]) if card.get("--disc_backbone") else _fact_backbone(card.get("discriminator"))


def _number(record: dict, normalised: bool) -> float | None:
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
    basis = [m for m in metrics if normalised and any(_number(by_key[(x, m)], True) is not None for x in models
                                                      if (x, m) in by_key)]  # fmt: skip
    average, std, partial = {}, {}, []
    for model in models:
        values = [_number(by_key[(model, m)], normalised) for m in basis if (model, m) in by_key]
        shown = [v for v in values if v is not None]
        if basis and len(shown) < len(basis):
            partial.append(model)
        average[model] = float(np.mean(shown)) if shown else None
        std[model] = float(np.std(shown)) if shown else None
    return {"normalised": normalised, "basis": basis, "average": average, "std": std, "partial": partial}


def check_image_sets(files: Sequence[tuple[str, list[dict]]]) -> None:
    """Refuse to combine sr_results records made on different images of one test set.

    ``files`` are (path, records) of sr_results.json files; every record carries the number of images scored
    (``images``) and their ``fingerprint`` (``asym.sr_eval.fingerprint``), which evaluate.py sr writes. Two records of
    one dataset name must share both, whichever files they come from: an average over runs scored with
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


def _sr_value(value: float | None, digits: int = 2) -> str:
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
        return None if record is None else _number(record, normalised)

    def row(label: str, value, spread: bool = True) -> str:
        cells = []
        for _, target in columns:
            if isinstance(target, list) and not spread:
                cells.append("–")
            elif isinstance(target, list):
                values = [value(m) for m in target]
                ok = [v for v in values if v is not None and math.isfinite(v)]
                cells.append(_sr_value(float(np.std(ok)) if len(ok) == len(values) else None, 3))
            else:
                cells.append(_sr_value(value(target)))
        return f"| {_escape(label)} | " + " | ".join(cells) + " |"

    lines = ["| Metric | " + " | ".join(_escape(h) for h, _ in columns) + " |", "|" + " --- |" * (len(columns) + 1)]
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


# --- The robust-loss study's table (Uelwer et al.: SR losses on standard or adversarially robust VGG features) ----

STUDY_TERMS = {"mse": "E", "feat": "P", "texture": "T"}  # train_sr.py --loss terms -> the study's letters, in order
STANDARD_WEIGHTS = ("auto", "pretrained", "random")  # --feat_weights that are no robust model's weights
# The study's columns: (header, sr_results metric names that fill it by default, lower is better)
STUDY_COLUMNS = (
    ("PSNR", ("psnr",), False), ("SSIM", ("ssim",), False), ("UQI", ("uqi",), False), ("IFC", ("ifc",), False),
    ("GMSD", ("gmsd",), True), ("LPIPS", ("lpips", "lpips-vgg"), True),
    ("R-LPIPS", ("rlpips", "r-lpips", "r_lpips"), True),
)  # fmt: skip


def card_feat_weights(card: dict | None) -> str | None:
    """The feature-loss weights a train_sr.py card records (``--feat_weights``: auto, pretrained, random, a file or a
    Hub id), None if it records none."""
    value = (card or {}).get("--feat_weights")
    return None if value is None else str(value)


def study_loss(loss: str | None) -> str | None:
    """The study's name of a ``--loss`` (``mse+feat`` -> ``EP``, letters in E, P, T order), None where a term is not
    one of the study's (``rec``, ``per``, ``adv``) or there is none."""
    terms = [t.strip() for t in str(loss or "").split("+") if t.strip()]
    if not terms or any(t not in STUDY_TERMS for t in terms):
        return None
    letters = {STUDY_TERMS[t] for t in terms}
    return "".join(letter for letter in STUDY_TERMS.values() if letter in letters)


ROBUST = ("no", "yes", "unknown")  # the Robust column's values (and its row order); None: no feature loss


def _weights_card(feat_weights: str) -> tuple[dict | None, str]:
    """(config.json, where it was found) of the asym model that ``feat_weights`` names: a folder, the weights file of
    one, or a Hub repo (its config.json from the local cache or the Hub); (None, why not) if there is none."""
    if os.path.isdir(feat_weights) or os.path.isfile(feat_weights):
        folder = feat_weights if os.path.isdir(feat_weights) else os.path.dirname(os.path.abspath(feat_weights))
        path = os.path.join(folder, "config.json")
        if not os.path.isfile(path):
            return None, f"{feat_weights}: weights without a config.json or model card saying how they were trained"
    elif feat_weights.count("/") == 1 and not feat_weights.startswith((".", "/")):
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(feat_weights, "config.json")
        except Exception as err:  # noqa: BLE001 - offline, no such repo, no config.json: nothing to read
            return None, f"{feat_weights}: its config.json could not be had ({type(err).__name__})"
    else:
        return None, f"{feat_weights}: not found here (no file, folder or Hub repo to read a card from)"
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, ValueError) as err:
        return None, f"{path} cannot be read ({type(err).__name__})"
    return (config if isinstance(config, dict) else None), path


def feat_weights_robustness(feat_weights: str | None) -> tuple[str, str]:
    """Whether feature-loss weights come from adversarial training, by their own record: (``"yes"`` / ``"no"`` /
    ``"unknown"``, why).

    ``no``: none recorded, ``auto`` / ``pretrained`` / ``random`` (standard or random weights), ``gan:<run>`` (a
    discriminator's backbone), or a train_robust.py output whose card records standard training. ``yes``: a
    train_robust.py output (its folder, its weights file, or its Hub repo) whose card's objective is PGD adversarial
    training. ``unknown``: weights that record neither, such as a robustness-library checkpoint file (it holds the
    network, not how it was trained) or a Hub repo that cannot be read here.
    """
    if feat_weights in (None, "", *STANDARD_WEIGHTS):
        return "no", "standard weights" if feat_weights else "no --feat_weights recorded (the default, auto)"
    if feat_weights.startswith("gan:"):
        return "no", f"{feat_weights}: a GAN discriminator's backbone, not adversarially trained"
    config, where = _weights_card(feat_weights)
    if config is None:
        return "unknown", where
    objective = str((config.get("card") or {}).get("objective") or "")
    if config.get("asym_class") == "Classifier" and "x_adv: PGD" in objective:
        return "yes", f"{where}: {objective.split('x_adv: ', 1)[1]}"
    if config.get("asym_class") == "Classifier" and objective.startswith("standard training"):
        return "no", f"{where}: {objective}"
    return "unknown", f"{where}: its card records no adversarial or standard training objective (train_robust.py's)"


def robust_label(letters: str, feat_weights: str | None) -> str | None:
    """The table's Robust column: ``None`` for ``E`` (no feature loss), else ``feat_weights_robustness``'s verdict
    (``yes``, ``no`` or ``unknown``)."""
    if letters == "E":
        return None
    return feat_weights_robustness(feat_weights)[0]


def _group_order(key: tuple[str, str | None]) -> tuple:
    letters, robust = key
    return len(letters), ["EPT".index(c) for c in letters], ROBUST.index(robust) if robust in ROBUST else -1


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
                    value = _number(record, False) if record else None
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
        "| Loss | Robust | Runs | " + " | ".join(_escape(h) for h in heads) + " |",
        "|" + " --- |" * (len(heads) + 3),
    ]
    for row in rows:
        cells = [_sr_value(row[h], 3 if h == "IFC" else 2) for h in columns]
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


__all__ = [
    "INITS",
    "LINEAR_MARK",
    "REFERENCE",
    "ROBUST",
    "STUDY_COLUMNS",
    "STUDY_TERMS",
    "card_disc_backbone",
    "card_feat_weights",
    "card_loss",
    "card_per_backbone",
    "check_test_sets",
    "check_image_sets",
    "feat_weights_robustness",
    "init_comparison_records",
    "init_comparison_table",
    "init_label",
    "load_results",
    "markdown_table",
    "robust_label",
    "robust_table",
    "robust_table_records",
    "sr_model_averages",
    "sr_summary",
    "sr_table",
    "study_loss",
    "unique_names",
    "write_records",
    "write_results",
    "write_text",
]
