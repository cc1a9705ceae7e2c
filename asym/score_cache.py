"""Per-unit score records beside the SR output cache, so that a killed ``evaluate.py sr`` run resumes where it stopped.

A unit is one (model, scorer, test set, image): its raw score and status, written atomically as soon as it is
computed, in ``<output cache>/scores/<scorer>/<model>/<test set>/<image>.json``. Models are keyed as the output cache
keys them (``SRSource.cache_key``: the weights' digest and the inference settings), scorers by ``unit_identity``
(a VLM's Hub revision, a pyiqa metric's name and version, an asym model's weights digest, a fidelity index's
protocol), so changing a model or a scorer invalidates only its own units. The 1..100 maps are applied when the
records are assembled, never stored: a refitted map needs no rescoring.
"""

from __future__ import annotations

import json
import os

from .atomic import write_json
from .sr_eval import cache_name


def unit_identity(metric) -> str:
    """What a unit's score depends on besides the model and the image: the scorer and its protocol."""
    from .metrics.calibration import scorer_identity

    if hasattr(metric, "border") and hasattr(metric, "y_channel"):  # asym's fidelity indices (FidelityMetric)
        return f"asym {metric.name} border={metric.border} y_channel={metric.y_channel}"
    return scorer_identity(metric)


class ScoreCache:
    """The score units of one output cache folder (``SROutputCache.folder``)."""

    def __init__(self, folder: str):
        self.folder = os.path.join(folder, "scores")
        self.reused = self.computed = 0

    def path(self, scorer: str, model_key: str, dataset: str, image: str) -> str:
        """A unit's file, named as the output cache names its files (``cache_name``)."""
        return os.path.join(self.folder, cache_name(scorer, 40), cache_name(model_key, 16), cache_name(dataset, 60),
                            cache_name(image, 100) + ".json")  # fmt: skip

    def get(self, scorer: str, model_key: str, dataset: str, image: str) -> tuple[float, str] | None:
        """The stored (score, status) of a unit, or None (not computed yet, or a record of another unit)."""
        path = self.path(scorer, model_key, dataset, image)
        try:
            with open(path, encoding="utf-8") as file:
                record = json.load(file)
        except (OSError, ValueError):
            return None
        if record.get("unit") != [scorer, model_key, dataset, image]:
            return None
        self.reused += 1
        return float(record["score"]), record["status"]

    def put(self, scorer: str, model_key: str, dataset: str, image: str, score: float, status: str) -> None:
        write_json(self.path(scorer, model_key, dataset, image),
                   {"unit": [scorer, model_key, dataset, image], "score": score, "status": status})  # fmt: skip
        self.computed += 1
