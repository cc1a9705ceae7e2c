"""Leaderboards and metric analyses.

    python evaluate.py fr --metrics psnr,ssim,output/metric --datasets builtin --output_dir results
    python evaluate.py nr --models output/iqa,maniqa,musiq --datasets builtin,data/koniq10k --output_dir results
    python evaluate.py init-comparison --results runs/vgg-random,runs/vgg-gan/results.json --output_dir results
    python evaluate.py features --model runs/sr --image astronaut --output_dir results/features
    python evaluate.py features --backbone vgg16 --weights pretrained --output_dir results/features
    python evaluate.py recover --metric output/metric --output_dir results/recover
    python evaluate.py texture --metric output/metric --output_dir results/texture
    python evaluate.py sr --models runs/sr-vgg16,runs/sr-resnet50,bicubic,hr --metrics psnr,ssim,piqe,maniqa \\
        --datasets builtin --calibration_dataset data/koniq10k --output_dir results/table1
    python evaluate.py correlation --fr_results results/table4/fr_results.json \\
        --sr_results results/table1/sr_results.json --output_dir results/fig3
    python evaluate.py sweep --runs runs/adv-0.001,runs/adv-0.005,runs/adv-0.01 \\
        --sr_results results/sweep/sr_results.json --output_dir results/fig7
    python evaluate.py robust-table --sr_results results/enhancenet/sr_results.json --output_dir results/robust
    python evaluate.py classify --classifiers vgg19,resnet50,runs/robust-resnet50 --models runs/ep,runs/ep-robust,hr \\
        --dataset data/imagenet/val --max_images 1000 --output_dir results/fig1

`fr`: full-reference metrics (pyiqa names or trained asym metrics) scored against MOS on FR datasets (builtin,
official layouts such as KADID-10k / TID2013, Hub ids): SRCC, KRCC and PLCC after the 4-parameter logistic fit;
prints a Markdown table (the paper's Table 4) and writes fr_results.csv and fr_results.json. A train_metric.py
metric is scored on its own test split where the split.json beside it was made for the dataset (as `nr` below).
`nr`: no-reference quality models (train_iqa.py outputs or pyiqa NR names; pyiqa's own direction, oriented so that
higher is better) on NR datasets (builtin, KonIQ-10k, FR layouts read as NR, pyiqa NR csvs, Hub ids): the same
table, nr_results.csv and nr_results.json. A train_iqa.py model is scored on its own test split where the split.json
beside it was made for the dataset (else, and for pyiqa models, on all images); each record and the lines under the
table say which images and how many (`--split`, `--split_file` choose). A pyiqa metric whose weights cannot be
obtained is reported as `unavailable: <reason>` and the rest of the table is still produced.
`init-comparison`: test SRCC / PLCC of train_iqa.py / train_metric.py runs (their results.json) by backbone and
initialisation (random / pretrained / gan / file), as the paper's Fig. 5/8: init_comparison.png, .csv, .json, .md.
Runs side by side must have been tested on one test set (results.json's test-set fingerprint; the table gives n):
others are refused unless --allow_different_test_sets.
`features`: what each stage of a backbone sees in an image (the paper's Fig. 14): channel mean and the top-k channels
by energy per stage, as features-<model>-<image>.png.
`recover` / `texture`: can a metric serve as a loss? Recover a reference from noise by minimising the metric
(reports PSNR/SSIM of the recovery), or synthesise a texture by matching an exemplar; images are saved.
`sr`: SR models (train_sr.py outputs, release checkpoints, `bicubic`, `hr` = the reference) on SR test sets, each
output computed once and cached in <output_dir>/sr_cache (a re-run with more metrics runs no model). psnr / ssim
(asym.metrics) and uqi / ifc (asym.fidelity) are asym's, on the BT.601 Y channel with --scale border pixels cropped
(SR papers' convention); other FR metrics (pyiqa names, asym DISTS / LPIPS folders) and NR metrics (pyiqa names,
train_iqa.py outputs) as named. `hr` on an FR metric is `n/a: reference`. NR metrics are mapped to 1..100 (App. D)
by --normalisation FILE or fitted on --calibration_dataset (saved as normalisation.json); each map belongs to the
scorer it was fitted for (weights hash, pyiqa name + version, VLM Hub id + revision), and one of another scorer is
refused; without either, score_norm is null and raw means are shown. Writes sr_results.json / .csv / .md (one record
per model, metric, dataset: score = raw mean, score_norm = mean of the normalised per-image scores, images and
fingerprint = which images were scored, status = ok or why there is no number, e.g. an unparsable VLM answer) and
sr_scores.csv (per image, with its status); prints Table 1: a row per metric (two for a normalised one: the mean of
the normalised scores, then the raw mean), a column per model grouped by its card's --loss (with a Std. column per
group), bicubic and Ref.; rows Average / Std are the mean and population std across the normalised metrics (not
computed when none is: raw scales and directions differ).
`correlation` (Fig. 3): each FR metric's SRCC (mean over fr_results.json datasets) against the leaderboard average of
the SR model trained with that backbone as perceptual loss (its card's backbone equals the metric name or ends it
after -, _ or /; or --pairs metric=model,...), one point per (backbone, loss setting): correlation.png, .csv, .json,
and Spearman's rho per loss setting (none for n < 3).
`sweep` (Fig. 7): the leaderboard average of train_sr.py runs against their card's --lambda_adv, one line per
discriminator backbone (runs without an adversarial term: dashed lines): sweep.png, .csv, .json.
`robust-table` (the robust-loss study's table): sr_results.json files of `sr` runs (uqi / ifc are asym.fidelity's, Y
channel, --scale border cropped, as psnr / ssim), their models grouped by the card's --loss in the study's letters
(mse E, feat P, texture T) and whether its card's --feat_weights are robust by their own card (recorded by `sr` as
feat_robust: yes for a train_robust.py output trained with PGD, no for standard weights, unknown where the weights
say neither): each metric averaged over a group's runs, then over the datasets; files that scored one test set on
different images are refused, naming both. robust_table.md / .csv / .json.
`classify` (the robust-loss study's Fig. 1): labelled images, each cut as the classifier's weights are evaluated (their
torchvision preset: shorter side 256, centre 224 for vgg19 IMAGENET1K_V1; 232, 224 for resnet50 IMAGENET1K_V2): that
crop is the HR image, its antialiased bicubic x--scale downscale the LR; every --models SR model restores it (cached;
once per distinct crop) and the classifier labels the restoration: top-1 error per (classifier, model) in classify.png
(grouped bars), classify.csv / .json / .md. Labels map by class name, by ImageNet synset folder, or as class indices
only where the classifier names no classes (or the dataset gives indices); partly covered class names are an error.
"""

