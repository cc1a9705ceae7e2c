"""``evaluate.py recover`` / ``texture``: can a metric serve as a loss? Recovery from noise, texture synthesis."""

from __future__ import annotations

import argparse
import os

import torch

from asym.core.flags import positive_float, positive_int
from asym.core.images import BUILTIN_IMAGES, load_image
from asym.core.progress import tqdm
from asym.iqa.results import init_label
from asym.metrics import create_metric
from asym.metrics.as_loss import recover_from_noise, synthesize_texture
from asym.reporting.grids import save_labelled_grid

DESCRIPTION = """\
    python evaluate.py recover --metric output/metric --output_dir results/recover
    python evaluate.py texture --metric output/metric --output_dir results/texture

`recover` / `texture`: can a metric serve as a loss? Recover a reference from noise by minimising the metric
(reports PSNR/SSIM of the recovery), or synthesise a texture by matching an exemplar; images are saved."""


def register_subcommand(subparsers) -> None:
    for name in ("recover", "texture"):
        p = subparsers.add_parser(
            name,
            help="recover an image from noise" if name == "recover" else "synthesise a texture",
            description=DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--metric", required=True, help="an asym metric folder / Hub id or a pyiqa FR metric name")
        p.add_argument("--image", default="astronaut" if name == "recover" else "brick",
                       help=f"an image file or a builtin name ({', '.join(BUILTIN_IMAGES)})")  # fmt: skip
        p.add_argument("--size", type=positive_int, default=128, help="centre crop of the image (pixels, square)")
        p.add_argument("--steps", type=positive_int, default=300, help="optimisation steps")
        p.add_argument("--learning_rate", type=positive_float, default=0.01, help="Adam learning rate on the pixels")
        p.set_defaults(run=run)


def run(args) -> dict:
    """Minimise the metric over the pixels of an image, from noise towards ``--image`` (``recover``) or towards its
    texture (``texture``); print how close it came and save the result beside the target."""
    metric = create_metric(args.metric, args.device, kind="fr", as_loss=True)
    if metric.lower_better is False:  # a similarity (SSIM, ...): minimise its negative
        loss = lambda x, y: -metric(x, y)  # noqa: E731
    else:
        loss = metric
    target = load_image(args.image, args.size).to(args.device)
    os.makedirs(args.output_dir, exist_ok=True)
    random = random_backbones(metric)
    if random:  # a frozen random backbone makes both pictures noise: say that this, not the metric, is why
        print(f"note: {metric.name} measures on a backbone with random weights ({'; '.join(random)}): what it "
              "recovers or synthesises shows random features, not the metric with its real weights (see "
              "docs/evaluate.md, metric as a loss)")  # fmt: skip
    name = f"{metric.name} (random backbone)" if random else metric.name
    bar = tqdm(total=args.steps, desc=f"{args.command} ({metric.name})", unit="step")
    step = lambda _, x: bar.update(1)  # noqa: E731 - one Adam step on the pixels done
    if args.command == "recover":
        result = recover_from_noise(loss, target, steps=args.steps, lr=args.learning_rate, seed=args.seed,
                                    callback=step)  # fmt: skip
        bar.close()
        print(f"{metric.name}: recovered {args.image} with PSNR {result['psnr'].item():.2f} dB, "
              f"SSIM {result['ssim'].item():.4f} after {args.steps} steps")  # fmt: skip
        labels = [f"from noise, {args.steps} steps: {result['psnr'].item():.2f} dB", f"target: {args.image}"]
    else:
        result = synthesize_texture(loss, target, steps=args.steps, lr=args.learning_rate, seed=args.seed,
                                    callback=step)  # fmt: skip
        bar.close()
        print(f"{metric.name}: synthesised {args.image}, final loss {result['loss'][-1]:.4g}")
        labels = [f"synthesised, {args.steps} steps", f"exemplar: {args.image}"]
    path = os.path.join(args.output_dir, f"{args.command}-{metric.name}-{args.image}.png")
    save_labelled_grid(path, [result["image"][0], target[0]], [f"{name}: {labels[0]}", labels[1]])
    print(f"images written to {path} (labelled: the result under {metric.name}, then the target)")
    return result


def random_backbones(metric) -> list[str]:
    """``<backbone>: <weights source>`` for each backbone inside ``metric`` whose weights are random (e.g. the
    fallback when the pretrained ones could not be downloaded); empty for a metric with real weights or none."""
    model = getattr(metric, "model", None)
    modules = model.modules() if isinstance(model, torch.nn.Module) else []
    random = {m for m in modules if init_label(getattr(m, "weights_source", "")) == "random"}
    return sorted({f"{m.name}: {m.weights_source}" for m in random})
