"""The asymmetry study (or the robust-loss study) as a resumable graph of runs, run here or submitted to SLURM.

    python scripts/reproduce_paper.py --data data --dry_run                        # every run, in order, what it reads
    python scripts/reproduce_paper.py --data data --preflight                      # sources checked, each stage's cost
    python scripts/reproduce_paper.py --data data                                  # run it here (a GPU machine)
    python scripts/reproduce_paper.py --data data --launcher slurm --partition gpu --gpus_per_run 8   # on SLURM
    python scripts/reproduce_paper.py --data data --status                         # where it stands, from any node
    python scripts/reproduce_paper.py --smoke --output_dir runs/smoke              # the chain on builtin, minutes

The runs and what each reads are ``asym.study`` (the chains: ``asym.study.chains``). The same command run again
never trains anything twice: done runs are skipped, partial ones continue from their latest checkpoint, failed ones
are run again (their readers wait for them), pending SLURM jobs are left alone. ``--only`` limits it to some runs
(shell patterns) and what they read. ``--smoke`` runs the chain on ``builtin`` in this process (tiny generator, a few
steps, a handful of evaluation images): it checks that every link runs and hands its files to the next, and its
numbers mean nothing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the scripts and asym/ live at the repository root, one level up
    sys.path.insert(0, ROOT)

from asym.core.errors import UserError  # noqa: E402
from asym.core.flags import non_negative_int, positive_float, positive_int  # noqa: E402
from asym.study.chains import (  # noqa: E402
    GAN_BACKBONES,
    METRIC_BACKBONES,
    NR_METRICS,
    STUDIES,
    smoke_commands,
    with_speed_flags,
)
from asym.study.graph import Study  # noqa: E402
from asym.study.launch import (  # noqa: E402
    Resources,
    failed_runs,
    run_in_process,
    run_inline,
    run_local,
    submit_slurm,
    wait_slurm,
)
from asym.study.status import results_listing, status_rows, status_table  # noqa: E402

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
    from asym.study.preflight import Requirement, folder_of_images, hub_model, iqa_dataset

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


# --data folder -> (what it is, where it comes from) for the robust-loss study (Uelwer et al.)
ROBUST_DATASETS = {
    "DIV2K_train_HR": ("DIV2K training HR", "DIV2K_train_HR.zip of the NTIRE 2017 DIV2K release"),
    **{s: (f"{s} HR test images", "the SR benchmark sets as BasicSR / SwinIR distribute them")
       for s in ("Set5", "Set14", "BSD100", "Urban100", "Manga109")},
    "imagenet/val": ("ImageNet validation images (<synset>/*.JPEG)", "ILSVRC2012_img_val, sorted into synset folders"),
}  # fmt: skip


def robust_requirements(data: str) -> list:
    """The robust-loss study's sources that no run writes: its image sets, BAPPS, the ImageNet-pretrained VGG-19 and
    ResNet-50 (standard features, Fig. 1's classifiers) and pyiqa's LPIPS; ImageNet-1k's Hub dataset is gated and
    checked when train_robust.py loads it (its token, its licence)."""
    from asym import create_backbone, create_metric
    from asym.study.preflight import Requirement, folder_of_images

    reqs = [Requirement(f"{what} ({folder})", "dataset", os.path.join(data, folder), f"image files; {origin}",
                        folder_of_images(os.path.join(data, folder))) for folder, (what, origin) in
            ROBUST_DATASETS.items()]  # fmt: skip
    bapps = os.path.join(data, "bapps")
    reqs.append(Requirement("BAPPS (bapps)", "dataset", bapps, "the 2AFC train / val folders of LPIPS' BAPPS release",
                            folder_of_images(bapps)))  # fmt: skip
    for name in ("vgg19", "resnet50"):
        reqs.append(Requirement(name, "backbone weights", "torchvision cache, else a download", "ImageNet weights",
                                lambda name=name: create_backbone(name, weights="pretrained")))  # fmt: skip
    lpips = Requirement("lpips", "scorer", "pyiqa cache / Hub", "its weights", lambda: create_metric("lpips", "cpu"))
    return [*reqs, lpips]


def preflight(args, commands: list[tuple[str, list[str]]], out: str) -> list[dict]:
    """The study's preflight (``asym.study.measure.run_preflight``) with its sources: the datasets under --data (those
    pyiqa mirrors fetched first with --download), the weights and scorers the chain names."""
    from asym.study.measure import run_preflight

    robust = args.study == "robust" and not args.smoke
    if args.download and not args.smoke and not robust:
        download_datasets(args.data)
    reqs = robust_requirements(args.data) if robust else requirements(args.data, args.smoke, args.download)
    return run_preflight(reqs, commands, out, training_processes(), run_in_process, script_module)


def script_module(script: str):
    """The module of a training script of this repository (``train_sr.py`` -> train_sr), for its parser and main."""
    return importlib.import_module(script.removesuffix(".py"))


def download_datasets(data: str) -> None:
    """Each dataset missing from ``data`` that pyiqa mirrors on the Hub, fetched (``asym.iqa.data.pyiqa_datasets``:
    into the user cache) and linked in as ``data/<folder>`` by its absolute path (a relative ``$ASYM_CACHE`` too); the
    others are left for the table to name. A dangling link an earlier --download made is replaced; any other
    dangling link is a ``UserError`` (the user's, not to be guessed at)."""
    from asym.core.errors import UserError
    from asym.iqa.data.pyiqa_datasets import fetch_pyiqa_dataset, pyiqa_dataset_root

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


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the chain on builtin with tiny models, in this process")
    parser.add_argument("--study", default="paper", choices=sorted(STUDIES),
                        help="which study's runs: the asymmetry paper's, or the robust-loss study's")  # fmt: skip
    parser.add_argument("--data", default="data", help="folder holding the datasets (real runs)")
    parser.add_argument("--output_dir", default=None, help="where every run and table goes (default runs/<study>)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only the runs matching this shell pattern (repeatable, or comma-separated: "
                             "'sr-vgg16-*', table3) and the runs they read")  # fmt: skip
    parser.add_argument("--dry_run", action="store_true", help="print the runs in order, each with what it reads")
    parser.add_argument("--status", action="store_true",
                        help="print where every run stands (state, steps, job, time, ETA, GPU-hours) and the logs "
                             "of the failed ones; reads the folders and the scheduler, starts nothing")  # fmt: skip
    parser.add_argument("--download", action="store_true",
                        help="with --preflight: fetch each missing dataset pyiqa mirrors on the Hub (KADID-10k, "
                             "KonIQ-10k, TID2013) into the user cache and link it into --data, and every file the VLM "
                             "scorers load (DeQA-Score, VisualQuality-R1) into the Hub cache")  # fmt: skip
    parser.add_argument("--preflight", action="store_true",
                        help="train nothing: check that every dataset and weight source can be had (all that is "
                             "missing in one table, exit 2), then run each distinct training stage for a few steps "
                             "at its configured size here: s / step, peak memory, ETA (steps, validations, checkpoint "
                             "saves, calibration), preflight.json")  # fmt: skip
    parser.add_argument("--speed_flags", default="",
                        help="GPU speed options added to every training run, e.g. '--compile --channels_last "
                             "--allow_tf32 --attention sdpa' (--attention: train_sr.py's SwinIR runs only); the "
                             "preflight measures the stages with them (off by default: the README's performance "
                             "section)")  # fmt: skip
    launch = parser.add_argument_group("launching")
    launch.add_argument("--launcher", default=None, choices=["inline", "local", "slurm"],
                        help="inline: one run after another in this process (--smoke's default); local: each run a "
                             "process of its own here, several at once where --gpus_per_run leaves GPUs for them "
                             "(the default); slurm: every run a SLURM job through submitit, dependencies as "
                             "afterok")  # fmt: skip
    launch.add_argument("--gpus_per_run", type=non_negative_int, default=None,
                        help="GPUs of each training run, per node (local default: all of this machine's, one run at "
                             "a time; slurm default: 1; 0: no GPU)")  # fmt: skip
    launch.add_argument("--nodes_per_run", type=positive_int, default=1,
                        help="nodes of each training run (slurm; accelerate launch across them)")  # fmt: skip
    launch.add_argument("--partition", default=None, help="SLURM partition")
    launch.add_argument("--time", type=positive_int, default=24 * 60,
                        help="SLURM time limit of a job, minutes (a run that needs more is requeued by submitit and "
                             "continues from its last checkpoint)")  # fmt: skip
    launch.add_argument("--mem_gb", type=positive_float, default=None, help="SLURM memory per node, GB")
    launch.add_argument("--cpus_per_run", type=positive_int, default=None, help="SLURM CPUs per job")
    launch.add_argument("--account", default=None, help="SLURM account")
    launch.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                        help="any other sbatch option, e.g. --sbatch qos=high --sbatch constraint=a100")  # fmt: skip
    launch.add_argument("--wait", action="store_true",
                        help="slurm: wait until the submitted jobs end, then report (default: submit and "
                             "return)")  # fmt: skip
    return parser.parse_args(input_args)


