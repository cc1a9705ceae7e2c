"""Metrics by name: the scorers ``create_metric`` builds from a row of ``asym.metrics.table``, and their loops.

* ``FidelityMetric``: asym's PSNR / SSIM / UQI / IFC (``asym.metrics.fidelity``) with the ``border`` / ``y_channel``
  it was created with (the SR papers' protocol in ``evaluate.py sr``: Y channel, ``--scale`` border cropped).
* ``FRMetric``: a saved asym ``DISTS`` / ``LPIPS`` (as its config names it) or a pyiqa FR metric.
* ``NRMetric``: a trained asym ``IQAModel`` (NR), a pyiqa NR metric or a VLM scorer (``asym.metrics.vlm``).
* ``score_pairs`` / ``score_images``: a metric over an FR / NR dataset, one item at a time.

Every scorer is called as ``metric(x, y)`` (FR) or ``metric(x)`` (NR) on (B, 3, H, W) images in [0, 1] and returns
(B,) scores, with ``name``, ``kind`` and ``lower_better``. A pyiqa metric or VLM scorer whose weights cannot be
obtained raises ``MetricUnavailable`` (a ``UserError``), so a leaderboard can report it and go on.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..core.errors import MetricUnavailable, UserError, summarize
from ..core.hub import saved_class
from ..core.offline import hub_reachable, no_download_notices
from ..core.sources import resolve_source
from . import fidelity
from .table import NOT_PER_IMAGE, PYIQA_PREFIX, VLM_METRICS, MetricSpec, metric_info, pyiqa_metrics, unknown_metric

FR_CLASSES = ("DISTS", "LPIPS")  # asym classes that score an output against its reference, lower is better


class FidelityMetric:
    """asym's ``psnr`` / ``ssim`` / ``uqi`` / ``ifc`` as a scorer: ``metric(x, y)`` -> (B,) scores, higher is better,
    on the ``rgb_to_y`` luma if ``y_channel``, ``border`` pixels cropped on each side."""

    def __init__(self, spec: MetricSpec, border: int = 0, y_channel: bool = False):
        self.name, self.kind, self.lower_better, self.spec = spec.name, "fr", False, spec
        self.function, self.border, self.y_channel = getattr(fidelity, spec.target), border, y_channel

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.function(x, y, border=self.border, y_channel=self.y_channel)


class FRMetric:
    """A full-reference metric by name: ``metric(x, y)`` -> (B,) scores, with ``lower_better`` and ``name``.

    ``source`` is a folder or Hub id of a metric saved by asym (the class its config.json names: ``DISTS``, or
    ``LPIPS`` such as an R-LPIPS on a robust backbone; both lower is better), or any pyiqa FR metric name (or
    ``pyiqa:<name>``) (``psnr``,
    ``ssim``, ``lpips``, ``dists``, ...; pyiqa downloads its weights on first use).

    Raises:
        UserError: an unknown name, or a saved model of another class (an ``IQAModel``, a ``Discriminator``).
        MetricUnavailable: a known pyiqa metric whose weights could not be obtained here.
    """

    def __init__(self, source: str, device: str | torch.device = "cpu", as_loss: bool = False):
        self.name = source.rstrip("/").split("/")[-1] if os.path.isdir(source) else source
        self.kind = "fr"
        if resolve_source(source).kind in ("folder", "hub", "missing"):  # a saved asym model
            from ..nets import perceptual

            cls = saved_class(source)
            if cls is None:
                raise UserError(f"{source} holds no config.json: not a metric saved by asym (save_pretrained)")
            cls = cls or "DISTS"  # saved before the class was recorded: a DISTS, the only FR class then
            if cls not in FR_CLASSES:
                raise UserError(f"{source} holds an asym {cls}, not a full-reference metric "
                                f"({' or '.join(FR_CLASSES)})")  # fmt: skip
            self.model, self.lower_better = getattr(perceptual, cls).from_pretrained(source).to(device), True
        else:
            import pyiqa

            names = pyiqa.list_models(metric_mode="FR")
            source = source.removeprefix(PYIQA_PREFIX)
            if source not in names:
                raise UserError(
                    f"unknown metric {source!r}: pass a saved asym metric folder / Hub id or a pyiqa FR metric "
                    f"({', '.join(names)})"
                )
            try:  # no network: one line, then no download retries and no notice of the download that fails
                with no_download_notices():
                    self.model = pyiqa.create_metric(source, device=torch.device(device), as_loss=as_loss)
            except Exception as err:  # noqa: BLE001 - pyiqa weight downloads fail in many ways offline
                why = f"pyiqa metric {source!r} could not be created ({type(err).__name__}: {err})"
                raise MetricUnavailable(why) from err  # its reason: the whole line, as evaluate.py sr shows it
            self.lower_better = bool(self.model.lower_better)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, y).reshape(x.shape[0])


class NRMetric:
    """A no-reference quality model by name: ``metric(x)`` -> (B,) scores, with ``lower_better`` and ``name``.

    ``source`` is a folder or Hub id of an NR ``IQAModel`` saved by train_iqa.py (higher is better), or a pyiqa NR
    metric name (``maniqa``, ``musiq``, ``piqe``, ...; pyiqa downloads its weights on first use and says whether lower
    is better: ``lower_better``, which callers use to orient scores before correlating), or ``deqa`` /
    ``visualquality-r1`` (``asym.metrics.vlm``, default Hub weights; VisualQuality-R1 scores NaN, with an
    ``UnparsableAnswerWarning``, where its reply holds no parsable answer, and ``correlations`` then refuses them).

    Raises:
        UserError: an unknown name (listing valid ones), a folder that does not hold an asym ``IQAModel``, an FR
            ``IQAModel`` (it needs references), or a pyiqa metric that does not score single images.
        MetricUnavailable: a known pyiqa metric or VLM scorer that could not be created here (weights not
            downloadable).
    """

    def __init__(self, source: str, device: str | torch.device = "cpu", **vlm_options):
        self.name = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
        self.kind = "nr"
        if source in VLM_METRICS:  # VLM scorers pyiqa lacks (asym.metrics.vlm); NaN where an answer is unparsable
            from . import vlm

            row = VLM_METRICS[source]
            hub_reachable()
            scorer = getattr(vlm, row.target).from_pretrained(row.weights, device, **vlm_options)
            self.model, self.lower_better = scorer, False
            return
        if resolve_source(source).kind in ("folder", "hub", "missing"):  # a saved asym model
            from ..nets.iqa_model import IQAModel

            model = IQAModel.from_pretrained(source)
            if model.mode != "nr":
                raise UserError(f"{source} is an FR IQAModel (it scores a distorted image against its reference): "
                                "NR evaluation needs an NR model (train_iqa.py --mode nr)")  # fmt: skip
            self.model, self.lower_better = model.to(device).eval(), False
            return
        import pyiqa

        names = pyiqa.list_models(metric_mode="NR")
        source = source.removeprefix(PYIQA_PREFIX)
        if source not in names or source in NOT_PER_IMAGE:
            raise UserError(_unknown_nr_metric(source, names, pyiqa.list_models(metric_mode="FR")))
        try:  # no network: one line, then no download retries (46 s for MANIQA) and no notice of the failing download
            with no_download_notices():
                self.model = pyiqa.create_metric(source, device=torch.device(device), as_loss=False)
        except Exception as err:  # noqa: BLE001 - pyiqa weight downloads fail in many ways offline
            reason = summarize(err)
            raise MetricUnavailable(f"pyiqa metric {source!r} could not be created ({reason})", reason) from err
        self.lower_better = bool(self.model.lower_better)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of images in [0, 1]: (B,) floats, oriented as ``lower_better`` says."""
        return self.model(x).reshape(x.shape[0]).float()