from __future__ import annotations

import argparse
import os

import torch

from asym.analysis import (
    load_feature_backbone,
    plot_correlation,
    plot_init_comparison,
    plot_stage_features,
    plot_sweep,
    recover_from_noise,
    save_images,
    slug,
    stage_feature_maps,
    synthesize_texture,
)
from asym.data import load_sr_images
from asym.errors import UserError, reading, run_cli, summarize
from asym.hub import saved_class
from asym.images import BUILTIN_IMAGES, to_tensor
from asym.iqa_data import (
    add_fr_dataset_args,
    add_nr_dataset_args,
    fr_dataset_kwargs,
    load_fr_dataset,
    load_nr_dataset,
    nr_dataset_kwargs,
)
from asym.iqa_data.splits import SPLIT_FILE, SPLIT_NAMES, load_split, match_split
from asym.leaderboard import (
    OK,
    REFERENCE,
    ROBUST,
    STUDY_COLUMNS,
    STUDY_TERMS,
    card_disc_backbone,
    card_feat_weights,
    card_loss,
    card_per_backbone,
    check_image_sets,
    check_test_sets,
    feat_weights_robustness,
    init_comparison_records,
    init_comparison_table,
    load_results,
    markdown_table,
    robust_label,
    robust_table,
    robust_table_records,
    sr_model_averages,
    sr_table,
    study_loss,
    unique_names,
    write_records,
    write_text,
)
from asym.metrics import FRMetric, MetricUnavailable, NRMetric, correlations, score_images, score_pairs
from asym.training import (
    check_output_dir,
    evenly_spaced,
    int_at_least,
    non_negative_int,
    positive_float,
    positive_int,
    seed_int,
)

RESULT_KEYS = ("srcc", "plcc", "krcc", "n", "plcc_fit")  # the columns of fr_results.csv after metric, dataset
IMAGE_KEYS = ("status", "split", "split_file", "images")  # then: which images scored the row (or why none did)


