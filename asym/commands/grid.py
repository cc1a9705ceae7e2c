"""``evaluate.py grid``: images through several models, side by side: input | models | reference."""

from __future__ import annotations

import argparse
import os

import torch

from asym.core.errors import UserError
from asym.core.flags import positive_int
from asym.core.images import BUILTIN_IMAGES, load_image
from asym.reporting.tables import unique_names
from asym.sr.validation import sr_protocol

DESCRIPTION = """\
    python evaluate.py grid --models runs/sr-vgg16,runs/sr-resnet50,bicubic --images astronaut,coffee \\
        --output_dir results/grid

`grid`: per image a row of the input (its bicubic LR, nearest-upsampled), each model's output and the reference,
each column labelled above, as grid.png, with the models' PSNR and SSIM (Y channel, --scale border pixels cropped)
printed; for autoencoders (--scale 1) the input is the image itself."""


def register_subcommand(subparsers) -> None:
    grid = subparsers.add_parser(
        "grid",
        help="one image through several models, side by side: input | models | reference",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grid.add_argument("--models", required=True, help="comma-separated train_sr.py outputs / Hub ids, release files, "
                                                      "bicubic (each is a column)")  # fmt: skip
    grid.add_argument("--images", default="astronaut,coffee",
                      help=f"comma-separated image files or builtin names ({', '.join(BUILTIN_IMAGES)}): one row "
                           "each")  # fmt: skip
    grid.add_argument("--size", type=positive_int, default=128,
                      help="centre crop of each reference image (pixels, square; a multiple of --scale)")  # fmt: skip
    grid.add_argument("--scale", type=positive_int, default=4,
                      help="the models' factor (1: autoencoders, input = reference)")  # fmt: skip
    grid.set_defaults(run=run)


def run(args) -> str:
    """``grid.png``: per image a row of the input (its bicubic LR, nearest-upsampled), each model's output and the
    reference, each column labelled above (``asym.reporting.grids``), with the models' PSNR and SSIM (Y, border = scale)
    printed; for autoencoders (scale 1) the input is the image."""
    from asym.metrics import psnr, ssim
    from asym.reporting.grids import save_labelled_grid
    from asym.sr.data import bicubic_downscale
    from asym.sr.inference import load_sr_source

    if args.size % args.scale:  # before loading any model: a typo costs nothing
        raise UserError(f"--size {args.size} is not divisible by --scale {args.scale}")
    specs = [m for m in args.models.split(",") if m]
    names = unique_names(specs, "model")
    sources = [load_sr_source(m, args.scale, args.device) for m in specs]
    rows = []
    for image in [i for i in args.images.split(",") if i]:
        hr = load_image(image, args.size)
        lr = bicubic_downscale(hr[0], (args.size // args.scale,) * 2)[None]
        shown = [torch.nn.functional.interpolate(lr, scale_factor=args.scale, mode="nearest")]
        for name, source in zip(names, sources):
            with torch.no_grad():
                out = source(lr, hr).float().clamp(0, 1).cpu()
            scores = [f(out, hr, **sr_protocol(args.scale)).item() for f in (psnr, ssim)]
            print(f"{image}: {name} PSNR {scores[0]:.2f} dB, SSIM {scores[1]:.4f} (Y)")
            shown.append(out)
        rows += [*shown, hr]
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "grid.png")
    columns = [f"LR x{args.scale} (nearest)" if args.scale > 1 else "input", *names, "reference"]
    save_labelled_grid(path, torch.cat(rows), columns, padding=2, pad_value=1.0)
    print(f"columns: input | {' | '.join(names)} | reference; written to {path}")
    return path
