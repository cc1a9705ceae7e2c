"""A study's preflight, part two: each distinct stage run for a few steps at its configured size to measure what the
whole schedule will cost (seconds per step, peak memory, ETA).

The pieces: the measurement of one stage (``measure_stage``, of a training command through ``TrainingRun``, of a
scorer through ``scorer_run``), what each configured run does besides its steps (``run_counts``: validations,
checkpoints) and the ETA formula (``fill_eta``: steps, validation images, checkpoint saves and calibration images,
each at its measured time). Part one, the sources a study needs, is ``asym.study.preflight``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import time
from collections.abc import Callable

from ..core.errors import UserError
from .chains import command_argv, command_flags
from .preflight import OK

MEASURED_STEPS = 4  # optimisation steps a preflight runs per stage; the first (warm-up) is not timed
STAGE_KEYS = ("stage", "script", "command", "runs", "params", "peak_memory_bytes", "batch_size",
              "gradient_accumulation_steps", "recommended", "processes", "seconds_per_step", "steps", "validations",
              "validation_images", "seconds_per_validation_image", "checkpoints", "seconds_per_checkpoint",
              "calibration_images", "seconds_per_calibration_image", "eta_seconds", "eta_parts", "eta_includes",
              "gpu_hours", "status")  # fmt: skip
# what a measured run logs beside its steps (``measure_stage`` takes each one's median into the row)
STEP_KEY = "perf/step_seconds"
EXTRA_TIMES = {"perf/validation_image_seconds": "seconds_per_validation_image",
               "perf/checkpoint_seconds": "seconds_per_checkpoint",
               "perf/calibration_image_seconds": "seconds_per_calibration_image"}  # fmt: skip
# the ETA's terms: (part, the row's seconds per unit, the row's count of units)
ETA_PARTS = (("steps", "seconds_per_step", "steps"),
             ("validation", "seconds_per_validation_image", "validation_images"),
             ("checkpoints", "seconds_per_checkpoint", "checkpoints"),
             ("calibration", "seconds_per_calibration_image", "calibration_images"))  # fmt: skip
LEFT_OUT = ("the other evaluate.py commands and the SR outputs evaluate.py sr computes, each run's final save, the "
            "one-off decode of the training images into the cache")  # fmt: skip


def seconds_per_step(history: list[dict], key: str = STEP_KEY) -> float:
    """The median of a run's logged times ``key`` (its steps' wall times by default), the first (warm-up, lazy
    initialisation) left out where there are others."""
    import statistics

    times = [logs[key] for logs in history if key in logs]
    if not times:
        raise UserError(f"the run logged no {key}: nothing to measure")
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
                  num_processes: int = 1, accumulate: bool = True) -> dict:  # fmt: skip
    """Fill ``row`` (``STAGE_KEYS``) by running ``run(batch_size)``: a few steps of one stage, which returns its logs
    and its parameter count. Seconds per step, the other times the run logged (``EXTRA_TIMES``: a validation image,
    a checkpoint save, a calibration image), peak memory, and the ETA on ``num_processes`` devices (``fill_eta``).

    Out of memory retries at smaller batches (halved, and a divisor of ``batch_size``) until a step fits; the row then
    recommends that batch with the gradient accumulation that keeps ``batch_size`` samples a step (``accumulate``;
    a scorer, False, needs only the smaller batch), and its ETA is of that recommended run (not a traceback)."""
    import torch

    tried = batch_size
    row["processes"] = num_processes
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
            tried = next(b for b in range(tried // 2, 0, -1) if batch_size % b == 0)
    accumulation = batch_size // tried if accumulate else 1
    row.update(params=params, peak_memory_bytes=memory.peak, batch_size=tried, gradient_accumulation_steps=accumulation)
    row.update({field: seconds_per_step(history, key) for key, field in EXTRA_TIMES.items()
                if any(key in logs for logs in history)})  # fmt: skip
    if not any(STEP_KEY in logs for logs in history):  # e.g. vgg16-r: its alpha/beta stay random, it only evaluates
        row.update(seconds_per_step=0.0, status=f"{OK}, trains no step (evaluated only)")
        return fill_eta(row)
    row["seconds_per_step"] = seconds_per_step(history)
    fill_eta(row)
    measured = f"measured in {time.perf_counter() - start:.0f} s"
    if tried == batch_size:
        row["status"] = f"{OK}, {measured}"
        return row
    flag = "--train_batch_size" if accumulate else "--batch_size"
    row["recommended"] = f"{flag} {tried}" + (f" --gradient_accumulation_steps {accumulation}" if accumulate else "")
    same = f" ({batch_size} samples a step, as configured; the ETA is of that run)" if accumulate else ""
    row["status"] = f"out of memory at {flag} {batch_size}: run it with {row['recommended']}{same}; {measured}"
    return row


def fill_eta(row: dict) -> dict:
    """The one ETA formula. A measured row's ``eta_parts``: its steps (each ``gradient_accumulation_steps`` steps of
    the batch that fits), validation images, checkpoint saves and calibration images, each count times its measured
    seconds; ``eta_seconds`` their sum, ``gpu_hours`` that on the row's ``processes`` devices, and ``eta_includes``
    the terms in words, with any whose time could not be measured."""
    parts, unmeasured = {}, []
    for part, seconds, count in ETA_PARTS:
        n = row.get(count) or 0
        if part != "steps" and not n:
            continue
        if row.get(seconds) is None:
            unmeasured.append(part)
            continue
        repeat = (row.get("gradient_accumulation_steps") or 1) if part == "steps" else 1
        parts[part] = row[seconds] * n * repeat
    row["eta_parts"], row["eta_seconds"] = parts, sum(parts.values())
    row["gpu_hours"] = row["eta_seconds"] * (row.get("processes") or 1) / 3600
    row["eta_includes"] = _eta_words(row, unmeasured)
    return row


def _eta_words(row: dict, unmeasured: list[str]) -> str:
    """What a row's ETA holds, term by term (``2,000 steps 1.0 h + 41 validations (4,100 images) 20 min``)."""
    accumulation = row.get("gradient_accumulation_steps") or 1
    steps = _count(row["steps"] or 0, "image" if row.get("script") == "evaluate.py" else "step")
    if accumulation > 1:
        steps += f" x {accumulation} accumulated batches of {row['batch_size']}"
    words = {"steps": steps,
             "validation": f"{_count(row.get('validations') or 0, 'validation')} "
                           f"({_count(row.get('validation_images') or 0, 'image')})",
             "checkpoints": _count(row.get("checkpoints") or 0, "checkpoint save"),
             "calibration": f"calibration ({_count(row.get('calibration_images') or 0, 'image')})"}  # fmt: skip
    text = " + ".join(f"{words[part]} {duration(seconds)}" for part, seconds in row["eta_parts"].items())
    return text + (f"; not measured: {', '.join(unmeasured)}" if unmeasured else "")


