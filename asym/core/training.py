"""What the training scripts share: common flags, the Accelerator, atomic checkpoints, resume, and the
entry point (``run_cli``: a Ctrl-C ends with where the last checkpoint is).

Kept out of the scripts so ``train_sr.py``, ``train_metric.py`` and ``train_iqa.py`` stay readable top to
bottom without copying boilerplate between them.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from .atomic import honour_umask
from .errors import UserError, reading
from .errors import run_cli as run_entry_point
from .flags import non_negative_float, non_negative_int, positive_float, positive_int, seed_int, unit_interval
from .progress import LogHandler

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("asym")
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


# --- Common flags and the output folder ----------------------------------------------------------------------------

# the asym class each training script saves at the root of its --output_dir (read back by ``hub.saved_class``)
RUN_SCRIPTS = {"SRModel": "train_sr.py", "DISTS": "train_metric.py", "LPIPS": "train_metric.py --objective 2afc",
               "IQAModel": "train_iqa.py", "Classifier": "train_robust.py"}  # fmt: skip


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


def add_common_args(parser: argparse.ArgumentParser, default_output_dir: str) -> None:
    """Flags every training script has, with the diffusers/transformers examples' names. ``default_output_dir`` is the
    script's own (``output/sr``, ``output/metric``, ...): bare runs of two scripts must not share one folder."""
    g = parser.add_argument_group("training run")
    g.add_argument("--output_dir", default=default_output_dir,
                   help=f"where the model, checkpoints and logs are written (default: {default_output_dir}; a folder "
                        "holding another kind of model is refused)")  # fmt: skip
    g.add_argument("--seed", type=seed_int, default=0,
                   help="seed of every random choice (weights, data order, crops), in [0, 2^32)")  # fmt: skip
    g.add_argument("--train_batch_size", type=positive_int, default=4, help="batch size per device")
    g.add_argument("--max_train_steps", type=positive_int, default=1000, help="optimisation steps in total")
    g.add_argument("--learning_rate", type=positive_float, default=2e-4, help="initial learning rate (Adam)")
    g.add_argument("--adam_beta1", type=unit_interval, default=0.9, help="Adam's beta1, in [0, 1)")
    g.add_argument("--adam_beta2", type=unit_interval, default=0.999, help="Adam's beta2, in [0, 1)")
    g.add_argument("--gradient_accumulation_steps", type=positive_int, default=1, help="batches per optimiser step")
    g.add_argument("--max_grad_norm", type=non_negative_float, default=0.0, help="gradient clipping norm (0: off)")
    g.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None,
                   help="autocast dtype; default: what `accelerate config` says")  # fmt: skip
    g.add_argument("--dataloader_num_workers", type=non_negative_int, default=None,
                   help="data loading processes per training process (0: load in the main process; default: "
                        "min(8, CPUs per process) on a GPU, 0 on CPU); never changes the batches")  # fmt: skip
    g.add_argument("--checkpointing_steps", type=positive_int, default=500,
                   help="save a resumable state every N steps")  # fmt: skip
    g.add_argument(
        "--checkpoints_total_limit",
        type=non_negative_int,
        default=3,
        help="keep the newest N checkpoints (0: all; a SwinIR + VGG-16 discriminator state: 0.32 GB)",
    )
    g.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint-N folder")
    g.add_argument("--report_to", default="tensorboard", help="tensorboard, wandb, all or none")
    g.add_argument("--logging_dir", default="logs", help="log folder, relative to --output_dir")
    g.add_argument("--push_to_hub", action="store_true", help="upload the final model to the Hub")
    g.add_argument("--hub_model_id", default=None, help="Hub repo for --push_to_hub (default: output_dir name)")
    g.add_argument("--license", default="unknown",
                   help="a Hub license id for the saved weights, e.g. mit, apache-2.0, cc-by-nc-4.0 (written in the "
                        "model card; the weights inherit the terms of the training data)")  # fmt: skip
    s = parser.add_argument_group("speed (GPU options, off by default: the README's performance section says why)")
    s.add_argument("--compile", action="store_true",
                   help="torch.compile the trained networks (Accelerate's dynamo plugin, inductor) and the frozen "
                        "loss networks; the first steps compile (minutes)")  # fmt: skip
    s.add_argument("--compile_mode", choices=COMPILE_MODES, default="default",
                   help="torch.compile's mode with --compile")  # fmt: skip
    s.add_argument("--channels_last", action="store_true",
                   help="networks and batches in channels-last memory format (faster convolutions on GPUs, mostly "
                        "under bf16 / fp16)")  # fmt: skip
    s.add_argument(
        "--allow_tf32",
        action="store_true",
        help="TF32 matmuls and convolutions in float32 on Ampere and later GPUs (10-bit mantissa)",
    )


