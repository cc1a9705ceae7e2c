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


# --data folder -> (what it is, the layout expected there, how it is checked: an FR / NR release or an image folder,
# where it comes from: a pyiqa:<name> Hub mirror that --download fetches, else the release to place by hand)
DATASETS = {
    "kadid10k": ("KADID-10k", "dmos.csv and images/ (I01.png, I01_01_01.png, ...)", "fr", "pyiqa:kadid10k"),
    "koniq10k": ("KonIQ-10k", "koniq10k_scores_and_distributions.csv and 1024x768/ (or 512x384/)", "nr",
                 "pyiqa:koniq10k"),
    "tid2013": ("TID2013", "mos_with_names.txt, reference_images/, distorted_images/", "fr", "pyiqa:tid2013"),
    "liu13": ("Liu13 (deblurring)", "a pyiqa-style meta-info csv (ref, dist, mos) and the images it names", "fr",
              "by hand: the subjective study of Liu et al. 2013 (motion deblurring), from its authors"),
    "ma17": ("Ma17 (super-resolution)", "a pyiqa-style meta-info csv (ref, dist, mos) and the images it names", "fr",
             "by hand: the SR quality study of Ma et al. 2017 (CVIU), from its authors"),
    "tqd": ("TQD (texture)", "images/<t>-0.png references, images/<t>-<k>.png, a score file", "fr",
            "by hand: the texture quality database of Ding et al. (DISTS, TPAMI 2020), from its authors"),
    "DIV2K_train_HR": ("DIV2K training HR", "0001.png ... 0800.png", "images",
                       "by hand: DIV2K_train_HR.zip of the NTIRE 2017 DIV2K release"),
    "DIV2K_valid_HR": ("DIV2K validation HR", "0801.png ... 0900.png", "images",
                       "by hand: DIV2K_valid_HR.zip of the NTIRE 2017 DIV2K release"),
}  # fmt: skip


def requirements(data: str, smoke: bool, download: bool = False) -> list:
    """Every source the chain reads that no earlier link writes: the eight datasets, the pretrained backbones (metric
    training and the ImageNet starts of Table 2 / Fig. 5/8) and the NR scorers of Table 1 (the two VLMs: every file
    their models load resolves locally, fetched first with ``download``). The smoke chain needs only its scorers,
    and goes on without one that is unavailable (so none blocks it)."""
    from asym import create_backbone, create_metric
    from asym.metrics.vlm import DEFAULT_DEQA, DEFAULT_VISUALQUALITY_R1
    from asym.preflight import Requirement, folder_of_images, hub_model, iqa_dataset

    vlm_repos = {"deqa": DEFAULT_DEQA, "visualquality-r1": DEFAULT_VISUALQUALITY_R1}

    def backbone(name):
        return lambda: create_backbone(name, weights="pretrained")

    def scorer(name):
        if name in vlm_repos:  # a 7B model is not built to check it: its files must resolve (VQ-R1 prompts by template)
            return hub_model(vlm_repos[name], chat_template=name == "visualquality-r1", download=download)
        return lambda: create_metric(name, "cpu")

    if smoke:
        return [Requirement(m, "scorer", "pyiqa cache / Hub", "its weights", scorer(m), blocking=False)
                for m in ("psnr", "piqe", "maniqa")]  # fmt: skip
    reqs = []
    for folder, (what, layout, kind, origin) in DATASETS.items():
        path = os.path.join(data, folder)
        check = folder_of_images(path) if kind == "images" else iqa_dataset(path, kind)
        source = f"; --download fetches {origin}" if origin.startswith("pyiqa:") else f"; {origin}"
        reqs.append(Requirement(f"{what} ({folder})", "dataset", path, layout + source, check))
    pretrained = sorted({b for b in METRIC_BACKBONES if b != "vgg16-r"} | set(GAN_BACKBONES))
    for name in pretrained:
        reqs.append(Requirement(name, "backbone weights", "torchvision / HF cache, else a download",
                                "ImageNet (or the model's own) pretrained weights", backbone(name)))  # fmt: skip
    for name in NR_METRICS.split(","):
        if name in vlm_repos:
            where = f"Hub cache of {vlm_repos[name]}"
            expected = "config.json, the weights (every shard), tokenizer and processor files; --download fetches them"
        else:
            where, expected = "pyiqa cache, else a download", "the released weights"
        reqs.append(Requirement(name, "scorer", where, expected, scorer(name)))
    return reqs


