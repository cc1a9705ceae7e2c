"""Top-1 error of image classifiers on super-resolved images (the robust-loss study's Figure 1): counted, merged
across processes and tabled.

Does an SR model trained with a robust perceptual loss restore what a classifier needs? Each labelled image is cut as
the classifier's weights were evaluated (``classifier.crop``): that crop is the HR image. Its LR is the antialiased
bicubic downscale by ``scale``; every SR model restores it (``run_sr``, through the output cache) and the classifier
labels the restoration. Classifiers that share a cut share its HR crops and restorations; each other cut is one more
pass of the SR models over the set. The figure is ``asym.reporting.figures.plot_top1_errors``.
"""

from __future__ import annotations

import torch

from ..sr.inference import SRSource
from ..sr.output_cache import SROutputCache, run_sr
from .image_classifiers import ImageClassifier, target_indices
from .labelled_images import ClassificationSet, LabelledSet


def top1_errors(classifiers: list[ImageClassifier], sources: list[SRSource], model_names: list[str],
                images: LabelledSet, scale: int, cache: SROutputCache | None, device: str | torch.device = "cpu",
                tile: int = 0, progress: bool = True, shard: tuple[int, int] = (0, 1)) -> list[dict]:  # fmt: skip
    """Top-1 errors of every classifier on every SR model's restorations of ``images``, each classifier on its own
    cut (``classifier.crop``): one record per (classifier, model) with ``dataset`` (the cut set's name), ``crop``,
    ``label_mapping``, ``images``, ``errors`` and ``top1_error`` (errors / images). Classifiers that share a cut share
    its restorations; the models' outputs of one image are classified as one batch. ``shard`` (rank, world): this
    process classifies images ``rank``, ``rank + world``, ...; ``errors`` then counts its share (summed by
    ``merge_top1_errors``), ``images`` stays the whole set's size."""
    from ..core.progress import tqdm

    targets = [target_indices(images, c) for c in classifiers]
    cut = [ClassificationSet(images, c.crop, scale) for c in classifiers]  # fails early on a crop --scale splits
    wrong = torch.zeros(len(classifiers), len(sources), dtype=torch.long)
    for crop in dict.fromkeys(c.crop for c in classifiers):
        group = [k for k, c in enumerate(classifiers) if c.crop == crop]
        dataset = cut[group[0]]
        rank, world = shard
        for i in tqdm(range(rank, len(dataset), world), desc=f"classify {dataset.name}",
                      disable=not progress or len(dataset) < 2 or rank != 0):  # fmt: skip
            one = dataset.one(i)
            batch = torch.cat([run_sr(source, one, cache, tile=tile)[dataset.names[i]] for source in sources])
            for k in group:
                predicted = classifiers[k](batch.to(device)).argmax(1).cpu()
                wrong[k] += (predicted != targets[k][0][i]).long()
    n = len(images)
    return [{"classifier": c.name, "model": m, "dataset": cut[k].name, "crop": str(c.crop), "scale": scale,
             "label_mapping": targets[k][1], "images": n, "errors": int(wrong[k, j]),
             "top1_error": float(wrong[k, j]) / n}
            for k, c in enumerate(classifiers) for j, m in enumerate(model_names)]  # fmt: skip


def merge_top1_errors(parts: list[list[dict]]) -> list[dict]:
    """The records of the whole set from each process's ``top1_errors`` of its share: errors summed, the error rate
    recomputed, in the first part's order."""
    merged = [dict(record) for record in parts[0]]
    for record in merged:
        key = (record["classifier"], record["model"])
        record["errors"] = sum(r["errors"] for part in parts for r in part if (r["classifier"], r["model"]) == key)
        record["top1_error"] = record["errors"] / record["images"]
    return merged


def top1_table(records: list[dict]) -> str:
    """Markdown: a row per SR model, a column per classifier, top-1 error in %; below it, the images, each
    classifier's cut and how its labels were mapped."""
    classifiers = list(dict.fromkeys(r["classifier"] for r in records))
    by_key = {(r["model"], r["classifier"]): r for r in records}
    lines = ["| SR model | " + " | ".join(classifiers) + " |", "|" + " --- |" * (len(classifiers) + 1)]
    for model in dict.fromkeys(r["model"] for r in records):
        cells = [f"{100 * by_key[(model, c)]['top1_error']:.1f}" for c in classifiers]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    first = {r["classifier"]: r for r in reversed(records)}
    sets = ", ".join(dict.fromkeys(r["dataset"] for r in records))
    lines.append(f"\nTop-1 error (%) on {records[0]['images']} images ({sets}): each HR crop downscaled "
                 f"x{records[0]['scale']} (bicubic) and restored by the SR model, then classified.")  # fmt: skip
    lines += [f"{c}: HR crop {first[c]['crop']}; {first[c]['label_mapping']}." for c in classifiers]
    return "\n".join(lines)


__all__ = ["merge_top1_errors", "top1_errors", "top1_table"]