def check_output_dir(output_dir: str, saves: type | None = None) -> None:
    """``--output_dir`` must be a folder, or creatable as one, and (with ``saves``, the class a training run writes at
    its root) hold no model of another class: checked before any work, so a typo costs nothing and no run replaces
    another kind of model (a resume or a re-run of the same kind is allowed).

    Writability is tried, not inferred from permission bits (``os.access`` says yes to root everywhere, and to
    ``/proc``): a temporary folder is made and removed in the nearest existing folder on the path.
    """
    from .hub import saved_class

    if not output_dir:
        raise UserError("--output_dir is empty: name a folder")
    path = os.path.abspath(output_dir)
    if os.path.lexists(path) and not os.path.exists(path):
        raise UserError(f"--output_dir {output_dir} is a broken symbolic link: choose another path")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--output_dir {output_dir} exists and is not a folder: choose another path")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not _can_write_in(parent):
        raise UserError(f"--output_dir {output_dir} cannot be created ({parent} is not a writable folder)")
    if saves is None or not os.path.isdir(path):
        return
    saved = saved_class(path)
    if saved is not None and saved != saves.__name__:
        what = f"an asym {saved} (a {RUN_SCRIPTS[saved]} run)" if saved in RUN_SCRIPTS else \
            f"an asym {saved}" if saved else "a config.json naming no asym class"  # fmt: skip
        raise UserError(f"--output_dir {output_dir} holds {what}, not the {saves.__name__} this run writes: choose "
                        "another --output_dir (or remove that folder)")  # fmt: skip


def _can_write_in(folder: str) -> bool:
    """Whether a folder can be created inside ``folder`` (tried, then removed)."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".asym-write-test-", dir=folder))
    except OSError:
        return False
    return True


def create_accelerator(args: argparse.Namespace, saves: type):
    """An ``Accelerator`` set up from the common flags (tracker folder under ``output_dir``), once ``--output_dir`` is
    known to be writable and free of another class's model (``saves``: the class the run writes there)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    check_output_dir(args.output_dir, saves)
    report_to = None if args.report_to == "none" else args.report_to
    if args.allow_tf32:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    accelerator = Accelerator(
        dynamo_plugin=compile_plugin(args.compile_mode) if args.compile else None,
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=report_to,
        project_config=ProjectConfiguration(
            project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, args.logging_dir)
        ),
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:  # each process would train alone and overwrite the others' files
        raise UserError(
            f"{launched} processes were launched but Accelerate set up {accelerator.num_processes} "
            f"({accelerator.distributed_type.value}); without GPUs, run several CPU processes with "
            "ACCELERATE_USE_CPU=1 (or choose multi-CPU in `accelerate config`)"
        )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING,
                        handlers=[LogHandler()])  # where the bars are, never inside one  # fmt: skip
    logger.setLevel(logging.INFO if accelerator.is_main_process else logging.WARNING)
    return accelerator


def compile_plugin(mode: str = "default"):
    """Accelerate's dynamo plugin for ``--compile``: ``prepare`` compiles each trained network with inductor."""
    from accelerate.utils import TorchDynamoPlugin

    return TorchDynamoPlugin(backend="inductor", mode=mode)


def apply_channels_last(args, *modules: torch.nn.Module) -> None:
    """With ``--channels_last``, every parameter and buffer of ``modules`` in channels-last memory format (in place;
    convolutions then run channels-last on their inputs too); without it, nothing."""
    if args.channels_last:
        import torch

        for module in modules:
            module.to(memory_format=torch.channels_last)