def _unknown_nr_metric(source: str, names: list[str], fr_names: list[str]) -> str:
    """Why ``source`` is no NR metric, and what to pass instead (close pyiqa names, else some valid ones)."""
    import difflib

    usable = [n for n in names if n not in NOT_PER_IMAGE]
    if source in NOT_PER_IMAGE:
        why = f"pyiqa's {source!r} does not score single images (it compares image sets or needs captions)"
    elif source in fr_names:
        why = f"{source!r} is a full-reference pyiqa metric (use evaluate.py fr)"
    else:
        why = f"unknown model {source!r}"
    close = difflib.get_close_matches(source, usable, n=5, cutoff=0.5)
    some = f"e.g. {', '.join(usable[:12])}, ... ({len(usable)} in all)"
    hint = f"did you mean {', '.join(close)}?" if close else some
    return f"{why}: pass a train_iqa.py output folder / Hub id or a pyiqa NR metric ({hint})"


def create_metric(name_or_path: str, device: str | torch.device = "cpu", *, kind: str | None = None,
                  as_loss: bool = False, **kwargs):  # fmt: skip
    """The one way to a metric: a name of ``asym.list_metrics()`` (``psnr``, ``maniqa``, ``visualquality-r1``,
    ``pyiqa:ssim``, ...) or a saved asym model (a train_metric.py / train_iqa.py folder or Hub id).

    Args:
        name_or_path: what to score with (``asym.metrics.table`` says how each loads).
        device: where its model runs.
        kind: ``fr`` / ``nr`` to refuse a metric of the other kind (with the message of that kind's scorers).
        as_loss: a differentiable metric, to optimise through (asym's float64 indices are pyiqa's then).
        **kwargs: ``border`` / ``y_channel`` for asym's fidelity indices; ``backend`` (``"transformers"``, the
            default, or ``"vllm"``) for ``visualquality-r1``.

    Returns:
        a ``FidelityMetric``, ``FRMetric`` or ``NRMetric``: ``metric(x, y)`` or ``metric(x)`` -> (B,) scores, with
        ``name``, ``kind`` and ``lower_better``.

    Raises:
        UserError: an unknown name, a metric of another ``kind``, a set metric (FID), a folder holding no metric.
        MetricUnavailable: a known metric whose weights or code cannot be obtained here.
    """
    text = str(name_or_path)
    if kind == "nr":
        return NRMetric(text, device)  # its own messages: an FR name, a set metric, close NR names
    try:
        spec = metric_info(text)
    except UserError as err:
        if kind == "fr" and str(err).startswith("unknown metric"):
            raise UserError(unknown_metric(text, "fr")) from err
        raise
    if as_loss and not spec.differentiable and spec.loader == "asym" and spec.name in pyiqa_metrics():
        spec = pyiqa_metrics()[spec.name]  # pyiqa's differentiable implementation of the same index
    if kind is not None and spec.kind != kind:
        raise UserError(f"{text} is {'a full-reference' if spec.kind == 'fr' else 'a no-reference'} metric, not "
                        f"{'full-reference' if kind == 'fr' else 'no-reference'}")  # fmt: skip
    takes = {"border", "y_channel"} if spec.loader == "asym" else {"backend"} if text == "visualquality-r1" else set()
    extra = set(kwargs) - takes
    if extra:
        raise UserError(f"{text} takes no {', '.join(sorted(extra))} (asym's fidelity indices take border, y_channel; "
                        "visualquality-r1 a backend)")  # fmt: skip
    if spec.loader == "asym":
        return FidelityMetric(spec, **kwargs)
    if spec.kind == "nr":
        return NRMetric(text, device, **kwargs)
    return FRMetric(text, device, as_loss=as_loss)