def _add_image_choice_args(parser: argparse.ArgumentParser, trained: str) -> None:
    """``--split`` / ``--split_file`` of ``fr`` and ``nr``: which images of a dataset score each model."""
    parser.add_argument("--split", default=None, choices=(*SPLIT_NAMES, "all"),
                        help=f"which images of a dataset score a model. Default: {trained}'s test split where its "
                             f"split.json (beside it) or --split_file was made for that dataset, else all images "
                             f"(the table says which); all: every image (a trained model's own training images "
                             f"included); train / validation / test: that part of the split file, refused where none "
                             f"applies")  # fmt: skip
    parser.add_argument("--split_file", default=None, metavar="FILE",
                        help="a split.json (or the run folder holding it) applied to every model, pyiqa ones "
                             "included, so all are scored on the same images; refused for a dataset it was not made "
                             "for")  # fmt: skip


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fr = sub.add_parser("fr", help="score FR metrics against MOS on FR datasets")
    fr.add_argument("--metrics", required=True, help="comma-separated pyiqa names and/or asym metric folders/Hub ids")
    fr.add_argument("--datasets", default="builtin", help="comma-separated: builtin, IQA folders, Hub ids")
    fr.add_argument("--max_samples", type=int_at_least(3), default=None,
                    help="score at most N pairs per dataset, evenly spaced (quick runs)")  # fmt: skip
    _add_image_choice_args(fr, "a train_metric.py metric")
    add_fr_dataset_args(fr)  # columns of Hub / datasets sources, the same for each
    nr = sub.add_parser("nr", help="score NR quality models against MOS on NR datasets")
    nr.add_argument("--models", required=True, help="comma-separated train_iqa.py outputs and/or pyiqa NR names")
    nr.add_argument("--datasets", default="builtin", help="comma-separated: builtin, IQA folders, csvs, Hub ids")
    nr.add_argument("--max_samples", type=int_at_least(3), default=None,
                    help="score at most N images per dataset, evenly spaced (quick runs)")  # fmt: skip
    _add_image_choice_args(nr, "a train_iqa.py model")
    add_nr_dataset_args(nr)  # columns of Hub / datasets sources, the same for each
    init = sub.add_parser("init-comparison", help="test correlations of training runs by backbone and initialisation")
    init.add_argument("--results", required=True,
                      help="comma-separated results.json files of train_iqa.py / train_metric.py runs, or their "
                           "output folders")  # fmt: skip
    init.add_argument("--allow_different_test_sets", action="store_true",
                      help="set side by side runs whose test sets differ (their results.json test-set fingerprints: "
                           "another seed's split, another --max_eval_samples) or cannot be checked (results.json "
                           "without one); refused by default. The table then gives n per cell")  # fmt: skip
    feats = sub.add_parser("features", help="per-stage feature maps of a backbone on an image")
    which = feats.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a saved Discriminator / IQAModel / DISTS / LPIPS folder or Hub id, or a "
                                       "train_sr.py run folder (its discriminator/)")  # fmt: skip
    which.add_argument("--backbone", help="a registry backbone name (asym.list_backbones(), timm:<name>, hf:<id>)")
    feats.add_argument("--weights", default=None, help="with --backbone: auto (default), random, pretrained, "
                                                       "gan:<run>, a file or Hub id")  # fmt: skip
    feats.add_argument("--image", default="astronaut",
                       help=f"an image file or a builtin name ({', '.join(BUILTIN_IMAGES)})")  # fmt: skip
    feats.add_argument("--size", type=positive_int, default=224, help="centre crop of the image (pixels, square)")
    feats.add_argument("--top_k", type=positive_int, default=4, help="channels shown per stage (highest mean energy)")
    for name in ("recover", "texture"):
        p = sub.add_parser(name, help="recover an image from noise" if name == "recover" else "synthesise a texture")
        p.add_argument("--metric", required=True, help="an asym metric folder / Hub id or a pyiqa FR metric name")
        p.add_argument("--image", default="astronaut" if name == "recover" else "brick",
                       help=f"an image file or a builtin name ({', '.join(BUILTIN_IMAGES)})")  # fmt: skip
        p.add_argument("--size", type=positive_int, default=128, help="centre crop of the image (pixels, square)")
        p.add_argument("--steps", type=positive_int, default=300, help="optimisation steps")
        p.add_argument("--learning_rate", type=positive_float, default=0.01, help="Adam learning rate on the pixels")
    sr = sub.add_parser("sr", help="score SR models' outputs with FR and NR metrics (the paper's Table 1)")
    sr.add_argument("--models", required=True,
                    help="comma-separated train_sr.py outputs / Hub ids, release checkpoints, bicubic, hr")  # fmt: skip
    sr.add_argument("--metrics", required=True,
                    help="comma-separated: psnr, ssim, uqi, ifc (Y channel, --scale border cropped), pyiqa FR/NR "
                         "names, asym metric folders (FR: DISTS, LPIPS such as an R-LPIPS) and train_iqa.py outputs "
                         "(NR)")  # fmt: skip
    sr.add_argument("--datasets", default="builtin", help="comma-separated test sets: builtin, HR folders, benchmarks")
    sr.add_argument("--scale", type=positive_int, default=4, help="up-scaling factor")
    sr.add_argument("--tile", type=non_negative_int, default=0, help="tile size of model inference (0: whole images)")
    sr.add_argument("--max_images", type=positive_int, default=None,
                    help="score only the first N images of each test set")  # fmt: skip
    sr.add_argument("--batch_size", type=int_at_least(1), default=None,
                    help="images per scorer forward: the models' outputs of one test image are scored together "
                         "(default 8 on GPU, 1 on CPU, where batching measured slower: "
                         "benchmarks/evaluate_sr.py)")  # fmt: skip
    sr.add_argument("--mixed_precision", default="no", choices=["no", "bf16", "fp16"],
                    help="autocast dtype of the SR models' forward (cached apart); scorers keep their own "
                         "precision")  # fmt: skip
    norm = sr.add_mutually_exclusive_group()
    norm.add_argument("--normalisation", default=None, help="a normalisation.json of fitted 1..100 maps (NR metrics)")
    norm.add_argument("--calibration_dataset", default=None,
                      help="an NR dataset with MOS to fit the 1..100 maps on (saved: normalisation.json)")  # fmt: skip
    add_nr_dataset_args(sr)  # how --calibration_dataset is read
    grid = sub.add_parser("grid", help="one image through several models, side by side: input | models | reference")
    grid.add_argument("--models", required=True, help="comma-separated train_sr.py outputs / Hub ids, release files, "
                                                      "bicubic (each is a column)")  # fmt: skip
    grid.add_argument("--images", default="astronaut,coffee",
                      help=f"comma-separated image files or builtin names ({', '.join(BUILTIN_IMAGES)}): one row "
                           "each")  # fmt: skip
    grid.add_argument("--size", type=positive_int, default=128,
                      help="centre crop of each reference image (pixels, square; a multiple of --scale)")  # fmt: skip
    grid.add_argument("--scale", type=positive_int, default=4,
                      help="the models' factor (1: autoencoders, input = reference)")  # fmt: skip
    corr = sub.add_parser("correlation", help="assessment SRCC of a backbone vs its SR loss's leaderboard average")
    corr.add_argument("--fr_results", required=True, help="fr_results.json of evaluate.py fr")
    corr.add_argument("--sr_results", required=True, help="sr_results.json of evaluate.py sr")
    corr.add_argument("--pairs", default=None,
                      help="comma-separated metric=model pairs (names as in the two files); default: matched by "
                           "the SR models' perceptual loss backbone")  # fmt: skip
    sweep = sub.add_parser("sweep", help="leaderboard average vs the adversarial weight, per discriminator backbone")
    sweep.add_argument("--runs", required=True, help="comma-separated train_sr.py output folders")
    sweep.add_argument("--sr_results", required=True, help="sr_results.json of evaluate.py sr on those runs")
    table = sub.add_parser("robust-table", help="the robust-loss study's table: SR metrics by loss and robustness")
    table.add_argument(
        "--sr_results",
        required=True,
        action="append",
        help="sr_results.json of evaluate.py sr (comma-separated or repeated: several runs / datasets)",
    )
    table.add_argument("--metric", action="append", default=[], metavar="COLUMN=NAME",
                       help="the sr_results metric that fills a column, e.g. R-LPIPS=lpips-robust (repeatable; "
                            "default: psnr, ssim, uqi, ifc, gmsd, lpips, rlpips)")  # fmt: skip
    cls = sub.add_parser("classify", help="top-1 error of classifiers on super-resolved images (the study's Fig. 1)")
    cls.add_argument("--classifiers", required=True,
                     help="comma-separated torchvision classification models (vgg19, resnet50, ...) and/or "
                          "train_robust.py output folders")  # fmt: skip
    cls.add_argument("--classifier_weights", default="pretrained",
                     help="torchvision models: pretrained (default ImageNet weights), random (seeded by --seed) or a "
                          "weights name such as IMAGENET1K_V1")  # fmt: skip
    cls.add_argument("--models", required=True,
                     help="comma-separated SR models as evaluate.py sr takes them (train_sr.py outputs, release "
                          "checkpoints, bicubic, hr)")  # fmt: skip
    cls.add_argument("--dataset", required=True,
                     help="DIR/<class>/<image> (class index = sorted folder order), a folder with labels.csv "
                          "(image,label), or a Hub / datasets image-classification set")  # fmt: skip
    cls.add_argument("--split", default="validation", help="split of a Hub / datasets set")
    cls.add_argument("--image_column", default="image", help="image column of a Hub / datasets set")
    cls.add_argument("--label_column", default="label", help="label column of a Hub / datasets set")
    cls.add_argument("--max_images", type=int_at_least(1), default=None,
                     help="classify at most N images, evenly spaced over the set")  # fmt: skip
    cls.add_argument("--image_size", type=int_at_least(16), default=None,
                     help="HR crop side for every classifier (default: each classifier's own, from its weights' "
                          "torchvision preset, e.g. 224 after resizing to 232 for resnet50 IMAGENET1K_V2; the resize "
                          "keeps each preset's ratio to the crop)")  # fmt: skip
    cls.add_argument("--scale", type=positive_int, default=4,
                     help="down-scaling factor of the LR the SR models restore")  # fmt: skip
    cls.add_argument("--tile", type=non_negative_int, default=0,
                     help="tile size of SR model inference (0: whole images)")  # fmt: skip
    cls.add_argument("--mixed_precision", default="no", choices=["no", "bf16", "fp16"],
                     help="autocast dtype of the SR models' forward (cached apart)")  # fmt: skip
    for p in sub.choices.values():
        p.add_argument("--output_dir", default="results", help="where tables / images are written")
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
        p.add_argument("--seed", type=seed_int, default=0, help="seed of the noise initialisation, in [0, 2^32)")
    return parser.parse_args(input_args)


def _at_most(dataset, n: int | None):
    """``dataset``, or ``n`` of its items evenly spaced over it (``--max_samples``)."""
    return dataset if n is None else dataset.subset(evenly_spaced(list(range(len(dataset))), n))


