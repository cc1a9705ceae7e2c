"""The preflight, run: a study's sources checked (``asym.study.preflight``), then each distinct training stage measured
for a few steps and each scorer per image, and what every run does counted (``asym.study.costs``): the stage table
printed and ``preflight.json`` written, which ``--status`` reads its ETAs from.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Callable

from ..core.atomic import write_json
from ..core.errors import UserError
from .chains import command_flags
from .costs import (
    STAGE_KEYS,
    TrainingRun,
    add_run,
    eta_total,
    fill_eta,
    measure_scorers,
    measure_stage,
    run_counts,
    stage_key,
    stage_table,
)
from .preflight import MISSING, OK, PREFLIGHT_FILE, check_requirements, missing_table


def run_preflight(requirements: list, commands: list[tuple[str, list[str]]], out: str, processes: int,
                  run_command: Callable, script_module: Callable) -> list[dict]:  # fmt: skip
    """Check every source of ``requirements`` (all that is missing at once, exit 2, nothing written), then measure each
    distinct training stage of ``commands`` for a few steps and each scorer per image, and count what every run does
    (steps, validations, checkpoint saves, calibration images): the table printed, ``preflight.json`` in ``out``.
    ``processes``: a training run's data-parallel processes; ``run_command(script, argv)`` runs a command in this
    process; ``script_module(script)`` gives a training script's module (its parser)."""
    import torch

    rows = check_requirements(requirements)
    blocking = [r for r in rows if r["status"] != OK and r["blocking"]]
    if any(r["status"] != OK for r in rows):
        print(missing_table(rows), flush=True)
    if blocking:
        raise UserError(f"{len(blocking)} of the study's {len(rows)} sources cannot be had (the table above: "
                        f"{sum(r['status'].startswith(MISSING) for r in blocking)} missing, the rest unusable); put "
                        "them where it says, then run --preflight again")  # fmt: skip
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    producers = {command_flags(a).get("--output_dir"): a for _, a in commands}
    stages: dict[tuple, dict] = {}
    sizes: dict[tuple, tuple[int, int] | None] = {}  # per stage: images of a validation pass and of a test pass
    for script, argv in commands:
        if script == "evaluate.py":
            if argv[0] == "sr":  # each scorer of Table 1 / the sweep, per image scored (and calibrated on)
                measure_scorers(stages, argv, device)
            continue  # the other verbs read what the stages wrote: minutes
        key = stage_key(script, argv)
        module = script_module(script)
        parsed = module.parse_args(argv)
        if key not in stages:
            stages[key], sizes[key] = measure_training(module, parsed, argv, producers, device, processes, run_command)
        row = stages[key]  # seconds_per_step 0: a run that trains no step (vgg16-r), so saves no checkpoint either
        add_run(row, run_counts(script, parsed, sizes[key], trains=row["seconds_per_step"] != 0))
    table = list(stages.values())
    for row in table:  # a stage's ETA covers every run of its kind
        if row["seconds_per_step"] is not None:
            fill_eta(row)
    print(stage_table(table), flush=True)
    machine = (
        f"{torch.cuda.get_device_name(0)} x{processes}" if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    )
    total, parts, includes = eta_total(table)
    record = {"machine": machine, "device": device.type, "processes": processes, "sources": rows, "stages": table,
              "total_gpu_hours": total, "total_gpu_hours_by_part": parts, "eta_includes": includes}  # fmt: skip
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, PREFLIGHT_FILE), record)
    print(f"preflight: {os.path.join(out, PREFLIGHT_FILE)} ({machine})", flush=True)
    return table


def measure_training(module, parsed, argv: list[str], producers: dict, device, processes: int,
                     run_command: Callable) -> tuple[dict, tuple]:  # fmt: skip
    """A training command's stage row, measured for a few steps in a temporary folder (``TrainingRun``), and the
    images a validation and a test pass of the configured run score."""
    script = f"{module.__name__}.py"
    row = dict.fromkeys(STAGE_KEYS)
    row.update(stage=os.path.basename(parsed.output_dir), script=script, command=shlex.join([script, *argv]))
    with tempfile.TemporaryDirectory(prefix="asym-preflight-") as tmp:
        run = TrainingRun(module, parsed, argv, producers, tmp, run_command)
        print(f"preflight: measuring {row['stage']} ({script})", flush=True)
        measure_stage(row, run, parsed.train_batch_size, device, processes)
    return row, run.evaluation_sizes


__all__ = ["measure_training", "run_preflight"]
