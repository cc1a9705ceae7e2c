"""Forward+backward time of asym's DISTS loss vs pyiqa's DISTS used as a loss, on identical weights and inputs.

    python benchmarks/perceptual_loss.py                    # CPU (GPU when present), batch 4, 256x256
    python benchmarks/perceptual_loss.py --device cuda --dtype bf16

The two implementations alternate step by step, so drifting machine load hits both alike. Prints the
best and median step time of each, their ratios (pyiqa / asym: >1 means asym is faster) and, on GPU,
peak memory. Random backbone weights are used (speed does not depend on their values); both models
hold the same ones, and the script checks that they agree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from asym import DISTS
from asym.core.flags import non_negative_int, positive_int

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the reference implementations: test support
from peers import pyiqa_dists_like  # noqa: E402

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--batch_size", type=positive_int, default=4, help="images per batch")
    parser.add_argument("--resolution", type=positive_int, default=256, help="image height and width")
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps per implementation")
    parser.add_argument("--warmup", type=non_negative_int, default=2, help="untimed steps first (0: none)")
    parser.add_argument("--dtype", default="fp32", choices=list(DTYPES), help="autocast dtype")
    return parser.parse_args(input_args)


def loss_step(loss_fn, x, y, dtype) -> tuple[float, float]:
    """Seconds of one forward+backward step of ``loss_fn(x', y).mean()``, and peak GPU MiB (0 on CPU)."""
    cuda = x.device.type == "cuda"
    out = x.detach().clone().requires_grad_(True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        loss = loss_fn(out, y).mean()
    loss.backward()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0


def main(args):
    torch.manual_seed(0)
    ours = DISTS("vgg16", weights="random").to(args.device)
    theirs = pyiqa_dists_like(ours, as_loss=True, device=args.device)
    shape = (args.batch_size, 3, args.resolution, args.resolution)
    y = torch.rand(shape, device=args.device)
    x = (y + 0.05 * torch.randn_like(y)).clamp(0, 1)
    gap = (ours(x, y) - theirs.net(x, y).flatten()).abs().max().item()
    print(f"device={torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'} "
          f"threads={torch.get_num_threads()} batch={args.batch_size} size={args.resolution} dtype={args.dtype} "
          f"max|asym-pyiqa|={gap:.2e}")  # fmt: skip
    runs = {"pyiqa": [], "asym": []}
    for step in range(args.warmup + args.steps):
        for name, fn in (("pyiqa", theirs), ("asym", ours)):
            seconds, peak = loss_step(fn, x, y, DTYPES[args.dtype])
            if step >= args.warmup:
                runs[name].append((seconds, peak))
    stats = {}
    for name, samples in runs.items():
        times = [t for t, _ in samples]
        stats[name] = (min(times), statistics.median(times), max(p for _, p in samples))
        best, median, peak = stats[name]
        memory = f"  peak {peak:8.1f} MiB" if peak else ""
        print(f"{name:6s} forward+backward  best {best * 1000:8.1f} ms  median {median * 1000:8.1f} ms{memory}")
    best_ratio = stats["pyiqa"][0] / stats["asym"][0]
    median_ratio = stats["pyiqa"][1] / stats["asym"][1]
    print(f"speed-up asym vs pyiqa: {best_ratio:.2f}x (best step), {median_ratio:.2f}x (median step)")
    return best_ratio


if __name__ == "__main__":
    main(parse_args())