def _column_names(datasets, source_names: list[str]) -> list[str]:
    """Table columns: the datasets' own names, unless two coincide (two folders called kadid10k): then the
    path-based ``source_names``."""
    names = [d.name for d in datasets]
    return names if len(set(names)) == len(names) else source_names


def run_fr(args) -> list[dict]:
    """The FR leaderboard (Table 4): every metric on every dataset. A train_metric.py metric is scored on its own test
    split where its split.json was made for the dataset (``--split``), so its training images never score it."""
    metric_sources = [m for m in args.metrics.split(",") if m]
    dataset_sources = [d for d in args.datasets.split(",") if d]
    if not metric_sources or not dataset_sources:
        raise UserError("--metrics and --datasets must each name at least one entry")
    metric_names = unique_names(metric_sources, "metric")
    source_names = unique_names(dataset_sources, "dataset")  # fails early on a dataset listed twice
    metrics = [FRMetric(m, args.device) for m in metric_sources]  # fail early on a bad name
    own_splits = [_own_split_file(source, metric) for source, metric in zip(metric_sources, metrics)]
    datasets = [load_fr_dataset(source, **fr_dataset_kwargs(args)) for source in dataset_sources]  # all before work
    return _score_leaderboard("metric", metric_names, metrics, own_splits, datasets, source_names, args, "fr_results",
                              lambda metric, part, desc: score_pairs(metric, part, args.device, desc=desc))  # fmt: skip


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


def _own_split_file(source: str, metric) -> tuple[str | None, str]:
    """The split.json that train_iqa.py / train_metric.py wrote beside a model (a run folder, or a Hub repo it was
    pushed to), or None and why there is none."""
    from asym.hub import HubModel

    if not isinstance(getattr(metric, "model", None), HubModel):  # a train_iqa.py / train_metric.py output
        return None, "a pyiqa / VLM model, trained elsewhere: no split.json"
    if os.path.isdir(source):
        path = os.path.join(source, SPLIT_FILE)
        return (path, "") if os.path.isfile(path) else (None, f"no {SPLIT_FILE} beside the model")
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(source, SPLIT_FILE), ""
    except Exception as err:  # noqa: BLE001 - no such file in the repo, or no network: scored on all images, said so
        return None, f"no {SPLIT_FILE} obtainable from {source} ({summarize(err)})"


def _scored_images(name: str, own: tuple[str | None, str], dataset, args) -> tuple[list[int], dict]:
    """Which images of ``dataset`` score model ``name``: its indices, and what the record says of them (``split``:
    test / train / validation / all, ``split_file``, ``images``: the table's words). See ``--split``."""
    everything = list(range(len(dataset)))
    if args.split == "all":
        return everything, {"split": "all", "split_file": None, "images": "all images (--split all)"}
    part = args.split or "test"
    if args.split_file:  # asked for: applied to every model, or refused
        parts, path = load_split(args.split_file, dataset), args.split_file
    elif own[0] is None:
        if args.split:
            raise UserError(f"--split {args.split}: {name} has no split to take it from ({own[1]}): pass --split_file "
                            f"(a train_iqa.py or train_metric.py run's {SPLIT_FILE}) or --split all")  # fmt: skip
        return everything, {"split": "all", "split_file": None, "images": f"all images ({own[1]})"}
    else:
        parts, why = match_split(own[0], dataset)
        if parts is None:
            if args.split:
                raise UserError(f"--split {args.split}: {name}'s {why}")
            return everything, {"split": "all", "split_file": None, "images": f"all images: its {why}"}
        path = own[0]
    return parts[SPLIT_NAMES.index(part)], {"split": part, "split_file": path, "images": f"{part} split of {path}"}


def run_nr(args) -> list[dict]:
    """The NR leaderboard: every model on every dataset, unavailable pyiqa metrics reported in place of numbers. A
    trained model is scored on its own test split where its split.json was made for the dataset (``--split``)."""
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
    own_splits = [_own_split_file(source, model) for source, model in zip(model_sources, models)]
    datasets = [load_nr_dataset(source, **nr_dataset_kwargs(args)) for source in dataset_sources]  # all before work
    return _score_leaderboard("model", model_names, models, own_splits, datasets, source_names, args, "nr_results",
                              lambda model, part, desc: score_images(model, part, args.device, desc=desc))  # fmt: skip


def _score_leaderboard(row_key, names, models, own_splits, datasets, source_names, args, stem, score) -> list[dict]:
    """Score each model (a metric, or the status of one that cannot be created) on each dataset, each on the images
    ``_scored_images`` chooses for it (all decided, or refused, before any scoring); write ``<stem>.csv`` / ``.json``
    and print the table with lines saying which images scored whom. ``score(model, dataset, desc)`` -> scores."""
    unscored = ([], {"split": None, "split_file": None, "images": "not scored"})  # an unavailable model
    chosen = [[unscored if isinstance(model, str) else _scored_images(name, own, dataset, args)
               for name, model, own in zip(names, models, own_splits)]
              for dataset in datasets]  # fmt: skip
    results, notes = [], []
    dataset_names = _column_names(datasets, source_names)
    unit = "pairs" if row_key == "metric" else "images"
    for dataset, column, per_model in zip(datasets, dataset_names, chosen):
        print(f"{dataset.name}: {len(dataset)} {unit}, scores {dataset.direction}")
        images: dict[str, list[str]] = {}  # what a model was scored on -> the models scored on it
        for name, model, (indices, facts) in zip(names, models, per_model):
            if isinstance(model, str):
                results.append({**dict.fromkeys(RESULT_KEYS), "status": model, **facts})
                continue
            part = _at_most(dataset.subset(indices), args.max_samples)
            facts = {**facts, "images": f"{facts['images']}, n = {len(part)}"}
            images.setdefault(facts["images"], []).append(name)
            scores = score(model, part, f"{name} on {dataset.name}")
            results.append({**correlations(-scores if model.lower_better else scores, part.quality()), "status": OK,
                            **facts})  # both oriented "higher is better"  # fmt: skip
        scored = "; ".join(f"{', '.join(who)}: {what}" for what, who in images.items())
        notes.append(f"Images of {column}: {scored}")
        if len(images) > 1:
            notes.append(f"{column}: the {row_key}s are scored on different images (each on its own split or all): "
                         f"rows are not comparable; pass --split_file to score all on one split's images")  # fmt: skip
    rows = [(m, d) for d in dataset_names for m in names]
    records = [{row_key: m, "dataset": d, **{k: r[k] for k in (*RESULT_KEYS, *IMAGE_KEYS)}}
               for (m, d), r in zip(rows, results)]  # fmt: skip
    write_records(records, args.output_dir, stem)
    print(markdown_table(records, names, dataset_names, row_key=row_key))
    print("\n" + "\n".join(notes))
    return records


