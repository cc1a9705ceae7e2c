"""Time of one train_sr.py training step under each GPU speed option, against eager in the same run.

    python benchmarks/train_sr_step.py                     # CPU: swinir-light, batch 2, 64x64 crops, fp32
    python benchmarks/train_sr_step.py --device cuda --model swinir --batch_size 32 --crop_size 256 --dtype bf16

The step is train_sr.py's: the generator's forward, its loss (asym.sr.losses.GeneratorLoss, built from train_sr.py's
own flags: L1 + DISTS-style VGG-16 + relativistic VGG-16 discriminator by default), backward and Adam update, then the
discriminator's step on the same batch. One row per option: eager; sdpa (--attention sdpa, window-attention
generators only); channels_last; compile (--compile: generator, discriminator and loss networks); all of them. Each
row: median step time over --steps timed steps after --warmup untimed ones (where compiling happens: its time is
printed apart), the ratio to eager, images/s and, on CUDA, peak memory. Random weights throughout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # train_sr.py, beside asym/

import train_sr  # noqa: E402
from asym.core.flags import positive_int  # noqa: E402
from asym.core.training import apply_channels_last  # noqa: E402
from asym.nets.discriminator import relativistic_discriminator_loss  # noqa: E402
from asym.sr.losses import GeneratorLoss  # noqa: E402
from asym.sr.models import GENERATORS, SRModel  # noqa: E402
from asym.sr.window_attention import set_attention  # noqa: E402

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
OPTIONS = {"eager": (), "sdpa": ("sdpa",), "channels_last": ("channels_last",), "compile": ("compile",),
           "all": ("sdpa", "channels_last", "compile")}  # fmt: skip


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--model", choices=list(GENERATORS), default="swinir-light", help="generator")
    parser.add_argument("--loss", default="rec+per+adv", help="train_sr.py's --loss")
    parser.add_argument("--batch_size", type=positive_int, default=2, help="HR crops per step")
    parser.add_argument("--crop_size", type=positive_int, default=64, help="HR crop size")
    parser.add_argument("--scale", type=positive_int, default=4, help="up-scaling factor")
    parser.add_argument("--dtype", default="fp32", choices=list(DTYPES), help="autocast dtype")
    parser.add_argument("--warmup", type=positive_int, default=2, help="untimed steps first (compiling happens here)")
    parser.add_argument("--steps", type=positive_int, default=5, help="timed steps")
    parser.add_argument("--compile_mode", default="default", help="torch.compile's mode for the compile rows")
    parser.add_argument("--options", default=",".join(OPTIONS), help=f"rows, comma-separated: {', '.join(OPTIONS)}")
    return parser.parse_args(input_args)


def build_step(args, options: tuple[str, ...], device: torch.device):
    """train_sr.py's networks with ``options`` applied, and one training step on a batch."""
    flags = train_sr.parse_args(["--model", args.model, "--loss", args.loss, "--weights", "random",
                                 "--scale", str(args.scale)] + (["--channels_last"] if "channels_last" in options
                                                                else []))  # fmt: skip
    torch.manual_seed(0)
    generator = SRModel(args.model, args.scale).to(device).train()
    if "sdpa" in options:
        set_attention(generator, "sdpa")
    loss = GeneratorLoss(flags, train_images=None).to(device)
    discriminator = loss.discriminator
    if discriminator is not None:
        discriminator.to(device)
    apply_channels_last(flags, generator, *loss.networks.values())
    run_g, run_d = generator, discriminator
    if "compile" in options:
        run_g = torch.compile(generator, mode=args.compile_mode)
        run_d = torch.compile(discriminator, mode=args.compile_mode) if discriminator is not None else None
        loss.compile(args.compile_mode)
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-4) if discriminator is not None else None
    dtype = DTYPES[args.dtype]

    def step(lr: torch.Tensor, hr: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            sr = run_g(lr)
            loss_g = loss.total(loss(sr, hr, generator))
        loss_g.backward()
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)
        if run_d is not None:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss_d = relativistic_discriminator_loss(run_d(hr), run_d(sr.detach()))
            loss_d.backward()
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)

    return step


def time_row(args, options: tuple[str, ...], device: torch.device) -> dict:
    """Warm-up (compiling) and timed steps of one option set: medians in seconds, peak memory on CUDA."""
    cuda = device.type == "cuda"
    step = build_step(args, options, device)
    torch.manual_seed(1)
    hr = torch.rand(args.batch_size, 3, args.crop_size, args.crop_size, device=device)
    lr = F.interpolate(hr, scale_factor=1 / args.scale, mode="bicubic", antialias=True).clamp(0, 1)

    def timed() -> float:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(lr, hr)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    warmup = sum(timed() for _ in range(args.warmup))
    times = [timed() for _ in range(args.steps)]
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return {"step": statistics.median(times), "warmup": warmup, "peak_gib": peak}


def main(args):
    device = torch.device(args.device)
    names = [n.strip() for n in args.options.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPTIONS]
    if unknown:
        raise SystemExit(f"error: --options {unknown}: choose from {', '.join(OPTIONS)}")
    windows = GENERATORS[args.model]["arch"] == "swinir"  # sdpa: window-attention generators only
    options = {n: tuple(o for o in OPTIONS[n] if windows or o != "sdpa") for n in names if windows or n != "sdpa"}
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"{where}; torch {torch.__version__}; {args.model} x{args.scale}, --loss {args.loss}, batch "
        f"{args.batch_size}, {args.crop_size}x{args.crop_size} crops, {args.dtype}; median of {args.steps} steps"
    )
    rows = {}
    for name, chosen in options.items():
        rows[name] = time_row(args, chosen, device)
        row, eager = rows[name], rows.get("eager", rows[name])
        memory = f"  peak {row['peak_gib']:.2f} GiB" if row["peak_gib"] is not None else ""
        print(
            f"{name:14s} {row['step'] * 1000:9.1f} ms  x{eager['step'] / row['step']:.2f} vs eager  "
            f"{args.batch_size / row['step']:7.2f} images/s  warm-up {row['warmup']:.1f} s{memory}",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main(parse_args())
