"""Time of one `rec+per+adv` training step of train_sr.py, split into its parts.

    python benchmarks/train_sr_step.py                                   # CPU: tiny generator, 64x64 crops
    python benchmarks/train_sr_step.py --device cuda --model swinir --batch_size 32 --crop_size 256 --dtype bf16

Parts: generator forward+backward of the reconstruction and adversarial terms, the perceptual loss
(forward+backward through it), the discriminator step, and the two optimiser updates. Prints each
part's median, its share of the step, images/s, and (on GPU) peak memory. Random weights throughout.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

from asym import DISTS
from asym.core.flags import positive_int
from asym.nets.discriminator import Discriminator, relativistic_discriminator_loss, relativistic_generator_loss
from asym.sr.models import GENERATORS, SRModel

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--model", choices=list(GENERATORS), default="tiny", help="generator")
    parser.add_argument("--per_backbone", default="vgg16", help="perceptual loss backbone")
    parser.add_argument("--disc_backbone", default="vgg16", help="discriminator backbone")
    parser.add_argument("--disc_type", default="vanilla", help="vanilla or patch")
    parser.add_argument("--batch_size", type=positive_int, default=4, help="HR crops per step")
    parser.add_argument("--crop_size", type=positive_int, default=64, help="HR crop size")
    parser.add_argument(
        "--scale",
        type=positive_int,
        default=None,
        help="up-scaling factor (default 4; 1 for the autoencoders, which reconstruct the crop)",
    )
    parser.add_argument("--steps", type=positive_int, default=5, help="timed steps (after one warm-up)")
    parser.add_argument("--dtype", default="fp32", choices=list(DTYPES), help="autocast dtype")
    return parser.parse_args(input_args)


def main(args):
    torch.manual_seed(0)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    if args.scale is None:
        args.scale = 1 if GENERATORS[args.model]["arch"] == "autoencoder-kl" else 4
    generator = SRModel(args.model, args.scale).to(device)
    per_loss = DISTS(args.per_backbone, weights="random", alpha_beta="uniform").to(device)
    disc = Discriminator(args.disc_backbone, args.disc_type, weights="random").to(device)
    opt_g, opt_d = torch.optim.Adam(generator.parameters()), torch.optim.Adam(disc.parameters())
    hr = torch.rand(args.batch_size, 3, args.crop_size, args.crop_size, device=device)
    lr = F.interpolate(hr, scale_factor=1 / args.scale, mode="bicubic", antialias=True).clamp(0, 1)
    cuda = device.type == "cuda"
    times = defaultdict(list)

    def tick(name, start):
        if cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        times[name].append(now - start)
        return now

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for step in range(args.steps + 1):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            sr = generator(lr)
            disc.requires_grad_(False)
            loss_g = 1e-2 * F.l1_loss(sr.float(), hr) + 5e-3 * relativistic_generator_loss(disc(hr), disc(sr))
            disc.requires_grad_(True)
        loss_g.backward(retain_graph=True)
        t = tick("generator (rec+adv)", t)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss_p = per_loss(sr.float(), hr).mean()
        loss_p.backward()
        t = tick("perceptual loss", t)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss_d = relativistic_discriminator_loss(disc(hr), disc(sr.detach()))
        loss_d.backward()
        t = tick("discriminator", t)
        opt_g.step(), opt_d.step()
        opt_g.zero_grad(set_to_none=True), opt_d.zero_grad(set_to_none=True)
        tick("optimisers", t)
        if step == 0:
            times.clear()  # warm-up
    medians = {k: statistics.median(v) for k, v in times.items()}
    total = sum(medians.values())
    name = torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device={name} model={args.model} batch={args.batch_size} crop={args.crop_size} dtype={args.dtype}")
    for part, seconds in medians.items():
        print(f"{part:22s} {seconds * 1000:9.1f} ms  {100 * seconds / total:5.1f}%")
    print(f"{'step':22s} {total * 1000:9.1f} ms  {args.batch_size / total:8.2f} images/s")
    if cuda:
        print(f"peak memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return total


if __name__ == "__main__":
    main(parse_args())