def run_init_comparison(args) -> list[dict]:
    """Test correlations of training runs by backbone and initialisation: a bar chart and a table per dataset."""
    sources = [r for r in args.results.split(",") if r]
    if not sources:
        raise UserError("--results must name at least one results.json or run folder")
    results = load_results(sources)
    notes = check_test_sets(results, args.allow_different_test_sets)  # runs side by side share one test set
    records = init_comparison_records(results)
    table = "\n\n".join([init_comparison_table(records), *notes])
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


SR_BUILTIN_FR = ("psnr", "ssim", "uqi", "ifc")  # asym's, on the Y channel, --scale border pixels cropped (SR papers')


def _metric_kind(source: str) -> str:
    """``"fr"`` or ``"nr"``: whether a --metrics entry needs the HR reference."""
    if source in SR_BUILTIN_FR:
        return "fr"
    if os.path.isdir(source) or "/" in source or source.startswith((".", "~")):
        cls = saved_class(source) if os.path.isdir(source) else None
        return "nr" if cls == "IQAModel" else "fr"  # DISTS / LPIPS folders are FR, train_iqa.py outputs NR
    import pyiqa

    return "fr" if source in pyiqa.list_models(metric_mode="FR") else "nr"  # NRMetric names unknown ones


def _make_metric(source: str, kind: str, scale: int, device: str):
    """An FRMetric / NRMetric, psnr / ssim on Y with ``scale`` border pixels cropped, or the ``unavailable: <reason>``
    status of one that cannot be built here (a pyiqa metric whose weights cannot be obtained)."""
    if source in SR_BUILTIN_FR:
        from functools import partial

        from asym.fidelity import ifc, uqi
        from asym.metrics import psnr, ssim

        function = {"psnr": psnr, "ssim": ssim, "uqi": uqi, "ifc": ifc}[source]
        return partial(function, border=scale, y_channel=True)
    try:
        if kind == "nr":
            return NRMetric(source, device)
        return FRMetric(source, device)
    except MetricUnavailable as err:
        return f"unavailable: {err.reason}"
    except UserError as err:  # FRMetric: a known pyiqa name whose weights could not be obtained (checked by name first)
        if "could not be created" in str(err):
            return f"unavailable: {err}"
        raise


class _Subset:
    """Some images of an SRImageDataset, by index (one at a time: only one image's outputs are held in memory)."""

    def __init__(self, images, indices: list[int]):
        self.images, self.indices = images, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.images[self.indices[index]]


def _sr_normalisations(args, names: list[str], metrics: list, kinds: list[str]) -> dict:
    """{metric name: Normalisation} for the NR metrics: loaded (--normalisation) or fitted (--calibration_dataset),
    each belonging to its scorer's identity (``scorer_identity``), never to a name alone."""
    from asym.normalisation import (
        fit_normalisation,
        load_normalisations,
        save_normalisations,
        scorer_identity,
        select_normalisation,
    )

    usable = [(n, m) for n, m, k in zip(names, metrics, kinds) if k == "nr" and not isinstance(m, str)]
    if args.normalisation:
        loaded = load_normalisations(args.normalisation)
        out = {}
        for name, metric in usable:
            found = select_normalisation(loaded, name, scorer_identity(metric), args.normalisation)
            if found is None:
                print(f"{name}: no normalisation in {args.normalisation}; shown raw (score_norm null)")
            elif found.lower_better != metric.lower_better:
                raise UserError(f"{args.normalisation}: {name} is fitted with lower_better={found.lower_better}"
                                f" but the metric says {metric.lower_better}: refit it")  # fmt: skip
            else:
                out[name] = found
        return out
    if args.calibration_dataset:
        dataset = load_nr_dataset(args.calibration_dataset, **nr_dataset_kwargs(args))
        print(f"fitting the 1..100 normalisation on {dataset.name} ({len(dataset)} images, MOS {dataset.direction})")
        out = {}
        for name, metric in usable:
            scores = score_images(metric, dataset, args.device, desc=f"{name} on {dataset.name}")
            out[name] = fit_normalisation(scores, dataset.quality(), metric.lower_better, metric=name,
                                          calibration=dataset.name, scorer=scorer_identity(metric))  # fmt: skip
        path = os.path.join(args.output_dir, "normalisation.json")
        os.makedirs(args.output_dir, exist_ok=True)
        save_normalisations(path, list(out.values()))
        print(f"normalisation written to {path}")
        return out
    print("no --normalisation / --calibration_dataset: score_norm is null and the table shows raw means")
    return {}


