"""A study's preflight: every dataset and weight source it needs, resolved before anything trains (all that is missing
reported at once), then each distinct stage run for a few steps at its configured size to measure what the whole
schedule will cost (seconds per step, peak memory, ETA).

``scripts/reproduce_paper.py --preflight`` drives it; the pieces are the study's requirements (``Requirement``), the
check of all of them (``check_requirements``) and the measurement of one stage (``measure_stage``).
"""

from __future__ import annotations

import math
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import UserError, summarize

OK, MISSING = "ok", "missing"
PREFLIGHT_FILE = "preflight.json"
MEASURED_STEPS = 4  # optimisation steps a preflight runs per stage; the first (warm-up) is not timed
STAGE_KEYS = ("stage", "script", "command", "params", "peak_memory_bytes", "seconds_per_step", "steps", "eta_seconds",
              "status")  # fmt: skip


@dataclass
class Requirement:
    """One source a study needs: ``check()`` raises ``UserError`` (or ``OSError``) when it cannot be had."""

    name: str
    kind: str  # "dataset", "backbone weights", "scorer"
    where: str  # where it was looked for: a folder, a Hub id, a cache
    expected: str  # what should be there, for the person who will put it there
    check: Callable[[], None]
    blocking: bool = True  # False: the chain goes on without it (reported, not refused)


def check_requirements(requirements: list[Requirement]) -> list[dict]:
    """Every requirement checked (none stops the others): a row each with its status, ``ok`` or why not."""
    rows = []
    for req in requirements:
        try:
            req.check()
            status = OK
        except (UserError, OSError, RuntimeError, ValueError) as err:
            status = MISSING if isinstance(err, FileNotFoundError) else f"unusable: {summarize(err)}"
        rows.append({"name": req.name, "kind": req.kind, "where": req.where, "expected": req.expected,
                     "status": status, "blocking": req.blocking})  # fmt: skip
    return rows


def missing_table(rows: list[dict]) -> str:
    """The rows that are not ok, as a Markdown table (what, where it was looked for, what is expected there)."""
    lines = ["| what | kind | looked for in | expected | status |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['name']} | {r['kind']} | {r['where']} | {r['expected']} | {r['status']} |"
              for r in rows if r["status"] != OK]  # fmt: skip
    return "\n".join(lines)


def folder_of_images(path: str) -> Callable[[], None]:
    """A check that ``path`` is a folder holding image files (listed, not decoded: a preflight reads no pixels)."""
    from .images import IMAGE_EXTENSIONS

    def check() -> None:
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        if not any(f.lower().endswith(IMAGE_EXTENSIONS) for _, _, files in os.walk(path) for f in files):
            raise UserError(f"{path} holds no {'/'.join(IMAGE_EXTENSIONS)} file")

    return check


def iqa_dataset(path: str, mode: str) -> Callable[[], None]:
    """A check that ``path`` is an IQA release the FR (``mode="fr"``) or NR loader reads (score files and image paths;
    no pixels decoded)."""

    def check() -> None:
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        if mode == "fr":
            from .iqa_data import load_fr_dataset

            load_fr_dataset(path)
        else:
            from .iqa_data import load_nr_dataset

            load_nr_dataset(path)

    return check


def seconds_per_step(history: list[dict]) -> float:
    """The median wall time of a run's steps from its logs (``perf/step_seconds``), its first step (warm-up, lazy
    initialisation) left out where there are others."""
    import statistics

    times = [logs["perf/step_seconds"] for logs in history if "perf/step_seconds" in logs]
    if not times:
        raise UserError("the run logged no perf/step_seconds: nothing to measure")
    return statistics.median(times[1:] or times)


class PeakMemory:
    """The peak memory while a block runs: CUDA's max allocated on a GPU (reset on entry), else the highest resident
    set size of this process sampled every 20 ms by a thread (the CPU has no per-block counter)."""

    def __init__(self, device):
        import torch

        self.cuda = torch.device(device).type == "cuda"
        self.device, self.peak = device, 0

    def __enter__(self):
        import threading

        import psutil
        import torch

        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        process, self.done = psutil.Process(), threading.Event()

        def sample():
            while not self.done.is_set():
                self.peak = max(self.peak, process.memory_info().rss)
                self.done.wait(0.02)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        import torch

        if self.cuda:
            self.peak = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self.done.set()
            self.thread.join()
        return False


