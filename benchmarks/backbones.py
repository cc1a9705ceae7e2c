"""Every registered backbone as a DISTS-style loss: time, peak memory and mixed-precision error.

    python benchmarks/backbones.py --device cuda            # fp32 vs bf16 vs fp16 autocast
    python benchmarks/backbones.py --device cpu --dtypes fp32 --resolution 128

For each backbone (random weights, uniform alpha/beta) and autocast dtype it prints the median
forward+backward time of the DISTS loss, the peak GPU memory, and the largest |D_dtype - D_fp32|
over the batch: the error mixed-precision training would add to the loss value.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from asym import DISTS, list_backbones
from asym.core.flags import positive_int

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--backbones", nargs="+", default=list_backbones(), help="registry names to run")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES), help="autocast dtypes")
    parser.add_argument("--batch_size", type=positive_int, default=8, help="images per batch")
    parser.add_argument("--resolution", type=positive_int, default=224, help="image height and width")
    parser.add_argument("--steps", type=positive_int, default=5, help="timed steps (after one warm-up)")
    return parser.parse_args(input_args)


def main(args):
    torch.manual_seed(0)
    y = torch.rand(args.batch_size, 3, args.resolution, args.resolution, device=args.device)
    x = (y + 0.05 * torch.randn_like(y)).clamp(0, 1)
    cuda = args.device.startswith("cuda")
    print(f"device={torch.cuda.get_device_name() if cuda else 'cpu'} batch={args.batch_size} size={args.resolution}")
    print(f"{'backbone':10s} {'dtype':5s} {'ms/step':>9s} {'peak MiB':>9s} {'max|dD|':>9s} grads")
    for name in args.backbones:
        metric = DISTS(name, weights="random", alpha_beta="uniform").to(args.device)
        with torch.no_grad():
            reference = metric(x, y)
        for dtype_name in args.dtypes:
            dtype = DTYPES[dtype_name]
            times = []
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            for step in range(args.steps + 1):
                out = x.clone().requires_grad_(True)
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                with torch.autocast(args.device.split(":")[0], dtype=dtype, enabled=dtype is not None):
                    value = metric(out, y)
                value.mean().backward()
                if cuda:
                    torch.cuda.synchronize()
                if step:
                    times.append(time.perf_counter() - start)
            peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
            error = (value.detach().float() - reference).abs().max().item()
            finite = bool(torch.isfinite(out.grad).all())
            ms = statistics.median(times) * 1000
            print(
                f"{name:10s} {dtype_name:5s} {ms:9.1f} {peak:9.0f} {error:9.2e} {'finite' if finite else 'NON-FINITE'}"
            )
        del metric


if __name__ == "__main__":
    main(parse_args())
