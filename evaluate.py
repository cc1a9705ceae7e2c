"""Leaderboards and metric analyses.

    python evaluate.py fr --metrics psnr,ssim,output/metric --datasets builtin --output_dir results
    python evaluate.py nr --models output/iqa,maniqa,musiq --datasets builtin,data/koniq10k --output_dir results
    python evaluate.py init-comparison --results runs/vgg-random,runs/vgg-gan/results.json --output_dir results
    python evaluate.py features --model runs/sr --image astronaut --output_dir results/features
    python evaluate.py features --backbone vgg16 --weights pretrained --output_dir results/features
    python evaluate.py recover --metric output/metric --output_dir results/recover
    python evaluate.py texture --metric output/metric --output_dir results/texture

`fr`: full-reference metrics (pyiqa names or trained asym metrics) scored against MOS on FR datasets (builtin,
official layouts such as KADID-10k / TID2013, Hub ids): SRCC, KRCC and PLCC after the 4-parameter logistic fit;
prints a Markdown table (the paper's Table 4) and writes fr_results.csv and fr_results.json.
`nr`: no-reference quality models (train_iqa.py outputs or pyiqa NR names; pyiqa's own direction, oriented so that
higher is better) on NR datasets (builtin, KonIQ-10k, FR layouts read as NR, pyiqa NR csvs, Hub ids): the same
table, nr_results.csv and nr_results.json. A pyiqa metric whose weights cannot be obtained is reported as
`unavailable: <reason>` and the rest of the table is still produced.
`init-comparison`: test SRCC / PLCC of train_iqa.py / train_metric.py runs (their results.json) by backbone and
initialisation (random / pretrained / gan / file), as the paper's Fig. 5/8: init_comparison.png, .csv, .json, .md.
`features`: what each stage of a backbone sees in an image (the paper's Fig. 14): channel mean and the top-k channels
by energy per stage, as features-<model>-<image>.png.
`recover` / `texture`: can a metric serve as a loss? Recover a reference from noise by minimising the metric
(reports PSNR/SSIM of the recovery), or synthesise a texture by matching an exemplar; images are saved.
"""

from __future__ import annotations

import argparse
import os

import torch

from asym.analysis import (
    load_feature_backbone,
    plot_init_comparison,
    plot_stage_features,
    recover_from_noise,
    save_images,
    slug,
    stage_feature_maps,
    synthesize_texture,
)
from asym.data import BUILTIN_IMAGES, load_sr_images, to_tensor
from asym.errors import UserError, reading, run_cli
from asym.iqa_data import (
    add_fr_dataset_args,
    add_nr_dataset_args,
    fr_dataset_kwargs,
    load_fr_dataset,
    load_nr_dataset,
    nr_dataset_kwargs,
)
from asym.leaderboard import (
    OK,
    init_comparison_records,
    init_comparison_table,
    load_results,
    markdown_table,
    unique_names,
    write_records,
    write_text,
)
from asym.metrics import FRMetric, MetricUnavailable, NRMetric, correlations, score_images, score_pairs
from asym.training import check_output_dir

RESULT_KEYS = ("srcc", "plcc", "krcc", "n", "plcc_fit")  # the columns of fr_results.csv after metric, dataset


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fr = sub.add_parser("fr", help="score FR metrics against MOS on FR datasets")
    fr.add_argument("--metrics", required=True, help="comma-separated pyiqa names and/or asym metric folders/Hub ids")
    fr.add_argument("--datasets", default="builtin", help="comma-separated: builtin, IQA folders, Hub ids")
    add_fr_dataset_args(fr)  # columns of Hub / datasets sources, the same for each
    nr = sub.add_parser("nr", help="score NR quality models against MOS on NR datasets")
    nr.add_argument("--models", required=True, help="comma-separated train_iqa.py outputs and/or pyiqa NR names")
    nr.add_argument("--datasets", default="builtin", help="comma-separated: builtin, IQA folders, csvs, Hub ids")
    add_nr_dataset_args(nr)  # columns of Hub / datasets sources, the same for each
    init = sub.add_parser("init-comparison", help="test correlations of training runs by backbone and initialisation")
    init.add_argument("--results", required=True,
                      help="comma-separated results.json files of train_iqa.py / train_metric.py runs, or their "
                           "output folders")  # fmt: skip
    feats = sub.add_parser("features", help="per-stage feature maps of a backbone on an image")
    which = feats.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a saved Discriminator / IQAModel / DISTS / LPIPS folder or Hub id, or a "
                                       "train_sr.py run folder (its discriminator/)")  # fmt: skip
    which.add_argument("--backbone", help="a registry backbone name (asym.list_backbones(), timm:<name>, hf:<id>)")
    feats.add_argument("--weights", default=None, help="with --backbone: auto (default), random, pretrained, "
                                                       "gan:<run>, a file or Hub id")  # fmt: skip
    feats.add_argument("--image", default="astronaut",
                       help=f"an image file or a builtin name ({', '.join(BUILTIN_IMAGES)})")  # fmt: skip
    feats.add_argument("--size", type=int, default=224, help="centre crop of the image (pixels, square)")
    feats.add_argument("--top_k", type=int, default=4, help="channels shown per stage (highest mean energy)")
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