def measure_stage(row: dict, run: Callable[[int], tuple[list[dict], int]], batch_size: int, device,
                  num_processes: int = 1) -> dict:  # fmt: skip
    """Fill ``row`` (``STAGE_KEYS``; ``steps`` set) by running ``run(batch_size)``: a few steps of one stage, which
    returns its per-step logs and its parameter count. Seconds per step (``seconds_per_step``), peak memory, the ETA
    of ``row["steps"]`` steps and its device-hours. Out of memory halves the batch until a step fits, and the row
    says which batch size does (not a traceback)."""
    import torch

    tried = batch_size
    while True:
        start = time.perf_counter()
        try:
            with PeakMemory(device) as memory:
                history, params = run(tried)
            break
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if tried == 1:
                row["status"] = f"out of memory at batch 1 per device (batch {batch_size} asked): needs a larger device"
                return row
            tried //= 2
    row.update(params=params, peak_memory_bytes=memory.peak)
    if not history:  # e.g. vgg16-r: its alpha/beta stay random, the run only evaluates
        row.update(seconds_per_step=0.0, status=f"{OK}, trains no step (evaluated only)")
        return fill_eta(row, num_processes)
    row["seconds_per_step"] = seconds_per_step(history)
    fill_eta(row, num_processes)
    measured = f"measured in {time.perf_counter() - start:.0f} s"
    if tried != batch_size:
        row["status"] = (f"out of memory at --train_batch_size {batch_size}: fits at {tried} (keep the batch with "
                         f"--gradient_accumulation_steps {batch_size // tried}); {measured} at {tried}")  # fmt: skip
    else:
        row["status"] = f"{OK}, {measured}"
    return row


def fill_eta(row: dict, num_processes: int) -> dict:
    """A measured row's ``eta_seconds`` (its seconds per step times all its ``steps``) and ``gpu_hours`` (that on
    ``num_processes`` devices)."""
    row["eta_seconds"] = row["seconds_per_step"] * row["steps"]
    row["gpu_hours"] = row["eta_seconds"] * num_processes / 3600
    return row


def scorer_run(name: str, device, size: tuple[int, int], batches: int = 4) -> Callable[[int], tuple[list[dict], int]]:
    """A ``measure_stage`` run of one evaluation scorer: ``batches`` batches of random ``size`` images scored (a
    full-reference one against other random images), each batch's seconds per image logged as a step."""
    import torch

    from .metrics import create_metric

    def run(batch: int) -> tuple[list[dict], int]:
        metric = create_metric(name, device)
        network = getattr(metric, "model", metric)  # a pyiqa / VLM / asym model inside the scorer
        params = sum(p.numel() for p in network.parameters()) if isinstance(network, torch.nn.Module) else 0
        generator, history = torch.Generator().manual_seed(0), []
        with torch.no_grad():
            for _ in range(batches):
                images = torch.rand(2 if metric.kind == "fr" else 1, batch, 3, *size, generator=generator).to(device)
                start = time.perf_counter()
                metric(*images)
                if torch.device(device).type == "cuda":
                    torch.cuda.synchronize(device)
                history.append({"perf/step_seconds": (time.perf_counter() - start) / batch})
        return history, params

    return run