def score_pairs(metric, dataset, device, desc: str | None = None, progress: bool = True) -> np.ndarray:
    """``metric(dist, ref)`` for every pair of an FR dataset (``asym.iqa.data.FRDataset``): full images, one pair at a
    time, as sizes may differ between pairs (and batching does not pay on CPU). A tqdm bar unless ``progress`` is
    False."""
    from ..core.progress import tqdm

    scores = []
    with torch.no_grad():
        for i in tqdm(range(len(dataset)), desc=desc, leave=False, disable=not progress):
            item = dataset[i]
            scores.append(float(metric(item["dist"][None].to(device), item["ref"][None].to(device)).item()))
    return np.asarray(scores)


def score_images(metric, dataset, device, desc: str | None = None, progress: bool = True) -> np.ndarray:
    """``metric(image)`` for every image of an NR dataset (``asym.iqa.data.NRDataset``): full images, one at a time
    (sizes may differ). A tqdm bar unless ``progress`` is False."""
    from ..core.progress import tqdm

    scores = []
    with torch.no_grad():
        for i in tqdm(range(len(dataset)), desc=desc, leave=False, disable=not progress):
            scores.append(float(metric(dataset[i]["image"][None].to(device)).reshape(()).item()))
    return np.asarray(scores)


__all__ = ["FR_CLASSES", "FRMetric", "FidelityMetric", "NRMetric", "create_metric", "score_images", "score_pairs"]
