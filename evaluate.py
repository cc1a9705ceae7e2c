"""Leaderboards and metric analyses.

    python evaluate.py fr --metrics psnr,ssim,output/metric --datasets builtin --output_dir results
    python evaluate.py recover --metric output/metric --output_dir results/recover
    python evaluate.py texture --metric output/metric --output_dir results/texture

`fr`: full-reference metrics (pyiqa names or trained asym metrics) scored against MOS on FR datasets (builtin,
official layouts such as KADID-10k / TID2013, Hub ids): SRCC, KRCC and PLCC after the 4-parameter logistic fit;
prints a Markdown table (the paper's Table 4) and writes fr_results.csv and fr_results.json.
`recover` / `texture`: can a metric serve as a loss? Recover a reference from noise by minimising the metric
(reports PSNR/SSIM of the recovery), or synthesise a texture by matching an exemplar; images are saved.
"""

from __future__ import annotations

import argparse
import os

import torch

from asym.analysis import recover_from_noise, save_images, synthesize_texture
from asym.data import BUILTIN_IMAGES, load_sr_images, to_tensor
from asym.errors import UserError, reading, run_cli
from asym.iqa_data import add_fr_dataset_args, fr_dataset_kwargs, load_fr_dataset
from asym.leaderboard import markdown_table, unique_names, write_records
from asym.metrics import FRMetric, correlations, score_pairs
from asym.training import check_output_dir

RESULT_KEYS = ("srcc", "plcc", "krcc", "n", "plcc_fit")  # the columns of fr_results.csv after metric, dataset


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fr = sub.add_parser("fr", help="score FR metrics against MOS on FR datasets")
    fr.add_argument("--metrics", required=True, help="comma-separated pyiqa names and/or asym metric folders/Hub ids")
    fr.add_argument("--datasets", default="builtin", help="comma-separated: builtin, IQA folders, Hub ids")
    add_fr_dataset_args(fr)  # columns of Hub / datasets sources, the same for each
    for name in ("recover", "texture"):
        p = sub.add_parser(name, help="recover an image from noise" if name == "recover" else "synthesise a texture")
        p.add_argument("--metric", required=True, help="an asym metric folder / Hub id or a pyiqa FR metric name")
        p.add_argument("--image", default="astronaut" if name == "recover" else "brick",
                       help=f"an image file or a builtin name ({', '.join(BUILTIN_IMAGES)})")  # fmt: skip
        p.add_argument("--size", type=int, default=128, help="centre crop of the image (pixels, square)")
        p.add_argument("--steps", type=int, default=300, help="optimisation steps")
        p.add_argument("--learning_rate", type=float, default=0.01, help="Adam learning rate on the pixels")
    for p in sub.choices.values():
        p.add_argument("--output_dir", default="results", help="where tables / images are written")
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
        p.add_argument("--seed", type=int, default=0, help="seed of the noise initialisation")
    return parser.parse_args(input_args)


def run_fr(args) -> list[dict]:
    metric_sources = [m for m in args.metrics.split(",") if m]
    dataset_sources = [d for d in args.datasets.split(",") if d]
    metric_names = unique_names(metric_sources, "metric")
    source_names = unique_names(dataset_sources, "dataset")  # fails early on a dataset listed twice
    metrics = [FRMetric(m, args.device) for m in metric_sources]  # fail early on a bad name
    datasets, results = [], []
    for source in dataset_sources:
        dataset = load_fr_dataset(source, **fr_dataset_kwargs(args))
        print(f"{dataset.name}: {len(dataset)} pairs, scores {dataset.direction}")
        datasets.append(dataset)
        mos = dataset.quality()
        for name, metric in zip(metric_names, metrics):
            scores = score_pairs(metric, dataset, args.device, desc=f"{name} on {dataset.name}")
            results.append(correlations(-scores if metric.lower_better else scores, mos))  # both "higher is better"
    # Columns are the datasets' own names, unless two coincide (two folders called kadid10k): then path-based ones.
    dataset_names = [d.name for d in datasets]
    if len(set(dataset_names)) < len(dataset_names):
        dataset_names = source_names
    rows = [(m, d) for d in dataset_names for m in metric_names]
    records = [{"metric": m, "dataset": d, **{k: r[k] for k in RESULT_KEYS}} for (m, d), r in zip(rows, results)]
    write_records(records, args.output_dir, "fr_results")
    print(markdown_table(records, metric_names, dataset_names))
    return records


def load_image(name: str, size: int) -> torch.Tensor:
    """A (1, 3, size, size) centre crop of a builtin photograph or an image file."""
    if name in BUILTIN_IMAGES:
        image = to_tensor(load_sr_images("builtin")[BUILTIN_IMAGES.index(name)])
    elif os.path.isfile(name):
        from PIL import Image

        with reading(name, "--image"), Image.open(name) as file:
            image = to_tensor(file)
    else:
        raise UserError(f"--image {name!r} is neither a file nor a builtin name ({', '.join(BUILTIN_IMAGES)})")
    h, w = image.shape[-2:]
    if min(h, w) < size:
        raise UserError(f"--image {name} is {h}x{w}, smaller than --size {size}")
    top, left = (h - size) // 2, (w - size) // 2
    return image[None, :, top : top + size, left : left + size]


def run_analysis(args) -> dict:
    metric = FRMetric(args.metric, args.device, as_loss=True)
    if metric.lower_better is False:  # a similarity (SSIM, ...): minimise its negative
        loss = lambda x, y: -metric(x, y)  # noqa: E731
    else:
        loss = metric
    target = load_image(args.image, args.size).to(args.device)
    os.makedirs(args.output_dir, exist_ok=True)
    if args.command == "recover":
        result = recover_from_noise(loss, target, steps=args.steps, lr=args.learning_rate, seed=args.seed)
        print(f"{metric.name}: recovered {args.image} with PSNR {result['psnr'].item():.2f} dB, "
              f"SSIM {result['ssim'].item():.4f} after {args.steps} steps")  # fmt: skip
    else:
        result = synthesize_texture(loss, target, steps=args.steps, lr=args.learning_rate, seed=args.seed)
        print(f"{metric.name}: synthesised {args.image}, final loss {result['loss'][-1]:.4g}")
    path = os.path.join(args.output_dir, f"{args.command}-{metric.name}-{args.image}.png")
    save_images(path, {"result": result["image"], "target": target})
    print(f"images written to {path}")
    return result


def main(args):
    check_output_dir(args.output_dir)
    return run_fr(args) if args.command == "fr" else run_analysis(args)


if __name__ == "__main__":
    run_cli(main, parse_args())
