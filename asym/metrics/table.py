"""Every metric asym scores with, one row each (pyiqa's shape: one config per metric behind one name).

A row says what the metric compares (``fr``: an output against its reference; ``nr``: one image alone), which way
is better, its score range, whether it scores single images, and how it loads:

* ``asym``: asym's fidelity indices ``psnr``, ``ssim``, ``uqi``, ``ifc`` (``asym.metrics.fidelity``, float64, the
  SR papers' protocol when called with ``border`` / ``y_channel``). They are not differentiable; as a loss
  (``as_loss=True``) a name pyiqa also has (``psnr``, ``ssim``) is pyiqa's differentiable implementation of it.
* ``vlm``: the vision-language NR scorers pyiqa lacks, ``deqa`` and ``visualquality-r1`` (``asym.metrics.vlm``).
* ``pyiqa``: every pyiqa FR / NR name, with pyiqa's own direction and range (its ``DEFAULT_CONFIGS``); a name asym
  also has is reached as ``pyiqa:<name>``, and any pyiqa name may be written so. FID, IS and CLIPScore are rows too,
  but score image sets or captions (``per_image`` False), so ``create_metric`` refuses them.
* ``saved``: a folder or Hub id of a model saved by asym, by the class its config.json names (``saved_class``):
  ``DISTS`` / ``LPIPS`` (train_metric.py, FR, lower is better) or ``IQAModel`` (train_iqa.py, FR or NR by its mode,
  higher is better).

``metric_info(name_or_path)`` reads a row without loading any weights; ``list_metrics()`` lists the names.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from ..core.errors import UserError
from ..core.hub import saved_class
from ..core.sources import resolve_source
from .vlm import DEFAULT_DEQA, DEFAULT_VISUALQUALITY_R1

PYIQA_PREFIX = "pyiqa:"
KINDS = ("fr", "nr")


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``name``, ``kind`` (fr / nr), ``lower_better``, ``score_range`` (as documented; "" if unknown),
    ``per_image``, ``loader`` (asym / vlm / pyiqa / saved), ``target`` (the function, VLM class, pyiqa name or saved
    class that computes it) and ``weights`` (a VLM's default Hub id; a saved model's folder or id)."""

    name: str
    kind: str
    lower_better: bool
    score_range: str
    per_image: bool
    loader: str
    target: str
    weights: str = ""
    differentiable: bool = True


ASYM_METRICS = {
    "psnr": MetricSpec("psnr", "fr", False, "dB, 120 for identical images", True, "asym", "psnr", differentiable=False),
    "ssim": MetricSpec("ssim", "fr", False, "-1..1", True, "asym", "ssim", differentiable=False),
    "uqi": MetricSpec("uqi", "fr", False, "-1..1", True, "asym", "uqi", differentiable=False),
    "ifc": MetricSpec("ifc", "fr", False, "0.. (bits per pixel, unbounded)", True, "asym", "ifc", differentiable=False),
}
VLM_METRICS = {
    "deqa": MetricSpec("deqa", "nr", False, "1..5", True, "vlm", "DeQAScore", DEFAULT_DEQA, False),
    "visualquality-r1": MetricSpec(
        "visualquality-r1", "nr", False, "1..5", True, "vlm", "VisualQualityR1", DEFAULT_VISUALQUALITY_R1, False
    ),  # fmt: skip
}
# In pyiqa's NR list, but they score a set of images (FID, IS) or an image against a caption (CLIPScore).
NOT_PER_IMAGE = ("fid", "fid_dinov2", "sfid", "inception_score", "clipscore")
SAVED_CLASSES = {"DISTS": "fr", "LPIPS": "fr", "IQAModel": None}  # None: FR or NR, as the model's mode says


@functools.cache
def pyiqa_metrics() -> dict[str, MetricSpec]:
    """pyiqa's metrics as rows, keyed by pyiqa name (``DEFAULT_CONFIGS``: mode, direction, range)."""
    import pyiqa
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    rows = {}
    for kind in KINDS:
        for name in pyiqa.list_models(metric_mode=kind.upper()):
            config = DEFAULT_CONFIGS.get(name, {})
            lower, score_range = bool(config.get("lower_better", False)), str(config.get("score_range", ""))
            rows[name] = MetricSpec(name, kind, lower, score_range, name not in NOT_PER_IMAGE, "pyiqa", name)
    return rows