def run_nr(args) -> list[dict]:
    """The NR leaderboard: every model on every dataset, unavailable pyiqa metrics reported in place of numbers."""
    model_sources = [m for m in args.models.split(",") if m]
    dataset_sources = [d for d in args.datasets.split(",") if d]
    if not model_sources or not dataset_sources:
        raise UserError("--models and --datasets must each name at least one entry")
    model_names = unique_names(model_sources, "model")
    source_names = unique_names(dataset_sources, "dataset")  # fails early on a dataset listed twice
    models: list[NRMetric | str] = []  # a metric, or the status of one that cannot be created here
    for name, source in zip(model_names, model_sources):
        try:
            models.append(NRMetric(source, args.device))
        except MetricUnavailable as err:
            print(f"{name}: unavailable ({err.reason}); reported as such, the other models are still scored")
            models.append(f"unavailable: {err.reason}")
    datasets = [load_nr_dataset(source, **nr_dataset_kwargs(args)) for source in dataset_sources]  # all before work
    results = []
    for dataset in datasets:
        print(f"{dataset.name}: {len(dataset)} images, scores {dataset.direction}")
        mos = dataset.quality()
        for name, model in zip(model_names, models):
            if isinstance(model, str):
                results.append({"srcc": None, "plcc": None, "krcc": None, "n": None, "plcc_fit": None, "status": model})
                continue
            scores = score_images(model, dataset, args.device, desc=f"{name} on {dataset.name}")
            results.append({**correlations(-scores if model.lower_better else scores, mos), "status": OK})
    dataset_names = [d.name for d in datasets]
    if len(set(dataset_names)) < len(dataset_names):  # two folders called koniq10k: path-based names
        dataset_names = source_names
    rows = [(m, d) for d in dataset_names for m in model_names]
    records = [{"model": m, "dataset": d, **{k: r[k] for k in (*RESULT_KEYS, "status")}}
               for (m, d), r in zip(rows, results)]  # fmt: skip
    write_records(records, args.output_dir, "nr_results")
    print(markdown_table(records, model_names, dataset_names, row_key="model"))
    return records


def run_init_comparison(args) -> list[dict]:
    """Test correlations of training runs by backbone and initialisation: a bar chart and a table per dataset."""
    sources = [r for r in args.results.split(",") if r]
    if not sources:
        raise UserError("--results must name at least one results.json or run folder")
    records = init_comparison_records(load_results(sources))
    table = init_comparison_table(records)
    write_records(records, args.output_dir, "init_comparison")
    write_text(os.path.join(args.output_dir, "init_comparison.md"), table + "\n")
    path = plot_init_comparison(records, os.path.join(args.output_dir, "init_comparison.png"))
    print(table)
    print(f"\nchart written to {path}; tables to init_comparison.csv / .json / .md")
    return records


def run_features(args) -> list[dict]:
    """Per-stage feature maps of a saved model's backbone (or a registry backbone) on one image, as a PNG grid."""
    if args.model is not None and args.weights is not None:
        raise UserError("--weights goes with --backbone; a --model brings its own weights")
    if args.top_k < 1:
        raise UserError(f"--top_k must be at least 1, got {args.top_k}")
    image = load_image(args.image, args.size)  # before loading a model: a typo costs nothing
    backbone, name, description = load_feature_backbone(args.model, args.backbone, args.weights or "auto",
                                                        args.device)  # fmt: skip
    stages = stage_feature_maps(backbone, image, args.top_k)
    stem = os.path.splitext(os.path.basename(args.image))[0] if os.path.isfile(args.image) else args.image
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, f"features-{name}-{slug(stem)}.png")
    plot_stage_features(stages, image, path, title=f"{description}; image {args.image} ({args.size}x{args.size})")
    print(f"{description}: {len(stages)} stages, top {args.top_k} channels each, written to {path}")
    return stages


COMMANDS = {"fr": run_fr, "nr": run_nr, "init-comparison": run_init_comparison, "features": run_features,
            "recover": run_analysis, "texture": run_analysis}  # fmt: skip


def main(args):
    check_output_dir(args.output_dir)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    run_cli(main, parse_args())
