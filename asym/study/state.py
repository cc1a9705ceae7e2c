"""Where each run of a study stands, read from its folder and its record, so that any process (the study command run
again, ``--status`` on a login node) tells the same story.

A run's record, ``<study>/.study/runs/<name>.json``, is written by whoever runs it (``asym.study.launch``): the
command it ran (the run is keyed by it: a folder made with other arguments is never taken for this run), its state
(``submitted``, ``running``, ``done``, ``failed``, ``interrupted``), where it ran (SLURM job id, or host and pid),
its start and end times and its log, ``<study>/.study/logs/<name>.log``. ``run_state`` joins the record with the
folder: a training run is done when its final model, card (and results, where its script writes them) are there; it
is partial when its folder holds checkpoints (the launcher resumes it from the latest, exactly); a job that is no
longer alive without a final record died (killed, cancelled, out of time) and is resumed like a partial run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass

from ..core.atomic import write_json
from .graph import Run

RECORDS = ".study"  # inside the study's folder: runs/ (records), logs/, submitit/ (jobs' pickles and logs)
FINAL_FILES = {  # what a training script writes last, besides its model's config.json and weights
    "train_sr.py": ("README.md",),
    "train_metric.py": ("README.md", "results.json"),
    "train_iqa.py": ("README.md", "results.json"),
    "train_robust.py": ("README.md", "results.json"),
}
DONE, RUNNING, PENDING, FAILED, PARTIAL, NOT_STARTED, CHANGED = (
    "done", "running", "pending", "failed", "partial", "not started", "changed")  # fmt: skip
INTERRUPTED = "interrupted"  # a record's state: stopped by a signal (scancel, preemption); the run reads as partial


def _file_name(name: str) -> str:
    return name.replace(os.sep, "__")


def record_path(folder: str, name: str) -> str:
    """The record of run ``name`` of the study in ``folder``."""
    return os.path.join(folder, RECORDS, "runs", f"{_file_name(name)}.json")


def log_path(folder: str, name: str) -> str:
    """The log of run ``name``: every attempt's output, appended (each under a header line)."""
    return os.path.join(folder, RECORDS, "logs", f"{_file_name(name)}.log")


def read_record(folder: str, name: str) -> dict | None:
    """Run ``name``'s record, or None (never run by a study command, or an unreadable record)."""
    try:
        with open(record_path(folder, name), encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(folder: str, run: Run, **fields) -> dict:
    """Update run ``run``'s record with ``fields`` (atomically); a record of another command is replaced."""
    record = read_record(folder, run.name) or {}
    if record.get("command") != run.command_line():
        record = {}
    record.update(fields, name=run.name, command=run.command_line(), updated=time.time())
    write_json(record_path(folder, run.name), record)
    return record


def is_complete(run: Run) -> bool:
    """A training run's final model, card and results are in its folder; an evaluation's folder exists (its own record
    says whether it finished)."""
    if not run.trains:
        return os.path.isdir(run.output_dir)
    files = ("config.json", "model.safetensors", *FINAL_FILES.get(run.script, ("README.md",)))
    return all(os.path.isfile(os.path.join(run.output_dir, f)) for f in files)


def checkpoint_step(run: Run) -> int:
    """The step of the run's latest complete checkpoint (0: none)."""
    from ..core.training import list_checkpoints

    found = list_checkpoints(run.output_dir) if run.trains else []
    return found[-1][0] if found else 0


def total_steps(run: Run) -> int | None:
    """The run's ``--max_train_steps`` (its script's default where the command leaves it out); None for evaluations."""
    if not run.trains:
        return None
    given = run.flag("--max_train_steps")
    if given is not None:
        return int(given)
    import importlib

    module = importlib.import_module(run.script.removesuffix(".py"))
    return module.parse_args(list(run.args)).max_train_steps


def job_alive(record: dict) -> str | None:
    """``running`` / ``pending`` when the record's job still lives (SLURM's view of its job id, or its process on this
    host), None when it ended or cannot be seen (a process on another host: taken as alive, ``running``)."""
    if record.get("job_id") and record.get("launcher") == "slurm":
        state = slurm_state(str(record["job_id"]))
        if state in ("PENDING", "REQUEUED", "CONFIGURING"):
            return PENDING
        return RUNNING if state in ("RUNNING", "COMPLETING", "SUSPENDED") else None
    if record.get("host") and record.get("pid"):
        if record["host"] != socket.gethostname():
            return RUNNING
        try:
            os.kill(int(record["pid"]), 0)
        except (OSError, ValueError):
            return None
        return RUNNING
    return None


def slurm_state(job_id: str) -> str | None:
    """SLURM's state of a job (``squeue``, else ``sacct`` once it left the queue), None where neither knows it."""
    for command in (["squeue", "-h", "-j", job_id, "-o", "%T"], ["sacct", "-n", "-X", "-j", job_id, "-o", "State"]):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.split()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out:
            return out[0].rstrip("+")
    return None


@dataclass
class RunState:
    """Where a run stands: ``state`` (one of ``DONE`` ... ``CHANGED``), its steps (done, total), its record."""

    run: Run
    state: str
    steps_done: int
    steps_total: int | None
    record: dict | None


def remade_inputs(folder: str, run: Run, record: dict | None) -> list[str]:
    """The runs ``run`` reads that ended after it did (remade since: its results are of their old outputs)."""
    ended = (record or {}).get("ended")
    if not ended:
        return []
    return [name for name in run.reads if ((read_record(folder, name) or {}).get("ended") or 0) > ended]


def run_state(folder: str, run: Run, steps: bool = True) -> RunState:
    """Run ``run``'s state from its record and its folder (``steps``: also read its total steps, which may import its
    script to learn a default). A done run whose inputs were remade after it is ``CHANGED`` where it trains (its model
    was trained on the old ones) and ``NOT_STARTED`` where it evaluates (it is simply done again)."""
    record = read_record(folder, run.name)
    done_steps, complete = checkpoint_step(run), is_complete(run)  # the folder, read once
    remade = remade_inputs(folder, run, record)
    if remade and run.trains:
        return RunState(run, CHANGED, done_steps, None, {"command": f"earlier {', '.join(remade)}"})
    if remade:
        record = None
    if record is not None and record.get("command") != run.command_line():
        other = record.get("command")
        record = None
        if complete or done_steps:
            return RunState(run, CHANGED, done_steps, None, {"command": other})
    total = total_steps(run) if steps else None
    state = record.get("state") if record else None
    if complete and (state == DONE or (run.trains and state is None)):
        return RunState(run, DONE, total or done_steps, total, record)
    if state in ("submitted", RUNNING):
        alive = job_alive(record)
        if alive:
            return RunState(run, alive, done_steps, total, record)
        state = FAILED if record.get("ended") else None  # died without its final record: resumed as partial
    if state == FAILED:
        return RunState(run, FAILED, done_steps, total, record)
    return RunState(run, PARTIAL if done_steps else NOT_STARTED, done_steps, total, record)


def log_tail(folder: str, name: str, lines: int = 12) -> str:
    """The last ``lines`` lines of run ``name``'s log ("" when it has none)."""
    try:
        with open(log_path(folder, name), "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 64 * 1024))
            text = file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "\n").rstrip().splitlines()[-lines:])