def _count(n: int, word: str) -> str:
    """``n word``, plural unless one, with thousands separators."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def eta_total(rows: list[dict]) -> tuple[float, dict[str, float], str]:
    """The measured rows' device-hours: in all, per ETA part, and in words, with what the total leaves out."""
    parts: dict[str, float] = {}
    for row in rows:
        for part, seconds in (row.get("eta_parts") or {}).items():
            parts[part] = parts.get(part, 0.0) + seconds * (row.get("processes") or 1) / 3600
    total = sum(row.get("gpu_hours") or 0 for row in rows)
    partial = [row["stage"] for row in rows if row.get("eta_parts") is None or "not measured" in row["eta_includes"]]
    words = " + ".join(f"{part} {duration(hours * 3600)}" for part, hours in parts.items())
    left_out = LEFT_OUT + (f"; the stages not measured, or not in full: {', '.join(partial)}" if partial else "")
    return total, parts, f"{words} of device time; left out: {left_out}"


def scorer_run(name: str, device, size: tuple[int, int], calibration_size: tuple[int, int] | None = None,
               batches: int = 4) -> Callable[[int], tuple[list[dict], int]]:  # fmt: skip
    """A ``measure_stage`` run of one evaluation scorer: ``batches`` batches of random ``size`` images scored (a
    full-reference one against other random images), each batch's seconds per image logged as a step; with
    ``calibration_size``, as many single images of that size too (``perf/calibration_image_seconds``: evaluate.py
    scores a calibration set one image at a time)."""
    import torch

    from ..metrics import create_metric

    def timed_call(metric, images) -> float:
        start = time.perf_counter()
        metric(*images)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    def run(batch: int) -> tuple[list[dict], int]:
        metric = create_metric(name, device)
        network = getattr(metric, "model", metric)  # a pyiqa / VLM / asym model inside the scorer
        params = sum(p.numel() for p in network.parameters()) if isinstance(network, torch.nn.Module) else 0
        generator, history = torch.Generator().manual_seed(0), []
        with torch.no_grad():
            for _ in range(batches):
                images = torch.rand(2 if metric.kind == "fr" else 1, batch, 3, *size, generator=generator).to(device)
                history.append({STEP_KEY: timed_call(metric, images) / batch})
            for _ in range(batches if calibration_size else 0):
                image = torch.rand(1, 1, 3, *calibration_size, generator=generator).to(device)
                history.append({"perf/calibration_image_seconds": timed_call(metric, image)})
        return history, params

    return run