def duration(seconds: float) -> str:
    """``seconds`` in the unit a person reads it in: s, min, h or days."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def stage_table(rows: list[dict]) -> str:
    """The measured stages as Markdown, with the total. Peak memory: CUDA's max allocated on a GPU, the process's
    resident set on CPU (the Python process itself included)."""
    lines = ["| stage | runs | params | peak memory | s / step | steps | ETA | status |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        if r["seconds_per_step"] is None:
            lines.append(f"| {r['stage']} | {r['runs']} | | | | {r['steps']} | | {r['status']} |")
            continue
        lines.append(f"| {r['stage']} | {r['runs']} | {r['params'] / 1e6:.1f} M | {r['peak_memory_bytes'] / 2**30:.2f} "
                     f"GiB | {r['seconds_per_step']:.3f} | {r['steps']} | {duration(r['eta_seconds'])} | "
                     f"{r['status']} |")  # fmt: skip
    total = sum(r.get("gpu_hours") or 0 for r in rows)
    lines.append(f"\nTotal: {total:.2f} device-hours ({duration(total * 3600)}) for the stages measured.")
    return "\n".join(lines)


def measurement_argv(script: str, argv: list[str], producers: dict[str, list[str]], out: str) -> list[str]:
    """A command's arguments for a few measured steps at its configured size: random weights everywhere (the cost of
    a network does not depend on its values: no download, no earlier run needed), what earlier links write replaced
    by the architecture they would hold, the run's files in ``out``, validation and evaluation cut to a minimum."""
    given = dict(zip(argv[::2], argv[1::2]))  # the chain writes every flag as --name value
    drop = {"--output_dir", "--max_train_steps", "--init_generator", "--validation_data_dir", "--per_metric",
            "--weights", "--report_to", "--validation_steps", "--checkpointing_steps"}  # fmt: skip
    kept = [x for k, v in given.items() if k not in drop for x in (k, v)]
    extra = ["--output_dir", out, "--max_train_steps", str(MEASURED_STEPS), "--weights", "random", "--report_to",
             "none", "--validation_steps", "1000000", "--checkpointing_steps", "1000000"]  # fmt: skip
    if script == "train_sr.py":
        extra += ["--disc_weights", "random", "--num_validation_images", "1"]
        if "--per_metric" in given:  # the metric an earlier link trains: its backbone, at the same cost
            producer = dict(zip(producers[given["--per_metric"]][::2], producers[given["--per_metric"]][1::2]))
            extra += ["--per_backbone", producer["--backbone"]]
    else:
        extra += ["--max_eval_samples", "3"]
    return kept + extra


def stage_key(script: str, argv: list[str]) -> tuple:
    """What decides a training command's cost: its flags but the output, the schedule length, the loss weights and
    where its weights come from (a sweep point costs what its rec+per+adv run costs)."""
    given = dict(zip(argv[::2], argv[1::2]))
    ignore = {"--output_dir", "--max_train_steps", "--init_generator", "--weights", "--lr_milestones"}
    return (script, tuple(sorted((k, v) for k, v in given.items() if k not in ignore and not k.startswith("--lambda"))))


def measure_scorers(stages: dict, argv: list[str], device, processes: int) -> None:
    """Rows for the scorers of an ``evaluate.py sr`` command (one per scorer over all such commands): seconds per image
    at the test images' size (DIV2K validation's 2040x1356; builtin's 512x512), for every model x image it scores."""
    from .errors import MetricUnavailable

    given = dict(zip(argv[1::2], argv[2::2]))
    builtin = given["--datasets"] == "builtin"
    size = (512, 512) if builtin else (1356, 2040)
    images = int(given.get("--max_images", 13 if builtin else 100)) * len(given["--models"].split(","))
    batch = 8 if device.type == "cuda" else 1  # evaluate.py sr's default --batch_size
    for name in given["--metrics"].split(","):
        key = ("evaluate.py sr", name)
        if key in stages:
            stages[key]["steps"] += images
            stages[key]["runs"] += 1
            continue
        row = dict.fromkeys(STAGE_KEYS)
        row.update(stage=f"score {name}", script="evaluate.py", command=shlex.join(["evaluate.py", *argv]),
                   steps=images, runs=1)  # fmt: skip
        stages[key] = row
        print(f"preflight: measuring scorer {name} ({size[1]}x{size[0]} images)", flush=True)
        try:
            measure_stage(row, scorer_run(name, device, size), batch, device, processes)
        except MetricUnavailable as err:
            row["status"] = f"unavailable: {err.reason}"


def saved_parameters(folder: str) -> int:
    """Parameters of the models a run saved in ``folder`` (every model.safetensors but its checkpoints')."""
    from safetensors import safe_open

    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "checkpoints"]
        for f in files:
            if f == "model.safetensors":
                with safe_open(os.path.join(root, f), "pt") as tensors:
                    total += sum(math.prod(tensors.get_slice(k).get_shape()) for k in tensors.keys())
    return total