def resources(args) -> Resources:
    """What each run gets, from the launching flags."""
    sbatch = {}
    for option in args.sbatch:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise UserError(f"--sbatch {option!r}: expected KEY=VALUE (an sbatch option without its dashes, e.g. "
                            "qos=high)")  # fmt: skip
        sbatch[key.lstrip("-").replace("-", "_")] = value
    gpus = args.gpus_per_run
    if gpus is None:
        gpus = 1 if args.launcher == "slurm" else 0  # local: accelerate's own config decides (every GPU, one run)
    return Resources(gpus_per_run=gpus, nodes_per_run=args.nodes_per_run, partition=args.partition,
                     time_min=args.time, mem_gb=args.mem_gb, cpus_per_run=args.cpus_per_run, account=args.account,
                     sbatch=sbatch, accelerate=not args.smoke)  # fmt: skip


def training_processes() -> int:
    """The processes a training run of the study uses here: data-parallel on every GPU (evaluate.py runs on one)."""
    import torch

    return max(torch.cuda.device_count(), 1)


def print_plan(study: Study, runs: list, launcher: str, need: Resources) -> None:
    """Each run in order as a shell line, with what it reads as a trailing comment; on SLURM first the jobs' shape."""
    if launcher == "slurm":
        where = ", ".join(f"{k} {v}" for k, v in (("partition", need.partition), ("account", need.account)) if v)
        print(f"SLURM: each training run one job of {need.nodes_per_run} node(s) x {need.gpus_per_run} GPU(s) "
              f"(accelerate launch, {need.nodes_per_run * need.gpus_per_run} processes), each evaluation one job on "
              f"{min(need.gpus_per_run, 1)} GPU; --time {need.time_min} min{', ' + where if where else ''}; "
              "a job starts after its inputs' jobs succeed (afterok)", flush=True)  # fmt: skip
    for i, run in enumerate(runs, 1):
        prefix = ["accelerate", "launch"] if run.trains and launcher != "inline" else ["python"]
        reads = f"  # reads: {', '.join(run.reads)}" if run.reads else ""
        print(f"[{i}/{len(runs)}] {shlex.join([*prefix, run.script, *run.args])}{reads}", flush=True)


