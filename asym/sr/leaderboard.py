"""Scoring SR models' outputs (the paper's Table 1): every model on every test set, by every metric, per image.

``score_sr_leaderboard`` runs the models image by image (``asym.sr.output_cache.run_sr``, through the output cache: only
one image's outputs are held in memory) and scores each image's outputs of all models together (``score_outputs``, a
batch per scorer forward); it returns one record per (model, metric, test set), as sr_results.json holds them, and one
row per image, as sr_scores.csv does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..core.errors import UserError
from ..reporting.tables import OK
from .cards import card_feat_weights, card_loss, card_per_backbone, feat_weights_robustness
from .eval_sets import SRTestSet
from .inference import SRSource
from .output_cache import SROutputCache, fingerprint, item_digest, output_identity, pixels_digest, run_sr
from .score_cache import ScoreCache
from .table import REFERENCE


def _statuses(metric, values: list[float]) -> list[str]:
    """Per score: ``"ok"`` if it is finite, else why not: the scorer's own ``last_status`` of that image where it
    keeps one (``asym.metrics.vlm``: ``"unparsable: <reply>"``), else ``"non-finite score (nan)"``."""
    kept = getattr(getattr(metric, "model", metric), "last_status", None)
    kept = kept if isinstance(kept, list) and len(kept) == len(values) else [None] * len(values)
    return ["ok" if math.isfinite(v) else k if k and k != "ok" else f"non-finite score ({v})"
            for v, k in zip(values, kept)]  # fmt: skip


def score_outputs(metric, outputs: list[torch.Tensor], reference: torch.Tensor | None, device,
                  batch_size: int = 8, statuses: list[str] | None = None) -> list[float]:  # fmt: skip
    """Scores of same-sized images (e.g. every model's output of one test image), ``batch_size`` per forward.

    ``metric(batch)`` for NR metrics (``reference`` None) or ``metric(batch, reference expanded)`` for FR ones; each
    returns one score per image. Batching is what lets a GPU scorer run at full width: the leaderboard stacks the
    outputs of all its models for one image (they share the image's size, which whole test sets do not).
    ``statuses``, if given, is extended by one status per image: ``"ok"``, or why its score is not finite (a VLM
    reply without a parsable answer scores NaN), read from the scorer right after the batch it belongs to.
    """
    scores = []
    with torch.no_grad():
        for start in range(0, len(outputs), batch_size):
            batch = torch.cat(outputs[start : start + batch_size]).to(device)
            if reference is None:
                values = metric(batch)
            else:
                values = metric(batch, reference.to(device).expand(batch.shape[0], -1, -1, -1))
            values = [float(v) for v in values.reshape(batch.shape[0]).float().cpu()]
            scores.extend(values)
            if statuses is not None:
                statuses.extend(_statuses(metric, values))
    return scores


def score_sr_leaderboard(test_sets: Sequence[SRTestSet], model_names: list[str], sources: list[SRSource],
                         metric_names: list[str], metrics: list, metric_kinds: list[str],
                         cache: SROutputCache | None, device, batch_size: int = 8, tile: int = 0,
                         max_images: int | None = None, scores: ScoreCache | None = None,
                         shard: tuple[int, int] = (0, 1)) -> tuple[list[dict], dict[str, list]]:  # fmt: skip
    """Every model's outputs (cached) on every test set (its first ``max_images`` images), scored by every metric.

    Args:
        test_sets: the SR test sets (``load_sr_test_set``).
        model_names, sources: the models' table names and their ``SRSource`` s.
        metric_names, metrics, metric_kinds: the metrics' names, scorers (``metric(images[, reference])`` -> one score
            per image; or the ``unavailable: <reason>`` status of one that cannot be built here) and ``"fr"`` /
            ``"nr"`` (whether it takes the HR reference: ``hr`` on an FR metric is ``REFERENCE``, not scored).
        device, batch_size: where the scorers run, and how many images per forward.
        tile: tile size of model inference (0: whole images).
        scores: the score units of earlier runs (``ScoreCache``): a unit found there is not computed again, a unit
            computed is stored at once.
        shard: (rank, world): this process scores images ``rank``, ``rank + world``, ... of each test set
            (``accelerate launch``); ``sr_records`` assembles the records from all processes' rows.

    Returns:
        (units, digests): a row per (model, metric, image) of this shard with its ``score``, ``status``, the image's
        ``pixels`` (``pixels_digest``: what the score was computed from) and its ``index`` in its test set; and per
        test set the (index, digest) of each image it scored.

    Raises:
        UserError: a metric refused an image (e.g. too small for it), naming the test set and the image.
    """
    from ..core.progress import tqdm
    from .score_cache import unit_identity

    rank, world = shard
    source_of = dict(zip(model_names, sources))
    identities = [None if isinstance(m, str) else unit_identity(m) for m in metrics]
    outputs_of = {name: output_identity(source, tile) for name, source in source_of.items()}
    units, digests = [], {}
    for test_set in test_sets:
        count = len(test_set) if max_images is None else min(max_images, len(test_set))
        if rank == 0:
            print(f"{test_set.name}: {count} of {len(test_set)} images" + (f", {world} processes" if world > 1 else ""))
        digests[test_set.name] = []
        # the main process's bar counts every process's images (they advance in step: one image each per round)
        progress = tqdm(total=count, desc=f"sr on {test_set.name}", disable=count < 2 or rank != 0)
        for i in range(rank, count, world):
            one = test_set.one(i)
            item = one[0]
            digests[test_set.name].append((i, item_digest(item)))
            pixels = pixels_digest(item)
            hr, outputs = item.hr[None], {}
            for name, metric, kind, identity in zip(metric_names, metrics, metric_kinds, identities):
                if isinstance(metric, str):
                    continue
                scored = [m for m in model_names if not (kind == "fr" and source_of[m].kind == "hr")]
                found = {}
                if scores is not None:
                    for model in scored:
                        found[model] = scores.get(identity, outputs_of[model], pixels)
                todo = [m for m in scored if found.get(m) is None]
                for model in todo:  # the outputs this image still needs (from the output cache where they are)
                    if model not in outputs:
                        outputs[model] = run_sr(source_of[model], one, cache, tile=tile)[item.name]
                statuses = []
                try:
                    values = score_outputs(metric, [outputs[m] for m in todo], hr if kind == "fr" else None, device,
                                           batch_size, statuses) if todo else []  # fmt: skip
                except UserError as err:  # e.g. an image too small for the metric: say which one
                    progress.close()  # the error on a line of its own
                    size = f"{hr.shape[-1]}x{hr.shape[-2]}"
                    raise UserError(f"{test_set.name} image {item.name} ({size} HR, WxH): {err}") from err
                for model, score, status in zip(todo, values, statuses):
                    found[model] = (score, status)
                    if scores is not None:
                        scores.put(identity, outputs_of[model], pixels, score, status, f"{test_set.name}/{item.name}")
                for model in scored:
                    score, status = found[model]
                    units.append({"model": model, "metric": name, "dataset": test_set.name, "image": item.name,
                                  "pixels": pixels, "index": i, "score": score, "status": status})  # fmt: skip
            progress.update(min(world, count - (i - rank)))
        progress.close()
    return units, digests


def sr_records(units: list[dict], digests: dict[str, list], test_sets: Sequence[SRTestSet], model_names: list[str],
               sources: list[SRSource], metric_names: list[str], metrics: list, metric_kinds: list[str],
               normalisations: dict) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """The leaderboard's files from the score units of every process (``score_sr_leaderboard``): a record per (model,
    metric, test set) with ``score`` (the raw mean), ``score_norm`` (the mean of the normalised per-image scores),
    ``status`` (``ok`` or why there is no number), ``images`` and ``fingerprint`` (which images were scored) and the
    model's facts (``source``, ``kind``, its card's ``loss``, ``per_backbone``, ``feat_weights``, and ``feat_robust``
    / ``feat_robust_why`` by ``feat_weights_robustness``); and a row per (model, metric, image) with its score,
    normalised score, status and ``pixels`` (the sha256 of the HR and LR pixels it was computed from), in the order one
    process writes them (test set, image, metric, model)."""
    cards = {n: getattr(s.module, "card", None) for n, s in zip(model_names, sources)}
    robustness = {n: feat_weights_robustness(card_feat_weights(c)) if c else (None, None) for n, c in cards.items()}
    sets, metric_order, model_order = [t.name for t in test_sets], metric_names.index, model_names.index
    units = sorted(units, key=lambda u: (sets.index(u["dataset"]), u["index"], metric_order(u["metric"]),
                                         model_order(u["model"])))  # fmt: skip
    per_image, scores = [], {}
    for unit in units:
        name, score, status = unit["metric"], unit["score"], unit["status"]
        norm = float(normalisations[name]([score])[0]) if name in normalisations and status == OK else None
        scores.setdefault((unit["dataset"], unit["model"], name), []).append((score, norm, status))
        per_image.append({k: unit[k] for k in ("model", "metric", "dataset", "image", "pixels")} |
                         {"score": score, "score_norm": norm, "status": status})  # fmt: skip
    records = []
    for test_set in test_sets:
        ordered = [digest for _, digest in sorted(digests[test_set.name])]
        images = {"images": len(ordered), "fingerprint": fingerprint(ordered)}
        for model, source in zip(model_names, sources):
            for name, metric, kind in zip(metric_names, metrics, metric_kinds):
                record = {"model": model, "metric": name, "dataset": test_set.name, "score": None, "score_norm": None}
                values = scores.get((test_set.name, model, name), [])
                failed = [status for _, _, status in values if status != OK]
                if isinstance(metric, str):
                    record["status"] = metric
                elif kind == "fr" and source.kind == "hr":
                    record["status"] = REFERENCE
                elif failed:  # no mean over a subset of the images: it would not compare with the other cells
                    why = "; ".join(dict.fromkeys(f.split(":", 1)[0] for f in failed))
                    record["status"] = f"{why}: no score for {len(failed)} of {len(ordered)} images (sr_scores.csv)"
                else:
                    record["score"] = float(np.mean([v for v, _, _ in values]))
                    if name in normalisations:
                        record["score_norm"] = float(np.mean([n for _, n, _ in values]))
                    record["status"] = OK
                card = cards[model]
                record.update(images, source=source.name, kind=source.kind, loss=card_loss(card),
                              per_backbone=card_per_backbone(card), feat_weights=card_feat_weights(card),
                              feat_robust=robustness[model][0], feat_robust_why=robustness[model][1])  # fmt: skip
                records.append(record)
    return records, per_image


__all__ = ["score_outputs", "score_sr_leaderboard", "sr_records"]