def preflight(args, commands: list[tuple[str, list[str]]], out: str) -> list[dict]:
    """Check every source (all that is missing at once, exit 2, nothing written), then measure each distinct training
    stage for a few steps and each scorer per image, count what every run does (steps, validations, checkpoint saves,
    calibration images): the table printed, ``preflight.json`` in ``out``."""
    import torch

    from asym.atomic import write_json
    from asym.errors import UserError
    from asym.preflight import MISSING, OK, PREFLIGHT_FILE, check_requirements, missing_table
    from asym.preflight_costs import add_run, eta_total, fill_eta, measure_scorers, run_counts, stage_key, stage_table

    if args.download and not args.smoke:
        download_datasets(args.data)
    rows = check_requirements(requirements(args.data, args.smoke, args.download))
    blocking = [r for r in rows if r["status"] != OK and r["blocking"]]
    if any(r["status"] != OK for r in rows):
        print(missing_table(rows), flush=True)
    if blocking:
        raise UserError(f"{len(blocking)} of the study's {len(rows)} sources cannot be had (the table above: "
                        f"{sum(r['status'].startswith(MISSING) for r in blocking)} missing, the rest unusable); put "
                        "them where it says, then run --preflight again")  # fmt: skip
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    processes = max(torch.cuda.device_count(), 1)  # training runs data-parallel on every GPU; evaluate.py on one
    producers = {dict(zip(a[::2], a[1::2])).get("--output_dir"): a for _, a in commands}
    stages: dict[tuple, dict] = {}
    sizes: dict[tuple, tuple[int, int] | None] = {}  # per stage: images of a validation pass and of a test pass
    for script, argv in commands:
        if script == "evaluate.py":
            if argv[0] == "sr":  # each scorer of Table 1 / the sweep, per image scored (and calibrated on)
                measure_scorers(stages, argv, device)
            continue  # the other verbs read what the stages wrote: minutes
        key = stage_key(script, argv)
        module = importlib.import_module(script.removesuffix(".py"))
        parsed = module.parse_args(argv)
        if key not in stages:
            stages[key], sizes[key] = measure_training(module, parsed, argv, producers, device, processes)
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


def measure_training(module, parsed, argv: list[str], producers: dict, device, processes: int) -> tuple[dict, tuple]:
    """A training command's stage row, measured for a few steps in a temporary folder
    (``asym.preflight_costs.TrainingRun``), and the images a validation and a test pass of the configured run score."""
    import tempfile

    from asym.preflight_costs import STAGE_KEYS, TrainingRun, measure_stage

    script = f"{module.__name__}.py"
    row = dict.fromkeys(STAGE_KEYS)
    row.update(stage=os.path.basename(parsed.output_dir), script=script, command=shlex.join([script, *argv]))
    with tempfile.TemporaryDirectory(prefix="asym-preflight-") as tmp:
        run = TrainingRun(module, parsed, argv, producers, tmp, run_in_process)
        print(f"preflight: measuring {row['stage']} ({script})", flush=True)
        measure_stage(row, run, parsed.train_batch_size, device, processes)
    return row, run.evaluation_sizes


def download_datasets(data: str) -> None:
    """Each dataset missing from ``data`` that pyiqa mirrors on the Hub, fetched (``asym.iqa_data.pyiqa_datasets``:
    into the user cache) and linked in as ``data/<folder>`` by its absolute path (a relative ``$ASYM_CACHE`` too); the
    others are left for the table to name. A dangling link an earlier --download made is replaced; any other
    dangling link is a ``UserError`` (the user's, not to be guessed at)."""
    from asym.errors import UserError
    from asym.iqa_data.pyiqa_datasets import fetch_pyiqa_dataset, pyiqa_dataset_root

    for folder, (what, *_, origin) in DATASETS.items():
        path = os.path.join(data, folder)
        if os.path.exists(path) or not origin.startswith("pyiqa:"):  # a link to a folder counts: the check reads it
            continue
        if os.path.islink(path):  # dangling
            target = os.readlink(path)
            if not _inside(target, pyiqa_dataset_root(), os.path.dirname(path)):
                raise UserError(f"{path} is a link to {target}, which does not exist: remove it (rm "
                                f"{shlex.quote(path)}) or point it at the {what} release, then run --preflight "
                                "--download again")  # fmt: skip
            os.remove(path)  # ours, made with a relative target that does not resolve from data/: made again below
        try:
            fetched = fetch_pyiqa_dataset(origin)
        except UserError as err:
            print(f"preflight --download: {what}: {err}", flush=True)
            continue
        os.makedirs(data, exist_ok=True)
        os.symlink(os.path.abspath(fetched), path, target_is_directory=True)
        print(f"preflight --download: {what}: {origin} -> {fetched}, linked as {path}", flush=True)


def _inside(target: str, root: str, link_folder: str) -> bool:
    """Whether a link ``target`` lies under ``root``, read from the working directory (as an earlier --download wrote
    it) or from the link's folder (as the system reads it)."""
    root = os.path.abspath(root)
    resolved = {os.path.abspath(target), os.path.abspath(os.path.join(link_folder, target))}
    return any(os.path.commonpath([root, r]) == root for r in resolved)


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
    parser.add_argument("--download", action="store_true",
                        help="with --preflight: fetch each missing dataset pyiqa mirrors on the Hub (KADID-10k, "
                             "KonIQ-10k, TID2013) into the user cache and link it into --data, and every file the VLM "
                             "scorers load (DeQA-Score, VisualQuality-R1) into the Hub cache")  # fmt: skip
    parser.add_argument("--preflight", action="store_true",
                        help="train nothing: check that every dataset and weight source can be had (all that is "
                             "missing in one table, exit 2), then run each distinct training stage for a few steps "
                             "at its configured size here: s / step, peak memory, ETA (steps, validations, checkpoint "
                             "saves, calibration), preflight.json")  # fmt: skip
    return parser.parse_args(input_args)


def main(args) -> list[tuple[str, list[str]]]:
    out = args.output_dir or os.path.join("runs", "smoke" if args.smoke else "paper")
    if not args.dry_run and not args.preflight:  # a preflight that finds sources missing writes nothing
        from asym.training import check_output_dir

        check_output_dir(out)  # before the first run: an unwritable folder costs nothing
    commands = smoke_commands(out) if args.smoke else paper_commands(args.data, out)
    if args.preflight:
        preflight(args, commands, out)
        return commands
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