def main(args) -> list[tuple[str, list[str]]]:
    out = args.output_dir or os.path.join("runs", "smoke" if args.smoke else args.study)
    args.launcher = args.launcher or ("inline" if args.smoke else "local")
    commands = smoke_commands(out) if args.smoke else STUDIES[args.study](args.data, out)
    commands = with_speed_flags(commands, shlex.split(args.speed_flags))  # the runs and their preflight alike
    study = Study(out, commands)
    only = [p for option in args.only for p in option.split(",") if p]
    runs = study.select(only) if only else study.runs
    chosen = [(run.script, list(run.args)) for run in runs]
    if args.dry_run:
        print_plan(study, runs, args.launcher, resources(args))
        return chosen
    if args.status:
        rows = status_rows(study, runs, gpus_per_run=max(resources(args).gpus_per_run, 1))
        print(status_table(study, rows), flush=True)
        return chosen
    if args.preflight:
        preflight(args, chosen, out)
        return chosen
    from asym.core.training import check_output_dir

    check_output_dir(out)  # before the first run: an unwritable folder costs nothing
    if args.launcher == "inline":
        failed = run_inline(study, runs)
    elif args.launcher == "local":
        import torch

        gpus = list(range(torch.cuda.device_count()))
        need = resources(args)
        if need.gpus_per_run > len(gpus):
            raise UserError(f"--gpus_per_run {need.gpus_per_run}: this machine has {len(gpus)} GPU(s)")
        failed = run_local(study, runs, need, gpus)
    else:
        need = resources(args)
        submit_slurm(study, runs, need)
        if not args.wait:
            print(f"follow it with: python scripts/reproduce_paper.py {' '.join(shlex.quote(a) for a in sys.argv[1:])} "
                  "--status", flush=True)  # fmt: skip
            return chosen
        failed = wait_slurm(study, runs)
    if failed:
        for run, tail in failed_runs(study, runs):
            print(f"\n{run.name} failed; the end of its log:\n{tail}", flush=True)
        raise UserError(f"{len(failed)} of {len(runs)} runs did not finish ({', '.join(failed)}); fix the cause and "
                        "run the same command again: done runs are skipped, partial ones resume")  # fmt: skip
    print(f"study {out}: all {len(runs)} runs done", flush=True)
    listing = results_listing(study, runs)
    if listing:
        print(listing, flush=True)
    return chosen


if __name__ == "__main__":
    from asym.core.errors import run_cli

    run_cli(main, parse_args())