def run_sr_leaderboard(args) -> list[dict]:
    """The SR leaderboard: every model's outputs (cached) on every test set, scored by every metric."""
    import numpy as np

    from asym.progress import tqdm
    from asym.sr_eval import (
        SROutputCache,
        SRTestSet,
        fingerprint,
        item_digest,
        load_sr_source,
        load_sr_test_set,
        run_sr,
        score_outputs,
    )

    model_sources = [m for m in args.models.split(",") if m]
    metric_sources = [m for m in args.metrics.split(",") if m]
    dataset_sources = [d for d in args.datasets.split(",") if d]
    if not model_sources or not metric_sources or not dataset_sources:
        raise UserError("--models, --metrics and --datasets must each name at least one entry")
    model_names = unique_names(model_sources, "model")
    metric_names = unique_names(metric_sources, "metric")
    unique_names(dataset_sources, "dataset")
    test_sets = [load_sr_test_set(d, args.scale) for d in dataset_sources]  # before any model: typos cost nothing
    sources = [load_sr_source(m, args.scale, args.device, args.mixed_precision) for m in model_sources]
    losses = {n: card_loss(getattr(s.module, "card", None)) for n, s in zip(model_names, sources)}
    kinds = {n: s.kind for n, s in zip(model_names, sources)}
    metric_kinds = [_metric_kind(m) for m in metric_sources]
    metrics = [_make_metric(m, k, args.scale, args.device) for m, k in zip(metric_sources, metric_kinds)]
    for name, metric in zip(metric_names, metrics):
        if isinstance(metric, str):
            print(f"{name}: {metric}; reported as such, the other metrics are still scored")
    normalisations = _sr_normalisations(args, metric_names, metrics, metric_kinds)
    cache = SROutputCache(os.path.join(args.output_dir, "sr_cache"))
    batch_size = args.batch_size or (8 if torch.device(args.device).type == "cuda" else 1)
    cards = {n: getattr(s.module, "card", None) for n, s in zip(model_names, sources)}
    robustness = {n: feat_weights_robustness(card_feat_weights(c)) if c else (None, None) for n, c in cards.items()}
    records, per_image = [], []
    for test_set in test_sets:
        count = len(test_set) if args.max_images is None else min(args.max_images, len(test_set))
        print(f"{test_set.name}: {count} of {len(test_set)} images")
        scores = {(m, k): [] for m in model_names for k in metric_names}  # [(score, score_norm, status)] per image
        digests = []  # of the images scored: the test set's fingerprint in every record
        progress = tqdm(range(count), desc=f"sr on {test_set.name}", disable=count < 2)
        for i in progress:
            one = SRTestSet(test_set.name, test_set.scale, [test_set.names[i]], _Subset(test_set.images, [i]))
            item = one[0]
            digests.append(item_digest(item))
            hr = item.hr[None]
            outputs = {model: run_sr(source, one, cache, tile=args.tile)[item.name]
                       for model, source in zip(model_names, sources)}  # fmt: skip
            for name, metric, kind in zip(metric_names, metrics, metric_kinds):
                if isinstance(metric, str):
                    continue
                scored = [m for m in model_names if not (kind == "fr" and kinds[m] == "hr")]  # hr vs itself: n/a
                statuses = []
                try:
                    values = score_outputs(metric, [outputs[m] for m in scored], hr if kind == "fr" else None,
                                           args.device, batch_size, statuses)  # fmt: skip
                except UserError as err:  # e.g. an image too small for the metric: say which one
                    progress.close()  # the error on a line of its own
                    size = f"{hr.shape[-1]}x{hr.shape[-2]}"
                    raise UserError(f"{test_set.name} image {item.name} ({size} HR, WxH): {err}") from err
                for model, score, status in zip(scored, values, statuses):
                    norm = float(normalisations[name]([score])[0]) if name in normalisations and status == OK else None
                    scores[(model, name)].append((score, norm, status))
                    per_image.append({"model": model, "metric": name, "dataset": test_set.name, "image": item.name,
                                      "score": score, "score_norm": norm, "status": status})  # fmt: skip
        images = {"images": count, "fingerprint": fingerprint(digests)}
        for model, source in zip(model_names, sources):
            for name, metric, kind in zip(metric_names, metrics, metric_kinds):
                record = {"model": model, "metric": name, "dataset": test_set.name, "score": None, "score_norm": None}
                values = scores[(model, name)]
                failed = [status for _, _, status in values if status != OK]
                if isinstance(metric, str):
                    record["status"] = metric
                elif kind == "fr" and source.kind == "hr":
                    record["status"] = REFERENCE
                elif failed:  # no mean over a subset of the images: it would not compare with the other cells
                    why = "; ".join(dict.fromkeys(f.split(":", 1)[0] for f in failed))
                    record["status"] = f"{why}: no score for {len(failed)} of {count} images (sr_scores.csv)"
                else:
                    record["score"] = float(np.mean([v for v, _, _ in values]))
                    if name in normalisations:
                        record["score_norm"] = float(np.mean([n for _, n, _ in values]))
                    record["status"] = OK
                card = cards[model]
                record.update(images, source=source.name, kind=source.kind, loss=losses[model],
                              per_backbone=card_per_backbone(card), feat_weights=card_feat_weights(card),
                              feat_robust=robustness[model][0], feat_robust_why=robustness[model][1])  # fmt: skip
                records.append(record)
    write_records(records, args.output_dir, "sr_results")
    write_records(per_image, args.output_dir, "sr_scores")
    os.remove(os.path.join(args.output_dir, "sr_scores.json"))  # per-image scores: the csv only
    tables = []
    for test_set in test_sets:
        group = [r for r in records if r["dataset"] == test_set.name]
        tables.append(f"### {test_set.name}\n\n" + sr_table(group, model_names, metric_names, losses, kinds))
    text = "\n\n".join(tables)
    write_text(os.path.join(args.output_dir, "sr_results.md"), text + "\n")
    print(text)
    return records


SR_KEYS = ("model", "metric", "dataset", "status")  # what every sr_results.json record names (strings)
SR_NUMBERS = ("score", "score_norm")  # its numbers (or null)


def _read_records(path: str, what: str, keys: tuple[str, ...], numbers: tuple[str, ...] = ()) -> list[dict]:
    """The records of an evaluate.py results json: each holds ``keys``, all strings but those in ``numbers``, which
    are numbers or null wherever they appear; a UserError naming the file, the record and the first bad field."""
    import json

    if not os.path.isfile(path):
        raise UserError(f"{what} {path} does not exist")
    with reading(path, what, "JSON"), open(path, encoding="utf-8") as file:
        records = json.load(file)
    if not isinstance(records, list) or not all(isinstance(r, dict) and all(k in r for k in keys) for r in records):
        raise UserError(f"{path} is not a {what} written by evaluate.py (a list of records with {', '.join(keys)})")
    for i, record in enumerate(records):
        for key in dict.fromkeys((*keys, *numbers)):
            value = record.get(key)
            if key in numbers:
                fine = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
            else:
                fine = isinstance(value, str)
            if not fine:
                kind = "a number or null" if key in numbers else "a string"
                raise UserError(f"{path}, record {i}: {key} must be {kind}, got {value!r} (is it a {what} written "
                                "by evaluate.py?)")  # fmt: skip
    return records


def _backbone_metric(backbone: str, metrics: list[str]) -> str | None:
    """The FR metric named after ``backbone`` (``vgg16``, ``metric-vgg16``, ``runs/metric_vgg16``); a UserError if
    several are, None if none is."""
    found = [m for m in metrics if m == backbone or any(m.endswith(sep + backbone) for sep in "-_/")]
    if len(found) > 1:
        raise UserError(f"metrics {', '.join(found)} all match backbone {backbone}: pass --pairs metric=model")
    return found[0] if found else None


