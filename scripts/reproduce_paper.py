"""Every command of the asymmetry study, in order; ``--smoke`` runs the whole chain on ``builtin`` with tiny models.

    python scripts/reproduce_paper.py --data data --output_dir runs/paper --dry_run   # print the paper's commands
    python scripts/reproduce_paper.py --data data --output_dir runs/paper             # run them (a GPU machine)
    python scripts/reproduce_paper.py --smoke --output_dir runs/smoke                 # the chain on CPU, minutes

The chain: DISTS-style metrics per backbone (Table 4) -> SR models trained with each metric as the loss under the
four loss settings (Table 1, evaluated by NR-IQA models on a 1..100 scale) -> is a good assessor a good loss (Fig. 3)
-> quality models from random / ImageNet / GAN-discriminator weights (Table 2 FR, Fig. 5/8 NR) -> the adversarial
weight sweep (Fig. 7). ``--data`` holds the releases as their layouts name them: ``kadid10k``, ``koniq10k``,
``tid2013``, ``liu13``, ``ma17``, ``tqd``, ``DIV2K_train_HR``, ``DIV2K_valid_HR``.

The real commands go through ``accelerate launch`` (configure it once with ``accelerate config``). ``--smoke`` runs
the same scripts in this process (no launcher, tiny generator, a few steps, a handful of evaluation images): it checks
that every link of the chain runs and hands its files to the next, and its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the scripts and asym/ live at the repository root, one level up
    sys.path.insert(0, ROOT)
LOSSES = ("per", "rec+per", "per+adv", "rec+per+adv")
METRIC_BACKBONES = ("vgg16-r", "vgg16", "resnet50", "convnext", "clip-vit", "swin-t")  # Table 4
GAN_BACKBONES = ("vgg16", "resnet50", "dinov2")  # Tables 2 and 3, Figs. 5, 7, 8
NR_METRICS = "maniqa,liqe,deqa,visualquality-r1"  # Table 1


def paper_commands(data: str, out: str) -> list[tuple[str, list[str]]]:
    """(script, arguments) of the full study on real data, with the paper's settings (the scripts' defaults)."""
    fr_sets = ",".join(f"{data}/{d}" for d in ("tid2013", "liu13", "ma17", "tqd"))
    div2k = ["--train_data_dir", f"{data}/DIV2K_train_HR", "--validation_data_dir", f"{data}/DIV2K_valid_HR"]
    cmds = [("train_metric.py", ["--backbone", b, "--dataset_name", f"{data}/kadid10k", "--mixed_precision", "bf16",
                                 "--output_dir", f"{out}/metric-{b}"]) for b in METRIC_BACKBONES]  # fmt: skip
    metrics = ",".join(f"{out}/metric-{b}" for b in METRIC_BACKBONES)
    cmds.append(("evaluate.py", ["fr", "--metrics", metrics, "--datasets", fr_sets, "--output_dir", f"{out}/table4"]))
    cmds.append(("train_sr.py", ["--loss", "rec", "--max_train_steps", "100000", *div2k, "--mixed_precision", "bf16",
                                 "--output_dir", f"{out}/sr-stage1"]))  # fmt: skip
    stage2 = []
    for b in METRIC_BACKBONES:
        for loss in LOSSES:
            stage2.append(f"{out}/sr-{b}-{loss}")
            cmds.append(("train_sr.py", ["--loss", loss, "--per_metric", f"{out}/metric-{b}", "--init_generator",
                                         f"{out}/sr-stage1", "--max_train_steps", "400000", *div2k, "--mixed_precision",
                                         "bf16", "--output_dir", stage2[-1]]))  # fmt: skip
    cmds.append(("evaluate.py", ["sr", "--models", ",".join([*stage2, f"{out}/sr-stage1", "bicubic", "hr"]),
                                 "--metrics", NR_METRICS,
                                 "--datasets", f"{data}/DIV2K_valid_HR", "--calibration_dataset", f"{data}/koniq10k",
                                 "--output_dir", f"{out}/table1"]))  # fmt: skip
    cmds.append(("evaluate.py", ["correlation", "--fr_results", f"{out}/table4/fr_results.json", "--sr_results",
                                 f"{out}/table1/sr_results.json", "--output_dir", f"{out}/fig3"]))  # fmt: skip
    fr_runs, nr_runs, sweep = [], [], []
    for b in GAN_BACKBONES:
        gan = f"{out}/gan-{b}"
        cmds.append(("train_sr.py", ["--loss", "rec+per+adv", "--disc_backbone", b, "--init_generator",
                                     f"{out}/sr-stage1", "--max_train_steps", "400000", *div2k, "--mixed_precision",
                                     "bf16", "--output_dir", gan]))  # fmt: skip
        for weights, name in (("random", "random"), ("pretrained", "imagenet"), (f"gan:{gan}", "gan")):
            fr_runs.append(f"{out}/fr-{b}-{name}")
            cmds.append(("train_metric.py", ["--backbone", b, "--weights", weights, "--dataset_name",
                                             f"{data}/kadid10k", "--mixed_precision", "bf16", "--output_dir",
                                             fr_runs[-1]]))  # fmt: skip
            for d in ("kadid10k", "koniq10k"):
                nr_runs.append(f"{out}/nr-{d}-{b}-{name}")
                cmds.append(("train_iqa.py", ["--mode", "nr", "--backbone", b, "--weights", weights, "--dataset_name",
                                              f"{data}/{d}", "--mixed_precision", "bf16", "--output_dir",
                                              nr_runs[-1]]))  # fmt: skip
        for weight in ("0.001", "0.005", "0.01"):
            sweep.append(f"{out}/sweep-{b}-{weight}")
            cmds.append(("train_sr.py", ["--loss", "rec+per+adv", "--disc_backbone", b, "--lambda_adv", weight,
                                         "--init_generator", f"{out}/sr-stage1", "--max_train_steps", "400000", *div2k,
                                         "--mixed_precision", "bf16", "--output_dir", sweep[-1]]))  # fmt: skip
    cmds.append(("evaluate.py", ["fr", "--metrics", ",".join(fr_runs), "--datasets", fr_sets, "--output_dir",
                                 f"{out}/table2"]))  # fmt: skip
    cmds.append(("evaluate.py", ["init-comparison", "--results", ",".join(nr_runs + fr_runs), "--output_dir",
                                 f"{out}/fig5-8"]))  # fmt: skip
    cmds.append(("evaluate.py", ["sr", "--models", ",".join(sweep), "--metrics", NR_METRICS, "--datasets",
                                 f"{data}/DIV2K_valid_HR", "--normalisation", f"{out}/table1/normalisation.json",
                                 "--output_dir", f"{out}/sweep"]))  # fmt: skip
    cmds.append(("evaluate.py", ["sweep", "--runs", ",".join(sweep), "--sr_results", f"{out}/sweep/sr_results.json",
                                 "--output_dir", f"{out}/fig7"]))  # fmt: skip
    return cmds


def smoke_commands(out: str) -> list[tuple[str, list[str]]]:
    """The same chain on ``builtin``: three metric backbones (vgg16-r is only evaluated), a 2-step ``rec`` stage 1, then
    from it the four loss settings on VGG-16 plus ``per`` on the other two (so Fig. 3's ``per`` setting has three
    points), 2 steps of the tiny generator each, one GAN-initialised NR model, a two-point adversarial-weight sweep,
    evaluations on a few images. Pretrained weights: none (random everywhere); scorers whose weights cannot be fetched
    (maniqa offline) are reported unavailable."""
    quiet = ["--report_to", "none"]
    metric = ["--weights", "random", "--max_train_steps", "3", "--crop_size", "64", "--train_batch_size", "4",
              "--max_eval_samples", "4", "--validation_steps", "3", *quiet]  # fmt: skip
    sr = ["--model", "tiny", "--crop_size", "32", "--max_train_steps", "2", "--num_validation_images", "1",
          "--weights", "random", *quiet]  # fmt: skip
    backbones = ("vgg16-r", "vgg16", "resnet50")
    cmds = [("train_metric.py", [*metric, "--backbone", b, "--output_dir", f"{out}/metric-{b}"]) for b in backbones]
    cmds.append(("evaluate.py", ["fr", "--metrics", ",".join(f"{out}/metric-{b}" for b in backbones), "--datasets",
                                 "builtin", "--max_samples", "8", "--output_dir", f"{out}/table4"]))  # fmt: skip
    cmds.append(("train_sr.py", [*sr, "--loss", "rec", "--output_dir", f"{out}/sr-stage1"]))
    runs = [(b, loss) for b in ("vgg16",) for loss in LOSSES] + [(b, "per") for b in ("vgg16-r", "resnet50")]
    for b, loss in runs:
        cmds.append(("train_sr.py", [*sr, "--loss", loss, "--per_metric", f"{out}/metric-{b}", "--init_generator",
                                     f"{out}/sr-stage1", "--output_dir", f"{out}/sr-{b}-{loss}"]))  # fmt: skip
    models = ",".join([f"{out}/sr-{b}-{loss}" for b, loss in runs] + [f"{out}/sr-stage1", "bicubic", "hr"])
    cmds.append(("evaluate.py", ["sr", "--models", models, "--metrics", "psnr,piqe,maniqa", "--datasets", "builtin",
                                 "--max_images", "2", "--calibration_dataset", "builtin", "--output_dir",
                                 f"{out}/table1"]))  # fmt: skip
    cmds.append(("evaluate.py", ["correlation", "--fr_results", f"{out}/table4/fr_results.json", "--sr_results",
                                 f"{out}/table1/sr_results.json", "--output_dir", f"{out}/fig3"]))  # fmt: skip
    cmds.append(("train_iqa.py", ["--mode", "nr", "--backbone", "vgg16", "--weights",
                                  f"gan:{out}/sr-vgg16-rec+per+adv", "--max_train_steps", "2", "--crop_size", "64",
                                  "--train_batch_size", "4", "--max_eval_samples", "4", *quiet, "--output_dir",
                                  f"{out}/iqa-vgg16-gan"]))  # fmt: skip
    cmds.append(("evaluate.py", ["nr", "--models", f"{out}/iqa-vgg16-gan,piqe", "--datasets", "builtin",
                                 "--max_samples", "8", "--output_dir", f"{out}/nr"]))  # fmt: skip
    cmds.append(("evaluate.py", ["init-comparison", "--results", f"{out}/iqa-vgg16-gan,{out}/metric-vgg16",
                                 "--output_dir", f"{out}/fig5-8"]))  # fmt: skip
    sweep = [f"{out}/sweep-vgg16-{weight}" for weight in ("0.001", "0.01")]
    for run in sweep:
        cmds.append(("train_sr.py", [*sr, "--loss", "rec+per+adv", "--per_metric", f"{out}/metric-vgg16",
                                     "--lambda_adv", run.rsplit("-", 1)[1], "--init_generator", f"{out}/sr-stage1",
                                     "--output_dir", run]))  # fmt: skip
    cmds.append(("evaluate.py", ["sr", "--models", ",".join(sweep), "--metrics", "piqe", "--datasets", "builtin",
                                 "--max_images", "2", "--normalisation", f"{out}/table1/normalisation.json",
                                 "--output_dir", f"{out}/sweep"]))  # fmt: skip
    cmds.append(("evaluate.py", ["sweep", "--runs", ",".join(sweep), "--sr_results", f"{out}/sweep/sr_results.json",
                                 "--output_dir", f"{out}/fig7"]))  # fmt: skip
    return cmds


def run_in_process(script: str, argv: list[str]):
    """Run one script's ``main`` here, with fresh Accelerate state (as a new ``accelerate launch`` would)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    module = importlib.import_module(script.removesuffix(".py"))
    return module.main(module.parse_args(argv))


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the chain on builtin with tiny models, in this process")
    parser.add_argument("--data", default="data", help="folder holding the datasets (real runs)")
    parser.add_argument("--output_dir", default=None, help="where every run and table goes (default runs/paper|smoke)")
    parser.add_argument("--dry_run", action="store_true", help="print the commands instead of running them")
    return parser.parse_args(input_args)


def main(args) -> list[tuple[str, list[str]]]:
    out = args.output_dir or os.path.join("runs", "smoke" if args.smoke else "paper")
    if not args.dry_run:
        from asym.training import check_output_dir

        check_output_dir(out)  # before the first run: an unwritable folder costs nothing
    commands = smoke_commands(out) if args.smoke else paper_commands(args.data, out)
    for i, (script, argv) in enumerate(commands, 1):
        launcher = ["python"] if script == "evaluate.py" or args.smoke else ["accelerate", "launch"]
        line = shlex.join([*launcher, script, *argv])
        print(f"[{i}/{len(commands)}] {line}", flush=True)
        if args.dry_run:
            continue
        start = time.time()
        if args.smoke:
            run_in_process(script, argv)
        else:
            subprocess.run([*launcher, os.path.join(ROOT, script), *argv], check=True)
        print(f"[{i}/{len(commands)}] done in {time.time() - start:.0f} s", flush=True)
    return commands


if __name__ == "__main__":
    from asym.errors import run_cli

    run_cli(main, parse_args())
