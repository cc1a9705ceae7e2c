"""`evaluate.py sr` on 1 process and on N processes (`accelerate launch`), same models, metrics and images.

    python benchmarks/evaluate_scaling.py                         # CPU: 1 vs 2 gloo processes, one thread each
    python benchmarks/evaluate_scaling.py --processes 8 --device cuda --metrics maniqa,liqe,dists

Each run is the whole command as a user types it (start-up, model and scorer loading, SR, scoring, writing), into a
fresh output folder (no output or score cache to reuse); the runs alternate, and the median of ``--rounds`` is
reported with the units scored per second and the speed-up. The N-process run must write the same sr_results.json
as the one-process run (checked to 1e-6). Models: ``--models`` perturbed ``tiny`` generators (distinct outputs) and
bicubic; images: builtin photographs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from asym import DISTS, SRModel  # noqa: E402
from asym.core.flags import positive_int  # noqa: E402


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=positive_int, default=2, help="processes of the launched run")
    parser.add_argument("--models", type=positive_int, default=3, help="perturbed tiny generators (plus bicubic)")
    parser.add_argument(
        "--metrics",
        default="psnr,ssim,piqe,dists",
        help="--metrics of evaluate.py sr; 'dists' is a DISTS (VGG-16, random weights) saved here",
    )
    parser.add_argument("--images", type=positive_int, default=13, help="builtin photographs scored")
    parser.add_argument("--device", default="cpu", help="cpu (gloo processes, ACCELERATE_USE_CPU=1) or cuda")
    parser.add_argument("--rounds", type=positive_int, default=2, help="runs of each, alternating")
    return parser.parse_args(input_args)


def perturbed_tiny(seed: int) -> SRModel:
    """``tiny`` with every parameter drawn from ``seed`` (an untrained tiny is bicubic: all models would agree)."""
    generator, model = torch.Generator().manual_seed(seed), SRModel("tiny", 4)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.005 * torch.randn(parameter.shape, generator=generator))
    return model


def main(args):
    work = tempfile.mkdtemp(prefix="asym-eval-scaling-")
    models = []
    for seed in range(1, args.models + 1):
        perturbed_tiny(seed).save_pretrained(os.path.join(work, f"tiny-{seed}"))
        models.append(os.path.join(work, f"tiny-{seed}"))
    metrics = args.metrics.split(",")
    if "dists" in metrics:  # a learned FR metric, the heavy kind a study scores with
        DISTS("vgg16", weights="random").save_pretrained(os.path.join(work, "dists"))
        metrics[metrics.index("dists")] = os.path.join(work, "dists")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    if args.device == "cpu":
        env["ACCELERATE_USE_CPU"] = "1"
    launch = {1: [sys.executable],
              args.processes: ["accelerate", "launch", "--multi_gpu", "--num_processes", str(args.processes),
                               "--num_cpu_threads_per_process", "1"]}  # fmt: skip
    times: dict[int, list[float]] = {1: [], args.processes: []}
    for round_ in range(args.rounds):
        for processes, prefix in launch.items():
            out = os.path.join(work, f"out-{processes}-{round_}")
            argv = ["evaluate.py", "sr", "--models", ",".join([*models, "bicubic"]), "--metrics", ",".join(metrics),
                    "--datasets", "builtin", "--max_images", str(args.images), "--output_dir", out, "--device",
                    args.device]  # fmt: skip
            start = time.perf_counter()
            subprocess.run([*prefix, *argv], cwd=ROOT, env=env, check=True, capture_output=True)
            times[processes].append(time.perf_counter() - start)
    one, many = (json.load(open(os.path.join(work, f"out-{p}-0", "sr_results.json"))) for p in launch)
    same = all(a["status"] == b["status"] and (a["score"] is b["score"] is None or abs(a["score"] - b["score"]) <= 1e-6)
               for a, b in zip(one, many))  # fmt: skip
    units = len(one) * args.images
    print(f"{args.models + 1} models x {len(args.metrics.split(','))} metrics x {args.images} builtin images "
          f"({units} units), {args.device}, {os.cpu_count()} CPUs, torch {torch.__version__}")  # fmt: skip
    print("| processes | median wall (s) | units / s | speed-up |")
    print("| --- | --- | --- | --- |")
    base = statistics.median(times[1])
    for processes, runs in times.items():
        wall = statistics.median(runs)
        print(f"| {processes} | {wall:.1f} | {units / wall:.1f} | {base / wall:.2f}x |")
    print(f"sr_results.json of the {args.processes}-process run equals the one-process run's: {same}")


if __name__ == "__main__":
    main(parse_args())
