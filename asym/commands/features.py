"""``evaluate.py features``: what each stage of a backbone sees in an image (the paper's Fig. 14)."""

from __future__ import annotations

import argparse
import os

from asym.core.errors import UserError
from asym.core.flags import positive_int
from asym.core.images import BUILTIN_IMAGES, load_image
from asym.iqa.feature_maps import load_feature_backbone, slug, stage_feature_maps
from asym.reporting.figures import plot_stage_features

DESCRIPTION = """\
    python evaluate.py features --model runs/sr --image astronaut --output_dir results/features
    python evaluate.py features --backbone vgg16 --weights pretrained --output_dir results/features

`features`: what each stage of a backbone sees in an image (the paper's Fig. 14): channel mean and the top-k channels
by energy per stage, as features-<model>-<image>.png."""


def register_subcommand(subparsers) -> None:
    feats = subparsers.add_parser(
        "features",
        help="per-stage feature maps of a backbone on an image",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    feats.set_defaults(run=run)


def run(args) -> list[dict]:
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
