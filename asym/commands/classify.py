"""``evaluate.py classify`` (the robust-loss study's Fig. 1): top-1 error of classifiers on super-resolved images."""

from __future__ import annotations

import argparse
import os

from asym.core.atomic import write_text
from asym.core.errors import UserError
from asym.core.flags import int_at_least, non_negative_int, positive_int
from asym.core.training import evenly_spaced
from asym.reporting.tables import unique_names, write_records
from asym.robust.table import robust_label, study_loss
from asym.sr.cards import card_feat_weights, card_loss

DESCRIPTION = """\
    python evaluate.py classify --classifiers vgg19,resnet50,runs/robust-resnet50 --models runs/ep,runs/ep-robust,hr \\
        --dataset data/imagenet/val --max_images 1000 --output_dir results/fig1

`classify` (the robust-loss study's Fig. 1): labelled images, each cut as the classifier's weights are evaluated (their
torchvision preset: shorter side 256, centre 224 for vgg19 IMAGENET1K_V1; 232, 224 for resnet50 IMAGENET1K_V2): that
crop is the HR image, its antialiased bicubic x--scale downscale the LR; every --models SR model restores it (cached;
once per distinct crop) and the classifier labels the restoration: top-1 error per (classifier, model) in classify.png
(grouped bars), classify.csv / .json / .md. Labels map by class name, by ImageNet synset folder, or as class indices
only where the classifier names no classes (or the dataset gives indices); partly covered class names are an error."""


def register_subcommand(subparsers) -> None:
    cls = subparsers.add_parser(
        "classify",
        help="top-1 error of classifiers on super-resolved images (the study's Fig. 1)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    cls.set_defaults(run=run)


def run(args) -> list[dict]:
    """The study's Fig. 1: top-1 error of classifiers on images restored by SR models from their x4 bicubic LR, each
    classifier on the HR crop its weights are evaluated with."""
    from accelerate.utils import gather_object

    from asym.core.processes import evaluation_state
    from asym.reporting.figures import plot_top1_errors
    from asym.robust.image_classifiers import load_classifier, target_indices
    from asym.robust.labelled_images import ClassificationSet, load_labelled_set
    from asym.robust.top1 import merge_top1_errors, top1_errors, top1_table
    from asym.sr.inference import load_sr_source
    from asym.sr.output_cache import SROutputCache

    state = evaluation_state(args)  # one process unless launched with `accelerate launch`: each classifies a share
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
    records = top1_errors(classifiers, sources, model_names, images, args.scale, cache, args.device, args.tile,
                          shard=(state.process_index, state.num_processes))  # fmt: skip
    if state.num_processes > 1:  # every process's error counts on the main process, which alone writes the files
        records = merge_top1_errors(gather_object([records]))
        if not state.is_main_process:
            return records
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