def plain_model(accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """The network itself, out of every wrapper ``prepare`` put around it (DDP, autocast, torch.compile): what is
    saved, carries its card and runs validation at any image size without recompiling."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


def list_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """Complete checkpoints as (step, path), oldest first; half-written temporary folders are ignored."""
    folder = os.path.join(output_dir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    found = [
        (int(m.group(1)), os.path.join(folder, name)) for name in os.listdir(folder) if (m := CHECKPOINT.match(name))
    ]
    return sorted(found)


def save_checkpoint(accelerator, output_dir: str, step: int, total_limit: int | None) -> str:
    """Write ``checkpoints/checkpoint-<step>`` atomically, then drop the oldest beyond ``total_limit``.

    The state goes to a temporary folder that is renamed into place only when complete, so a run killed
    mid-save leaves the previous checkpoint as ``latest``.
    """
    folder = os.path.join(output_dir, "checkpoints")
    final = os.path.join(folder, f"checkpoint-{step}")
    tmp = os.path.join(folder, f".checkpoint-{step}.tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(tmp)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        honour_umask(tmp)  # Accelerate saves models through safetensors: 0600
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        if total_limit:  # None or 0: keep every checkpoint
            for _, old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def resume(accelerator, args: argparse.Namespace) -> int:
    """Load ``--resume_from_checkpoint`` (``latest`` or a folder) and return the step it was saved at.

    A fresh run (no ``--resume_from_checkpoint``) into a folder that holds an earlier run's checkpoints is refused:
    its own checkpoints would replace those of the same step, prune the rest and leave ``latest`` pointing at the
    other run's. A checkpoint past ``--max_train_steps`` is refused too: the run would train nothing.
    """
    if not args.resume_from_checkpoint:
        earlier = list_checkpoints(args.output_dir)
        if earlier:
            raise UserError(f"--output_dir {args.output_dir} holds an earlier run's checkpoints (up to "
                            f"{os.path.basename(earlier[-1][1])}): pass --resume_from_checkpoint latest to continue "
                            "it, or another --output_dir (or remove its checkpoints/) to start afresh")  # fmt: skip
        return 0
    if args.resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(args.output_dir)
        if not checkpoints:  # a warning: the user asked to continue, and the run starts over
            logger.warning("--resume_from_checkpoint latest: no checkpoint in %s yet, training from step 0",
                           os.path.join(args.output_dir, "checkpoints"))  # fmt: skip
            return 0
        step, path = checkpoints[-1]
    else:
        path = args.resume_from_checkpoint.rstrip("/")
        match = CHECKPOINT.match(os.path.basename(path))
        if not os.path.isdir(path) or not match:
            raise UserError(f"--resume_from_checkpoint {path!r} is not a checkpoint-N folder (or use 'latest')")
        step = int(match.group(1))
    if step > args.max_train_steps:
        raise UserError(f"checkpoint {path} is at step {step}, past --max_train_steps {args.max_train_steps}: raise "
                        "--max_train_steps to continue that run")  # fmt: skip
    with reading(path, "checkpoint"):  # truncated, foreign, or written by a run with other models / flags
        accelerator.load_state(path)
    logger.info("resumed from %s (step %d)", path, step)
    return step


def interrupted_line(args: argparse.Namespace) -> str:
    """The line a training run stopped by Ctrl-C ends with: where its last checkpoint is and how to resume."""
    checkpoints = list_checkpoints(args.output_dir)
    if not checkpoints:
        return (f"interrupted before the first checkpoint (one every --checkpointing_steps {args.checkpointing_steps} "
                "steps): nothing to resume, the same command starts again from step 0")  # fmt: skip
    step, path = checkpoints[-1]
    how = ("run the same command again" if args.resume_from_checkpoint == "latest"
           else "run the same command with --resume_from_checkpoint latest")  # fmt: skip
    return f"interrupted; the last checkpoint is {path} (step {step}): to continue from it, {how}"


def run_cli(main: Callable, args: argparse.Namespace):
    """The training scripts' entry point: ``asym.core.errors.run_cli`` (a ``UserError`` is one line and exit status 2),
    whose Ctrl-C line is ``interrupted_line``."""
    return run_entry_point(main, args, interrupted=interrupted_line)


def evenly_spaced(indices: list[int], n: int) -> list[int]:
    """At most ``n`` of ``indices``, spread over the whole list (quick evaluations that still see every part)."""
    if len(indices) <= n:
        return indices
    return [indices[round(i * (len(indices) - 1) / max(n - 1, 1))] for i in range(n)]


__all__ = [
    "add_common_args",
    "check_output_dir",
    "COMPILE_MODES",
    "create_accelerator",
    "evenly_spaced",
    "interrupted_line",
    "compile_plugin",
    "list_checkpoints",
    "apply_channels_last",
    "plain_model",
    "RUN_SCRIPTS",
    "resume",
    "run_cli",
    "save_checkpoint",
]
