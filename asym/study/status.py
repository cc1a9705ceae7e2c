"""``--status``: one table of a study, read from its folders, its records and the scheduler, so it works from any login
node while the study runs: every run's state, steps done of total (its latest checkpoint), its job, the time it has
used, its ETA from the preflight's cost of its stage (``preflight.json`` in the study's folder, where one was measured),
GPU-hours used and left; then the failed runs with the last lines of their logs. ``results_listing``: where a finished
study's tables and figures are.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Sequence

from .costs import duration, stage_key
from .graph import Run, Study
from .preflight import PREFLIGHT_FILE
from .state import DONE, FAILED, RUNNING, log_tail, run_state

STATUS_KEYS = ("run", "script", "state", "steps_done", "steps_total", "job", "seconds_used", "eta_seconds",
               "gpu_hours_used", "gpu_hours_left", "reads")  # fmt: skip


def preflight_costs(folder: str) -> dict[tuple, tuple[float, int, int]]:
    """{stage key: (ETA seconds, steps, runs) of the stage} from the study's ``preflight.json`` ({} without one): the
    ETA with everything it includes (steps, validations, checkpoint saves)."""
    try:
        with open(os.path.join(folder, PREFLIGHT_FILE), encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError):
        return {}
    costs = {}
    for row in record.get("stages", []):
        if row.get("eta_seconds") is not None and row.get("command"):
            script, *argv = shlex.split(row["command"])
            costs[stage_key(script, argv)] = (float(row["eta_seconds"]), int(row.get("steps") or 0),
                                              int(row.get("runs") or 1))  # fmt: skip
    return costs


def run_eta(cost: tuple[float, int, int] | None, steps_done: int, steps_total: int) -> float | None:
    """A run's time left at its stage's measured cost: the stage's ETA per step (validations and checkpoints spread
    over its steps) times the steps left; a stage that trains no step costs its ETA per run."""
    if cost is None:
        return None
    eta, steps, runs = cost
    if not steps:
        return eta / runs if steps_done == 0 else 0.0
    return max(steps_total - steps_done, 0) * eta / steps


def status_rows(study: Study, runs: Sequence[Run], gpus_per_run: int = 1, now: float | None = None) -> list[dict]:
    """A row per run (``STATUS_KEYS``). Time used sums the run's finished attempts and the one running now; GPU-hours
    multiply it by the GPUs its record says it had (``gpus_per_run`` where it has none); the ETA is the steps left at
    the preflight's cost of the run's stage (``run_eta``; None where the preflight measured no such stage)."""
    now = now or time.time()
    costs = preflight_costs(study.folder)
    rows = []
    for run in runs:
        state = run_state(study.folder, run)
        record = state.record or {}
        gpus = record.get("gpus") or gpus_per_run
        used = float(record.get("seconds_used") or 0)
        if state.state == RUNNING and record.get("started"):
            used += now - float(record["started"])
        left = 0.0 if state.state == DONE else None
        if state.state != DONE and state.steps_total is not None:
            cost = costs.get(stage_key(run.script, list(run.args)))
            left = run_eta(cost, state.steps_done, state.steps_total)
        rows.append({"run": run.name, "script": run.script, "state": state.state, "steps_done": state.steps_done,
                     "steps_total": state.steps_total, "job": record.get("job_id") or "", "seconds_used": used,
                     "eta_seconds": left, "gpu_hours_used": used * gpus / 3600,
                     "gpu_hours_left": None if left is None else left * gpus / 3600,
                     "reads": list(run.reads)})  # fmt: skip
    return rows


def status_table(study: Study, rows: list[dict]) -> str:
    """The rows as Markdown, a totals line, and each failed run with the end of its log."""
    lines = ["| run | state | steps | job | time used | ETA | GPU-h used | GPU-h left |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        steps = "" if r["steps_total"] is None else f"{r['steps_done']} / {r['steps_total']}"
        eta = "n/a" if r["eta_seconds"] is None else duration(r["eta_seconds"])
        left = "n/a" if r["gpu_hours_left"] is None else f"{r['gpu_hours_left']:.2f}"
        lines.append(f"| {r['run']} | {r['state']} | {steps} | {r['job']} | {duration(r['seconds_used'])} | {eta} | "
                     f"{r['gpu_hours_used']:.2f} | {left} |")  # fmt: skip
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    known = [r["gpu_hours_left"] for r in rows if r["gpu_hours_left"] is not None]
    unknown = sum(r["gpu_hours_left"] is None and r["state"] != DONE and r["steps_total"] is not None for r in rows)
    lines.append("")
    unmeasured = f" + {unknown} training runs without a preflight measurement (run --preflight here)" if unknown else ""
    lines.append(f"{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()) +
                 f"; GPU-hours used {sum(r['gpu_hours_used'] for r in rows):.2f}, left {sum(known):.2f}" +
                 unmeasured + " (training; the evaluations' time is not estimated here)")  # fmt: skip
    for r in rows:
        if r["state"] == FAILED:
            tail = log_tail(study.folder, r["run"]).strip("\n") or "(no log)"
            lines += ["", f"{r['run']} failed; the end of its log:", "", *("    " + line for line in tail.splitlines())]
    return "\n".join(lines)


RESULT_FILES = (".md", ".png", ".pdf")  # tables (Markdown) and figures; their .json / .csv lie beside them


def results_listing(study: Study, runs: Sequence[Run]) -> str:
    """The tables and figures the evaluation runs among ``runs`` wrote, one line per run's folder (its files relative
    to the study's folder), and where the paper's published ones are to compare."""
    lines = []
    for run in runs:
        if run.trains or not os.path.isdir(run.output_dir):
            continue
        files = sorted(f for f in os.listdir(run.output_dir) if f.endswith(RESULT_FILES))
        if files:
            lines.append(f"  {', '.join(os.path.join(run.name, f) for f in files)}")
    if not lines:
        return ""
    return "\n".join([f"its tables and figures, in {study.folder}:", *lines,
                      "the paper's published tables beside which to read them: docs/paper_results.md"])  # fmt: skip