def _pyiqa_row(name: str) -> MetricSpec | None:
    return pyiqa_metrics().get(name)


def list_metrics(kind: str | None = None, include_set_metrics: bool = False) -> list[str]:
    """Every metric name ``create_metric`` takes (``kind``: only ``fr`` or only ``nr``), asym's and the VLM scorers
    first, then pyiqa's (``pyiqa:<name>`` where asym has the same name). FID / IS / CLIPScore, which score image sets
    or captions, only with ``include_set_metrics``. Saved models (folders, Hub ids) are not listed: any such path is
    taken."""
    if kind not in (None, *KINDS):
        raise UserError(f"kind {kind!r}: expected fr, nr or None")
    rows = [*ASYM_METRICS.values(), *VLM_METRICS.values()]
    names = [r.name for r in rows if kind in (None, r.kind)]
    for name, row in pyiqa_metrics().items():
        if kind in (None, row.kind) and (row.per_image or include_set_metrics):
            names.append(PYIQA_PREFIX + name if name in ASYM_METRICS else name)
    return names


def _saved_row(text: str) -> MetricSpec:
    """The row of a saved asym model (folder or Hub id), read from its config.json without loading weights."""
    cls = saved_class(text)
    if cls is None:
        raise UserError(f"{text} holds no config.json: not a metric saved by asym (save_pretrained)")
    cls = cls or "DISTS"  # a folder saved before the class was recorded: DISTS, the only metric class then
    if cls not in SAVED_CLASSES:
        raise UserError(f"{text} holds an asym {cls}, which is no metric (pass a DISTS / LPIPS folder of "
                        "train_metric.py or an IQAModel folder of train_iqa.py)")  # fmt: skip
    kind = SAVED_CLASSES[cls]
    if kind is None:  # an IQAModel: its mode is in its config
        kind = saved_mode(text)
    return MetricSpec(resolve_source(text).value, kind, cls != "IQAModel", "", True, "saved", cls, text)


def saved_mode(text: str) -> str:
    """``fr`` or ``nr``: the ``mode`` a saved IQAModel's config.json records (nr when it records none)."""
    from ..core.hub import read_saved_config

    mode = read_saved_config(text).get("mode", "nr")
    return mode if mode in KINDS else "nr"


def metric_info(name_or_path: str) -> MetricSpec:
    """The row of a metric name, a ``pyiqa:<name>``, or a saved asym model (folder / Hub id), without loading it.

    Raises:
        UserError: an unknown name (naming close ones), a path that does not exist, a folder that holds no asym
            metric.
    """
    text = str(name_or_path)
    source = resolve_source(text)
    if source.kind in ("folder", "hub"):
        return _saved_row(text)
    if source.kind == "missing":
        raise UserError(f"metric {text} does not exist (a local path; pass a metric name, a saved asym metric "
                        "folder or a Hub id owner/name)")  # fmt: skip
    if text.startswith(PYIQA_PREFIX) and _pyiqa_row(text[len(PYIQA_PREFIX) :]) is not None:
        return _pyiqa_row(text[len(PYIQA_PREFIX) :])
    row = ASYM_METRICS.get(text) or VLM_METRICS.get(text) or _pyiqa_row(text)
    if row is None:
        raise UserError(unknown_metric(text))
    return row


def unknown_metric(name: str, kind: str | None = None) -> str:
    """Why ``name`` is no metric (of ``kind``), and what to pass instead: close names, else some valid ones."""
    usable = list_metrics(kind)
    close = difflib.get_close_matches(name, usable, n=5, cutoff=0.5)
    hint = (
        f"did you mean {', '.join(close)}?" if close else f"e.g. {', '.join(usable[:12])}, ... ({len(usable)} in all)"
    )
    what = {"fr": "a saved asym metric folder / Hub id or an FR metric",
            "nr": "a train_iqa.py output folder / Hub id or an NR metric",
            None: "a saved asym model folder / Hub id or a metric name (asym.list_metrics())"}[kind]  # fmt: skip
    return f"unknown metric {name!r}: pass {what} ({hint})"


__all__ = [
    "ASYM_METRICS",
    "MetricSpec",
    "NOT_PER_IMAGE",
    "PYIQA_PREFIX",
    "SAVED_CLASSES",
    "VLM_METRICS",
    "list_metrics",
    "metric_info",
    "pyiqa_metrics",
    "saved_mode",
    "unknown_metric",
]