def run_correlation(args) -> list[dict]:
    """Fig. 3: does a backbone that assesses better (FR SRCC) also train better SR models (leaderboard average)?"""
    import numpy as np
    from scipy.stats import spearmanr

    fr = _read_records(args.fr_results, "fr_results.json", ("metric", "dataset", "srcc"), ("srcc",))
    sr = _read_records(args.sr_results, "sr_results.json", SR_KEYS, SR_NUMBERS)
    check_image_sets([(args.sr_results, sr)])
    srcc = {}
    for metric in dict.fromkeys(r["metric"] for r in fr):
        values = [r["srcc"] for r in fr if r["metric"] == metric and r.get("status", OK) == OK]
        if values and all(v is not None for v in values):
            srcc[metric] = float(np.mean(values))
    averages = sr_model_averages(sr)
    info = {r["model"]: r for r in sr}
    if args.pairs:
        pairs = []
        for entry in (e for e in args.pairs.split(",") if e):
            metric, sep, model = entry.partition("=")
            if not sep or metric not in srcc or model not in info:
                raise UserError(f"--pairs {entry!r}: expected metric=model, a metric of {args.fr_results} "
                                f"({', '.join(srcc)}), a model of {args.sr_results} ({', '.join(info)})")  # fmt: skip
            pairs.append((metric, model))
    else:
        pairs = []
        for model, record in info.items():
            backbone = record.get("per_backbone")
            metric = _backbone_metric(backbone, list(srcc)) if backbone else None
            if metric is None:
                print(f"{model}: no perceptual loss backbone with an FR metric of that name; left out")
                continue
            pairs.append((metric, model))
    points, seen = [], {}
    for metric, model in pairs:
        if model not in averages:
            print(f"{model}: no leaderboard average (no available metric); left out")
            continue
        loss = info[model].get("loss") or "unknown"
        key = (metric, loss)
        if key in seen:
            raise UserError(f"{seen[key]} and {model} both pair {metric} with loss {loss}: pass --pairs to choose one")
        seen[key] = model
        points.append({"backbone": info[model].get("per_backbone") or metric, "metric": metric, "model": model,
                       "loss": loss, "srcc": srcc[metric], "average": averages[model]})  # fmt: skip
    if not points:
        raise UserError("no (FR metric, SR model) pair found: pass --pairs metric=model,...")
    write_records(points, args.output_dir, "correlation")
    path = plot_correlation(points, os.path.join(args.output_dir, "correlation.png"))
    for loss in dict.fromkeys(p["loss"] for p in points):
        group = [p for p in points if p["loss"] == loss]
        if len(group) < 3:
            print(f"{loss}: n = {len(group)} backbones; a Spearman correlation needs at least 3, none reported")
            continue
        rho = spearmanr([p["srcc"] for p in group], [p["average"] for p in group]).statistic
        print(f"{loss}: Spearman {rho:.3f} between assessment SRCC and SR leaderboard average (n = {len(group)})")
    print(f"scatter written to {path}; points to correlation.csv / .json")
    return points


def _run_card(run: str) -> dict:
    """The card (train_sr.py facts) in a run folder's config.json."""
    import json

    path = os.path.join(run, "config.json")
    if not os.path.isfile(path):
        raise UserError(f"--runs: {run} holds no config.json (pass train_sr.py output folders)")
    with reading(path, "model config", "JSON"), open(path, encoding="utf-8") as file:
        config = json.load(file)
    card = config.get("card") if isinstance(config, dict) else None
    if not isinstance(card, dict):
        raise UserError(f"{path} has no card of training facts: not a train_sr.py output")
    return card


def run_sweep(args) -> list[dict]:
    """Fig. 7: the leaderboard average of SR runs vs their adversarial weight, one line per discriminator backbone."""
    runs = [r for r in args.runs.split(",") if r]
    if not runs:
        raise UserError("--runs must name at least one train_sr.py output folder")
    names = unique_names(runs, "run")
    sr = _read_records(args.sr_results, "sr_results.json", SR_KEYS, SR_NUMBERS)
    check_image_sets([(args.sr_results, sr)])
    averages = sr_model_averages(sr)
    by_source = {os.path.normpath(str(r.get("source", ""))): r["model"] for r in sr}
    points, baselines = [], []
    for run, name in zip(runs, names):
        card = _run_card(run)
        model = by_source.get(os.path.normpath(run), name if name in averages else None)
        if model not in averages:
            raise UserError(f"{run} has no leaderboard average in {args.sr_results}: run evaluate.py sr on it first")
        loss, weight = card_loss(card) or "", card.get("--lambda_adv")
        backbone = card_disc_backbone(card)
        if "adv" not in loss.split("+") or backbone is None:
            baselines.append({"run": name, "model": model, "average": averages[model]})
            continue
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise UserError(f"{run}: its card records no numeric --lambda_adv ({weight!r})")
        points.append({"run": name, "model": model, "backbone": backbone, "lambda_adv": float(weight),
                       "average": averages[model]})  # fmt: skip
    write_records(points + [{**b, "backbone": None, "lambda_adv": 0.0} for b in baselines], args.output_dir, "sweep")
    path = plot_sweep(points, os.path.join(args.output_dir, "sweep.png"), baselines)
    for p in sorted(points, key=lambda p: (p["backbone"], p["lambda_adv"])):
        print(f"{p['backbone']}: lambda_adv {p['lambda_adv']:g} -> average {p['average']:.3f} ({p['run']})")
    for b in baselines:
        print(f"{b['run']}: no adversarial term -> average {b['average']:.3f} (dashed line)")
    print(f"plot written to {path}; points to sweep.csv / .json")
    return points


def _study_columns(overrides: list[str], metrics: list[str]) -> dict[str, str]:
    """{column header: sr_results metric} of the study's table: the first default name present in ``metrics``
    (case-insensitive), unless ``--metric COLUMN=NAME`` says otherwise."""
    headers = {h.lower(): h for h, _, _ in STUDY_COLUMNS}
    chosen = {}
    for entry in overrides:
        header, sep, name = entry.partition("=")
        if not sep or header.strip().lower() not in headers or not name.strip():
            raise UserError(
                f"--metric {entry!r}: expected COLUMN=NAME with COLUMN one of {', '.join(headers.values())}"
            )
        chosen[headers[header.strip().lower()]] = name.strip()
    lowered = {m.lower(): m for m in metrics}
    for header, defaults, _ in STUDY_COLUMNS:
        if header not in chosen:
            chosen[header] = next((lowered[d] for d in defaults if d in lowered), defaults[0])
    return {h: chosen[h] for h, _, _ in STUDY_COLUMNS}