def duration(seconds: float) -> str:
    """``seconds`` in the unit a person reads it in: s, min, h or days."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def stage_table(rows: list[dict]) -> str:
    """The measured stages as Markdown, with what each ETA holds, and the total. Peak memory: CUDA's max allocated on a
    GPU, the process's resident set on CPU (the Python process itself included)."""
    lines = ["| stage | runs | params | peak memory | s / step | steps | ETA | ETA includes | status |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        if r["seconds_per_step"] is None:
            lines.append(f"| {r['stage']} | {r['runs']} | | | | {r['steps']} | | | {r['status']} |")
            continue
        lines.append(f"| {r['stage']} | {r['runs']} | {r['params'] / 1e6:.1f} M | {r['peak_memory_bytes'] / 2**30:.2f} "
                     f"GiB | {r['seconds_per_step']:.3f} | {r['steps']} | {duration(r['eta_seconds'])} | "
                     f"{r['eta_includes']} | {r['status']} |")  # fmt: skip
    total, _, words = eta_total(rows)
    lines.append(f"\nTotal: {total:.2f} device-hours ({duration(total * 3600)}) for the stages measured: {words}.")
    return "\n".join(lines)


def measurement_argv(script: str, argv: list[str], producers: dict[str, list[str]], out: str) -> list[str]:
    """A command's arguments for a few measured steps at its configured size: random weights everywhere (the cost of
    a network does not depend on its values: no download, no earlier run needed), what earlier links write replaced
    by the architecture they would hold, the run's files in ``out``, validation and evaluation cut to a minimum (the
    runs validate at their end all the same), one checkpoint saved after the last step (timed, not in a step)."""
    given = command_flags(argv)
    drop = {"--output_dir", "--max_train_steps", "--init_generator", "--validation_data_dir", "--per_metric",
            "--weights", "--report_to", "--validation_steps", "--checkpointing_steps"}  # fmt: skip
    kept = command_argv({k: v for k, v in given.items() if k not in drop})
    extra = ["--output_dir", out, "--max_train_steps", str(MEASURED_STEPS), "--weights", "random", "--report_to",
             "none", "--validation_steps", "1000000", "--checkpointing_steps", str(MEASURED_STEPS)]  # fmt: skip
    if script == "train_sr.py":
        extra += ["--disc_weights", "random", "--num_validation_images", "1"]
        if "--per_metric" in given:  # the metric an earlier link trains: its backbone, at the same cost
            producer = command_flags(producers[given["--per_metric"]])
            extra += ["--per_backbone", producer["--backbone"]]
    else:
        extra += ["--max_eval_samples", "3"]
    return kept + extra


@contextlib.contextmanager
def timed_calls(module, name: str, log: list[dict], key: str, per_item: bool = False):
    """``module.<name>`` timed while the block runs: each call's wall time appended to ``log`` as ``{key: seconds}``
    (per item of its second argument, the dataset an ``evaluate`` scores, with ``per_item``); put back after."""
    real = getattr(module, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = real(*args, **kwargs)
        seconds = time.perf_counter() - start
        dataset = args[1] if len(args) > 1 else kwargs.get("dataset")
        log.append({key: seconds / max(len(dataset), 1) if per_item else seconds})
        return result

    setattr(module, name, timed)
    try:
        yield
    finally:
        setattr(module, name, real)


class TrainingRun:
    """A ``measure_stage`` run of one training command (``module``: its script, imported; ``parsed``: its arguments):
    ``launch(script, argv)`` of ``measurement_argv`` at a batch size, in ``folder``, with the script's ``evaluate``
    (each validation or test pass, per image scored) and ``save_checkpoint`` timed into the logs it returns. After a
    run, ``evaluation_sizes`` holds what a validation and a test pass of the configured run score."""

    def __init__(self, module, parsed, argv: list[str], producers: dict[str, list[str]], folder: str,
                 launch: Callable[[str, list[str]], object]):  # fmt: skip
        self.module, self.parsed, self.argv, self.producers = module, parsed, argv, producers
        self.script, self.folder, self.launch = f"{module.__name__}.py", folder, launch
        self.evaluation_sizes: tuple[int, int] | None = None

    def __call__(self, batch: int) -> tuple[list[dict], int]:
        out = os.path.join(self.folder, f"b{batch}")
        argv = [*measurement_argv(self.script, self.argv, self.producers, out), "--train_batch_size", str(batch)]
        timings: list[dict] = []
        with timed_calls(self.module, "evaluate", timings, "perf/validation_image_seconds", per_item=True), \
                timed_calls(self.module, "save_checkpoint", timings, "perf/checkpoint_seconds"):  # fmt: skip
            result = self.launch(self.script, argv)
        history = result if isinstance(result, list) else result["history"]
        self.evaluation_sizes = evaluation_sizes(self.script, self.parsed, out)
        return [*history, *timings], saved_parameters(out)


def evaluation_sizes(script: str, parsed, out: str) -> tuple[int, int] | None:
    """(images a validation pass scores, images a test pass scores) in the configured run ``parsed``: train_sr.py's
    whole validation images (its --validation_data_dir, else the --num_validation_images it holds out; no test), an
    IQA script's validation and test splits as its measured run in ``out`` wrote them (split.json), at most
    --max_eval_samples each. None where the measured run wrote no split."""
    from ..core.images import image_files

    if script == "train_sr.py":
        if not parsed.validation_data_dir:
            return parsed.num_validation_images, 0
        return len(image_files(parsed.validation_data_dir)), 0
    path = os.path.join(out, "split.json")
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        split = json.load(file)
    cap = parsed.max_eval_samples or math.inf
    return int(min(len(split["validation"]), cap)), int(min(len(split["test"]), cap))


def run_counts(script: str, parsed, sizes: tuple[int, int] | None, trains: bool = True) -> dict:
    """What one configured run (``parsed``) does, from its arguments as the scripts schedule it: its steps (none if
    it ``trains`` no step), validation and test passes and the images they score (``sizes``: per validation, per
    test pass; None: unknown), and checkpoint saves. train_sr.py validates every --validation_steps and once at the
    end; train_metric.py / train_iqa.py before the first step, every --validation_steps and at the last step, then
    test (train_iqa.py validates its kept model once more first)."""
    steps = (parsed.max_train_steps or 0) if trains else 0
    periodic = steps // parsed.validation_steps
    if script == "train_sr.py":
        validations, tests = periodic + 1, 0
    else:
        last = 1 if steps % parsed.validation_steps else 0
        validations, tests = 1 + periodic + last + (script == "train_iqa.py"), 1
    images = None if sizes is None else validations * sizes[0] + tests * sizes[1]
    return {"steps": steps, "validations": validations + tests, "validation_images": images,
            "checkpoints": steps // parsed.checkpointing_steps}  # fmt: skip


def add_run(row: dict, counts: dict) -> dict:
    """One more run of a stage: its ``counts`` (``run_counts``, or a scorer's images) added to the row's."""
    row["runs"] = (row.get("runs") or 0) + 1
    for key, value in counts.items():
        row[key] = None if value is None else (row.get(key) or 0) + value
    return row


def stage_key(script: str, argv: list[str]) -> tuple:
    """What decides a training command's cost: its flags but the output, the schedule length, the loss weights and
    where its weights come from (a sweep point costs what its rec+per+adv run costs); the speed options count
    (``--compile``, ``--channels_last``, ...: a switch is True)."""
    given = command_flags(argv)
    ignore = {"--output_dir", "--max_train_steps", "--init_generator", "--weights", "--lr_milestones"}
    return (script, tuple(sorted((k, v) for k, v in given.items() if k not in ignore and not k.startswith("--lambda"))))


def calibration_set(source: str) -> tuple[int, tuple[int, int]]:
    """(images, (height, width) of the first) of an NR dataset ``evaluate.py sr --calibration_dataset`` fits its
    1..100 maps on (score files and one image header read, no pixels)."""
    from ..iqa.data import load_nr_dataset

    dataset = load_nr_dataset(source)
    return len(dataset), dataset.subset([0]).image_sizes()[0]


def measure_scorers(stages: dict, argv: list[str], device) -> None:
    """Rows for the scorers of an ``evaluate.py sr`` command (one per scorer over all such commands; one process, as
    the chain runs evaluate.py): seconds per image at the test images' size (DIV2K validation's 2040x1356; builtin's
    512x512), for every model x image it scores, and where the command fits the 1..100 maps (--calibration_dataset)
    seconds per calibration image at that set's size, for each of its images an NR scorer scores."""
    from ..core.errors import MetricUnavailable
    from ..metrics import metric_info

    given = dict(zip(argv[1::2], argv[2::2]))
    builtin = given["--datasets"] == "builtin"
    size = (512, 512) if builtin else (1356, 2040)
    images = int(given.get("--max_images", 13 if builtin else 100)) * len(given["--models"].split(","))
    calibration = calibration_set(given["--calibration_dataset"]) if "--calibration_dataset" in given else None
    batch = 8 if device.type == "cuda" else 1  # evaluate.py sr's default --batch_size
    for name in given["--metrics"].split(","):
        try:  # evaluate.py fits maps for the NR scorers only (an unknown name is tried as one)
            nr = metric_info(name).kind == "nr"
        except UserError:
            nr = True
        calibrated = calibration if nr else None
        key = ("evaluate.py sr", name)
        if key not in stages:
            row = dict.fromkeys(STAGE_KEYS)
            row.update(stage=f"score {name}", script="evaluate.py", command=shlex.join(["evaluate.py", *argv]))
            stages[key] = row
            print(f"preflight: measuring scorer {name} ({size[1]}x{size[0]} images)", flush=True)
            try:
                run = scorer_run(name, device, size, calibrated[1] if calibrated else None)
                measure_stage(row, run, batch, device, accumulate=False)
            except MetricUnavailable as err:
                row["status"] = f"unavailable: {err.reason}"
        add_run(stages[key], {"steps": images, "calibration_images": calibrated[0] if calibrated else 0})


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
