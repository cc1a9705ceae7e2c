"""The results of training runs: which initialisation did best (the paper's Fig. 5/8).

``init_label`` names a backbone's starting weights (random / pretrained / gan / file) from its provenance string;
``write_results`` writes the ``results.json`` of a train_iqa.py / train_metric.py run and ``load_results`` reads such
files back; ``check_test_sets`` refuses to compare runs tested on different test sets, and
``init_comparison_records`` / ``init_comparison_table`` set their test correlations side by side per initialisation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from ..core.atomic import write_json
from ..core.errors import UserError, reading
from ..reporting.tables import LINEAR_MARK, MISSING, escape_cell

INITS = ("random", "pretrained", "gan", "file")  # the starting weights compared by init-comparison, in this order
RESULT_FIELDS = ("script", "mode", "backbone", "init", "dataset", "test")  # what every results.json must hold


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
    exact set the test numbers come from (``asym.iqa.data.splits.eval_set_record``, after ``--max_eval_samples``),
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
            lines.append(f"| {escape_cell(backbone)} | " + " | ".join(cells) + " |")
        sections.append("\n".join(lines))
    if linear:
        sections.append(f"{LINEAR_MARK} linear PLCC: the 4-parameter logistic fit failed on that test set (too few "
                        f"scores, no convergence, or a step)")  # fmt: skip
    return "\n\n".join(sections)


__all__ = [
    "INITS",
    "check_test_sets",
    "init_comparison_records",
    "init_comparison_table",
    "init_label",
    "load_results",
    "write_results",
]