def run_robust_table(args) -> list[dict]:
    """The robust-loss study's table: SR metrics of its runs, averaged by (loss letters, robust features)."""
    files = [f for entry in args.sr_results for f in entry.split(",") if f]
    if not files:
        raise UserError("--sr_results must name at least one sr_results.json")
    read = [(path, _read_records(path, "sr_results.json", SR_KEYS, SR_NUMBERS)) for path in files]
    check_image_sets(read)  # one image set per test set, across all the files
    records, seen, left_out, unknown = [], {}, {}, {}
    for path, file_records in read:
        for r in file_records:
            run = os.path.normpath(str(r.get("source") or r["model"]))
            letters = study_loss(r.get("loss"))
            if letters is None:
                loss = f"loss {r['loss']}" if r.get("loss") else "no loss recorded"
                left_out.setdefault(r["model"], f"{loss}, not one of the study's ({', '.join(STUDY_TERMS)})")
                continue
            if letters != "E" and not {"feat_weights", "feat_robust"} <= set(r):
                raise UserError(f"{path} was written before evaluate.py sr recorded feat_weights and their robustness "
                                "(feat_robust): run evaluate.py sr on it again (its cached outputs make that "
                                "quick)")  # fmt: skip
            if letters != "E" and str(r.get("feat_weights") or "").startswith("gan:"):
                left_out.setdefault(r["model"], f"features {r['feat_weights']} (a GAN discriminator's: neither "
                                                "standard nor robust)")  # fmt: skip
                continue
            key = (run, r["metric"], r["dataset"])
            if key in seen:
                raise UserError(f"{run} is scored by {r['metric']} on {r['dataset']} in both {seen[key]} and {path}: "
                                "pass each evaluation once")  # fmt: skip
            seen[key] = path
            robust = None if letters == "E" else r["feat_robust"]
            if letters != "E" and robust not in ROBUST:
                raise UserError(f"{path}: {r['model']} has feat_robust {robust!r}, not one of {', '.join(ROBUST)}")
            if robust == "unknown":
                unknown.setdefault(r["model"], r.get("feat_robust_why") or "no reason recorded")
            records.append({**r, "run": run, "letters": letters, "robust": robust})
    for model, why in left_out.items():
        print(f"{model}: {why}; left out")
    for model, why in unknown.items():
        print(f"{model}: robustness of its feature weights unknown ({why}); its row says unknown")
    if not records:
        raise UserError(f"no model in {', '.join(files)} was trained with the study's losses "
                        f"({'+'.join(STUDY_TERMS)} in train_sr.py --loss)")  # fmt: skip
    columns = _study_columns(args.metric, list(dict.fromkeys(r["metric"] for r in records)))
    rows, notes = robust_table_records(records, columns)
    text = robust_table(rows, columns, notes)
    write_records(rows, args.output_dir, "robust_table")
    write_text(os.path.join(args.output_dir, "robust_table.md"), text + "\n")
    print(text)
    return rows


def run_classify(args) -> list[dict]:
    """The study's Fig. 1: top-1 error of classifiers on images restored by SR models from their x4 bicubic LR, each
    classifier on the HR crop its weights are evaluated with."""
    from asym.classify import load_classifier, plot_top1_errors, target_indices, top1_errors, top1_table
    from asym.labelled_images import ClassificationSet, load_labelled_set
    from asym.sr_eval import SROutputCache, load_sr_source

    classifier_sources = [c for c in args.classifiers.split(",") if c]
    model_sources = [m for m in args.models.split(",") if m]
    if not classifier_sources or not model_sources:
        raise UserError("--classifiers and --models must each name at least one entry")
    classifier_names = unique_names(classifier_sources, "classifier")
    model_names = unique_names(model_sources, "model")
    images = load_labelled_set(args.dataset, args.split, args.image_column, args.label_column)
    if args.max_images is not None:
        images = images.subset(evenly_spaced(list(range(len(images))), args.max_images))
    classifiers = [load_classifier(c, args.classifier_weights, args.device, args.seed, args.image_size)
                   for c in classifier_sources]  # fmt: skip
    for classifier, name in zip(classifiers, classifier_names):
        classifier.name = name
        try:
            cut = ClassificationSet(images, classifier.crop, args.scale)
        except UserError as err:
            raise UserError(f"{name}: {err}") from err
        print(f"{name}: {cut.name}, HR crop {classifier.crop} ({classifier.crop_source}); "
              f"{target_indices(images, classifier)[1]}")  # fmt: skip
    sources = [load_sr_source(m, args.scale, args.device, args.mixed_precision) for m in model_sources]
    images.check_images()  # every image decoded once: a broken one fails here, before anything is written
    print(f"{images.label}: {len(images)} images, x{args.scale} bicubic LR of each HR crop")
    cache = SROutputCache(os.path.join(args.output_dir, "sr_cache"))
    records = top1_errors(classifiers, sources, model_names, images, args.scale, cache, args.device, args.tile)
    labels = {}
    for name, source in zip(model_names, sources):
        card = getattr(source.module, "card", None)
        loss, weights = card_loss(card), card_feat_weights(card)
        letters = study_loss(loss)
        robust = robust_label(letters, weights) if letters else None
        labels[name] = name + (f"\n[{letters or loss}{', robust' if robust == 'yes' else ''}]" if loss else "")
        for record in records:
            if record["model"] == name:
                record.update(loss=loss, feat_weights=weights)
    text = top1_table(records)
    write_records(records, args.output_dir, "classify")
    write_text(os.path.join(args.output_dir, "classify.md"), text + "\n")
    path = plot_top1_errors(records, os.path.join(args.output_dir, "classify.png"), labels)
    print(text)
    print(f"chart written to {path}; table to classify.csv / .json / .md")
    return records


def run_grid(args) -> str:
    """``grid.png``: per image a row of the input (its bicubic LR, nearest-upsampled), each model's output and the
    reference, each column labelled above (``asym.image_grid``), with the models' PSNR and SSIM (Y, border = scale)
    printed; for autoencoders (scale 1) the input is the image."""
    from asym.data import bicubic_downscale
    from asym.image_grid import save_labelled_grid
    from asym.metrics import psnr, ssim
    from asym.sr_eval import load_sr_source

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
            scores = [f(out, hr, border=args.scale, y_channel=True).item() for f in (psnr, ssim)]
            print(f"{image}: {name} PSNR {scores[0]:.2f} dB, SSIM {scores[1]:.4f} (Y)")
            shown.append(out)
        rows += [*shown, hr]
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "grid.png")
    columns = [f"LR x{args.scale} (nearest)" if args.scale > 1 else "input", *names, "reference"]
    save_labelled_grid(path, torch.cat(rows), columns, padding=2, pad_value=1.0)
    print(f"columns: input | {' | '.join(names)} | reference; written to {path}")
    return path


COMMANDS = {"fr": run_fr, "nr": run_nr, "init-comparison": run_init_comparison, "features": run_features,
            "recover": run_analysis, "texture": run_analysis, "sr": run_sr_leaderboard,
            "correlation": run_correlation, "sweep": run_sweep, "robust-table": run_robust_table,
            "classify": run_classify, "grid": run_grid}  # fmt: skip


def main(args):
    check_output_dir(args.output_dir)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    run_cli(main, parse_args())
