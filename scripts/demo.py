"""The README's CPU demo, and its two pictures: the paper's two stages on ``builtin`` with the ``tiny`` generator.

    python scripts/demo.py                 # the runs (in runs/demo), then docs/demo_grid.png, docs/demo_validation.png
    python scripts/demo.py --dry_run       # print the commands

Stage 1 trains with L1 alone (``--loss rec``); stage 2 starts from it (``--init_generator``) with the perceptual loss
(``rec+per``) and with the discriminator too (``rec+per+adv``); ``evaluate.py grid`` then shows LR | bicubic | stage 1
| stage 2 | HR on the two held-out photographs. Those are the README's commands, typed as there (``accelerate launch``
for each run). For the plot, ``rec`` and ``rec+adv`` also continue from stage 1 for as many steps, so that the four
loss settings' validation Y-PSNR (and SSIM) can be drawn over the stage-2 steps, bicubic's as a line.

Offline (this repository's CI machine) the VGG-16 of the perceptual loss has random weights (the run says so and
records it in the card); with the ImageNet weights the same commands give the paper's picture.
"""

from __future__ import annotations

import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the scripts and asym/ live at the repository root, one level up
    sys.path.insert(0, ROOT)
from asym.core.errors import UserError, run_cli  # noqa: E402
from asym.core.training import check_output_dir  # noqa: E402

STAGE2_LOSSES = ("rec+per", "rec+per+adv")  # the README's stage 2
PLOT_LOSSES = ("rec", "rec+per", "rec+adv", "rec+per+adv")  # the plot's four settings
HELD_OUT = "rocket,immunohistochemistry"  # the 2 photographs train_sr.py holds out of builtin at --seed 0


def demo_commands(out: str, plot: bool = False) -> list[tuple[str, list[str]]]:
    """(script, arguments) of the README demo; with ``plot`` also the runs only the plot needs."""
    common = ["--model", "tiny", "--crop_size", "64"]
    cmds = [("train_sr.py", [*common, "--loss", "rec", "--max_train_steps", "1000", "--validation_steps", "100",
                             "--output_dir", f"{out}/stage1"])]  # fmt: skip
    losses = PLOT_LOSSES if plot else STAGE2_LOSSES
    for loss in losses:
        cmds.append(("train_sr.py", [*common, "--loss", loss, "--init_generator", f"{out}/stage1", "--max_train_steps",
                                     "100", "--validation_steps", "10", "--output_dir", f"{out}/{loss}"]))  # fmt: skip
    models = ",".join(["bicubic", f"{out}/stage1", *(f"{out}/{loss}" for loss in STAGE2_LOSSES)])
    cmds.append(("evaluate.py", ["grid", "--models", models, "--images", HELD_OUT, "--size", "192",
                                 "--output_dir", out]))  # fmt: skip
    return cmds


def command_line(script: str, argv: list[str]) -> str:
    """As a user types it: training scripts through ``accelerate launch``, evaluation with ``python``."""
    launcher = ["python"] if script == "evaluate.py" else ["accelerate", "launch"]
    return shlex.join([*launcher, script, *argv])


def validation_curve(run: str, tag: str) -> dict[int, float]:
    """``{step: value}`` of a scalar a train_sr.py run logged to tensorboard (``<run>/logs``); a resumed run's later
    files win."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curve = {}
    for path in sorted(glob.glob(os.path.join(run, "logs", "**", "events.out.tfevents.*"), recursive=True)):
        events = EventAccumulator(path, size_guidance={"scalars": 0})
        events.Reload()
        if tag in events.Tags()["scalars"]:
            curve |= {e.step: e.value for e in events.Scalars(tag)}
    if not curve:
        raise UserError(f"{run} logged no {tag}: run it with --report_to tensorboard (the default)")
    return curve


def plot_validation(out: str, path: str) -> None:
    """Validation Y-PSNR and SSIM over the stage-2 steps for the four loss settings, from stage 1's final value at
    step 0, with bicubic's on the same images as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
    for ax, metric, label in zip(axes, ("psnr_y", "ssim_y"), ("Y-PSNR (dB)", "Y-SSIM")):
        start = validation_curve(f"{out}/stage1", f"val/{metric}")
        for loss in PLOT_LOSSES:
            curve = {0: start[max(start)]} | validation_curve(f"{out}/{loss}", f"val/{metric}")
            ax.plot(list(curve), list(curve.values()), label=loss, marker=".")
        bicubic = validation_curve(f"{out}/stage1", f"val/bicubic_{metric}")
        ax.axhline(bicubic[max(bicubic)], color="gray", linestyle="--", label="bicubic")
        ax.set(xlabel="stage-2 step (from stage 1)", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("tiny x4 on builtin (CPU demo), 2 held-out photographs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="runs/demo", help="where the runs and the grid go (a new folder)")
    parser.add_argument("--docs_dir", default=os.path.join(ROOT, "docs"), help="where the two PNGs are copied")
    parser.add_argument("--dry_run", action="store_true", help="print the commands instead of running them")
    return parser.parse_args(input_args)


def main(args) -> None:
    if not args.dry_run:
        check_output_dir(args.output_dir)  # before the first run: an unwritable folder costs nothing
        check_output_dir(args.docs_dir)
        if os.path.isdir(args.output_dir) and os.listdir(args.output_dir):
            raise UserError(f"{args.output_dir} is not empty: pass a new --output_dir (the figures must come from "
                            "fresh runs, not from earlier ones)")  # fmt: skip
    commands = demo_commands(args.output_dir, plot=True)
    for i, (script, argv) in enumerate(commands, 1):
        print(f"[{i}/{len(commands)}] {command_line(script, argv)}", flush=True)
        if args.dry_run:
            continue
        start = time.time()
        launcher = [sys.executable] if script == "evaluate.py" else [sys.executable, "-m", "accelerate.commands.launch"]
        subprocess.run([*launcher, os.path.join(ROOT, script), *argv], check=True)
        print(f"[{i}/{len(commands)}] done in {time.time() - start:.0f} s", flush=True)
    if args.dry_run:
        return
    os.makedirs(args.docs_dir, exist_ok=True)
    shutil.copyfile(os.path.join(args.output_dir, "grid.png"), os.path.join(args.docs_dir, "demo_grid.png"))
    plot_validation(args.output_dir, os.path.join(args.docs_dir, "demo_validation.png"))
    print(f"written: {args.docs_dir}/demo_grid.png, {args.docs_dir}/demo_validation.png")


if __name__ == "__main__":
    run_cli(main, parse_args())
