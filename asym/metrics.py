"""Scores and their agreement with people.

* ``psnr`` / ``ssim``: fidelity used to monitor super-resolution, one value per image, on images in [0, 1] after
  cropping ``border`` pixels on each side (the scale factor, as in BasicSR). RGB by default; ``y_channel=True`` scores
  the BT.601 luma ``rgb_to_y`` instead, as BasicSR/SwinIR do for SR papers. SSIM is scikit-image's (Gaussian window,
  sigma 1.5, as Wang et al.). UQI and IFC, the robust-loss study's other fidelity indices, are ``asym.fidelity``'s.
* ``correlations``: SRCC, KRCC and signed PLCC after the ``logistic4`` fit (linear PLCC, with a ``FitWarning``, where
  that fit fails or collapses into a step, ``is_step_fit``; NaN, with a ``ConstantScoresWarning``, for constant
  scores). ``pearson_loss`` (metric learning), ``FRMetric`` / ``score_pairs``: any FR metric by name (pyiqa, or a
  saved asym ``DISTS`` / ``LPIPS`` as its config names it), scored over an FR dataset, and ``NRMetric`` /
  ``score_images``: any NR quality model by name (a trained asym ``IQAModel`` or a pyiqa NR metric), scored over an
  NR dataset. A pyiqa metric whose weights cannot be obtained raises ``MetricUnavailable`` (a ``UserError``), so a
  leaderboard can report it and go on.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .errors import UserError, summarize
from .offline import hub_reachable


def _crop(x: torch.Tensor, border: int, min_size: int, what: str) -> torch.Tensor:
    """``x`` without ``border`` pixels on each of its four sides; a UserError if less than ``min_size`` remains."""
    h, w = x.shape[-2:]
    if border < 0 or min(h, w) - 2 * border < min_size:
        raise UserError(
            f"{what}: border {border} does not fit a {h}x{w} image (at least {min_size}x{min_size} pixels must remain "
            f"after cropping {border} on each side)"
        )
    return x[..., border : h - border, border : w - border]


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of (..., 3, H, W) RGB in [0, 1] -> (..., 1, H, W) in [16/255, 235/255], as BasicSR's ``rgb2ycbcr``
    (``y_only``): ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``, not rounded."""
    if x.dim() < 3 or x.shape[-3] != 3:
        raise UserError(f"rgb_to_y needs (..., 3, H, W) RGB images, got shape {tuple(x.shape)}")
    r, g, b = x.unbind(-3)
    return ((16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255).unsqueeze(-3)


def _prepare(x: torch.Tensor, y: torch.Tensor, border: int, y_channel: bool, min_size: int, what: str):
    """Checked, cropped float64 copies of output ``x`` (clamped to [0, 1]) and reference ``y``, as luma if asked."""
    if x.dim() != 4 or x.shape != y.shape:
        raise UserError(f"{what} needs two (B, C, H, W) images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if y_channel and x.shape[1] != 3:
        raise UserError(f"{what} with y_channel=True needs RGB images, got {x.shape[1]} channels")
    x = _crop(x.detach(), border, min_size, what).double().clamp(0, 1)
    y = _crop(y.detach(), border, min_size, what).double()
    return (rgb_to_y(x), rgb_to_y(y)) if y_channel else (x, y)


def psnr(x: torch.Tensor, y: torch.Tensor, border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for (B, C, H, W) images in [0, 1] (peak 1), computed in float64.

    ``border`` pixels are cropped on each side; ``y_channel=True`` scores the ``rgb_to_y`` luma (SR papers' Y-PSNR).
    The output ``x`` is clamped to [0, 1] but, unlike BasicSR's uint8 pipeline, neither image is rounded to 8 bits.
    The MSE is floored at 1e-12, so identical images give 120 dB rather than inf.
    """
    a, b = _prepare(x, y, border, y_channel, 1, "psnr")
    mse = (a - b).square().mean([1, 2, 3])
    return (-10 * torch.log10(mse.clamp_min(1e-12))).float()


def ssim(x: torch.Tensor, y: torch.Tensor, border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Structural similarity per image, for (B, C, H, W) images in [0, 1]: the mean over channels of scikit-image's
    SSIM (11x11 Gaussian window, sigma 1.5, population covariances, the 5-pixel rim that the window cannot cover
    left out), computed in float64, after cropping ``border`` pixels on each side (at least 11x11 must remain), on
    the ``rgb_to_y`` luma if ``y_channel``. Same window, constants and valid region as BasicSR's ``calculate_ssim``."""
    from skimage.metrics import structural_similarity

    a, b = (t.cpu().numpy() for t in _prepare(x, y, border, y_channel, 11, "ssim (11x11 window)"))
    values = [
        structural_similarity(
            p, q, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )  # fmt: skip
        for p, q in zip(a, b)
    ]
    return torch.tensor(np.array(values, dtype=np.float32))


# --- Agreement with human judgements --------------------------------------------------------------------------


class FitWarning(UserWarning):
    """The logistic fit behind PLCC failed, so the plain (linear) Pearson correlation is reported instead."""


class ConstantScoresWarning(UserWarning):
    """Predictions or MOS are all equal, so no correlation is defined (NaN)."""


_MAXFEV = 20000  # function evaluations for the logistic fit; converging fits need a few hundred to a few thousand
_SHORTFALL = 1e-4  # a fit this much below |linear PLCC| is a local optimum (converged ones fall short by < 1e-6)
_SATURATED = 1e-6  # a fitted value this close to an end of the logistic (relative to its range) is outside the slope


def is_step_fit(fitted, low: float, high: float) -> bool:
    """Whether a fitted logistic collapsed into a step on the scores it was fitted to: fewer than 2 of its values
    ``fitted`` lie inside its transition, i.e. farther than ``_SATURATED`` x ``(high - low)`` from both ends ``low``
    and ``high``. Its width then tends to 0 and its midpoint sits anywhere between two neighbouring scores: the map
    splits the scores into two groups (plus at most one free point), so its parameters are undetermined and a
    correlation through it measures that split, not the ranking. Shared by ``correlations`` (PLCC) and
    ``asym.normalisation.fit_normalisation`` (the 1..100 map)."""
    fitted = np.asarray(fitted, dtype=np.float64)
    low, high = min(low, high), max(low, high)
    margin = _SATURATED * (high - low)
    return int(((fitted > low + margin) & (fitted < high - margin)).sum()) < 2


def logistic4(x, b1: float, b2: float, b3: float, b4: float):
    """``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``: the monotonic map fitted before PLCC (VQEG practice).

    Increasing where ``b1 > b2``, decreasing where ``b1 < b2``. With ``b1 = 100, b2 = 1`` it is the paper's ``N(x)``
    that puts NR-IQA scores on a 1..100 scale.
    """
    from scipy.special import expit  # the overflow-free 1 / (1 + exp(-t))

    return (b1 - b2) * expit((np.asarray(x, dtype=np.float64) - b3) / abs(b4)) + b2


def fit_logistic4(pred, mos) -> tuple[float, float, float, float]:
    """Least-squares ``logistic4`` parameters mapping predictions onto MOS (``|b4|`` returned, so ``b4 > 0``).

    The fit runs on standardised scores (an affine change that PLCC ignores; it keeps Levenberg-Marquardt's steps and
    tolerances meaningful for scores of any scale and offset) and starts from the direction of the linear correlation:
    ``b1, b2 = max, min`` of the MOS if it is positive, ``min, max`` if negative. Raises ``RuntimeError`` when the fit
    does not converge (e.g. MOS convex in the predictions: the optimum lies at infinity).
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    pred, mos = np.asarray(pred, dtype=np.float64), np.asarray(mos, dtype=np.float64)
    if pred.shape != mos.shape or pred.ndim != 1 or len(pred) < 5 or np.ptp(pred) == 0 or np.ptp(mos) == 0:
        raise ValueError(f"a 4-parameter fit needs at least 5 non-constant paired scores, got {pred.shape} {mos.shape}")
    p_mid, p_scale, m_mid, m_scale = float(np.median(pred)), float(pred.std()), float(mos.mean()), float(mos.std())
    z, w = (pred - p_mid) / p_scale, (mos - m_mid) / m_scale
    ends = [w.max(), w.min()] if np.corrcoef(z, w)[0, 1] >= 0 else [w.min(), w.max()]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # b4 may pass through 0 on the way
            warnings.simplefilter("ignore", OptimizeWarning)  # the parameter covariance is not used
            c, _ = curve_fit(logistic4, z, w, p0=[*ends, 0.0, 1.0], maxfev=_MAXFEV)
    except RuntimeError as err:
        raise RuntimeError(f"the logistic4 fit did not converge in {_MAXFEV} evaluations ({err})") from err
    c1, c2, c3, c4 = (float(v) for v in c)
    return m_mid + m_scale * c1, m_mid + m_scale * c2, p_mid + p_scale * c3, p_scale * abs(c4)


def finite_scores(values, what: str, consequence: str = "") -> np.ndarray:
    """``values`` as a float64 vector; a UserError for another shape, or naming how many and which entries are
    NaN/inf (followed by ``consequence``, e.g. "; they cannot be correlated")."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise UserError(f"{what} must be one score per item (a vector), got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if len(bad):
        where = ", ".join(str(i) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise UserError(f"{len(bad)} of {len(array)} {what} are NaN/inf (at index {where}){consequence}")
    return array


def _scores(values, what: str) -> np.ndarray:
    return finite_scores(values, what, "; they cannot be correlated")


def correlations(pred, mos) -> dict[str, float | int | str]:
    """SRCC, KRCC (tau-b) and PLCC between predictions and MOS, with ``n`` and ``plcc_fit``.

    Both must be oriented "higher is better" (negate distances first). PLCC is the Pearson correlation between the MOS
    and the predictions mapped by the fitted ``logistic4`` (VQEG practice), **signed by the direction of that map**:
    ``sign(b1 - b2) * pearson(logistic4(pred), mos)``, so an anti-correlated metric gets a negative PLCC, as its SRCC
    (the map itself is always fitted to the MOS, so the unsigned value would be positive). ``plcc_fit`` says how PLCC
    was computed: ``"logistic"``; ``"linear"`` (plain Pearson correlation of pred and mos, with a ``FitWarning``)
    where the fit cannot be trusted: fewer than 5 scores, no convergence, a constant map, a step (``is_step_fit``:
    on small test sets the fit can jump between two neighbouring scores, inflating |PLCC| and even flipping its sign
    against SRCC), or a local optimum worse than a straight line; ``"none"`` where predictions or MOS are constant:
    then SRCC, KRCC and PLCC are NaN, with a ``ConstantScoresWarning``. NaN/inf in either input is a UserError.
    """
    from scipy import stats

    pred, mos = _scores(pred, "predictions"), _scores(mos, "MOS")
    n = len(pred)
    if len(mos) != n or n < 3:
        raise UserError(f"need at least 3 paired scores, got {n} predictions and {len(mos)} MOS")
    constant = [what for what, v in (("predictions", pred), ("MOS", mos)) if np.ptp(v) == 0]
    if constant:
        warnings.warn(
            ConstantScoresWarning(
                f"the {' and the '.join(constant)} are constant (all {n} equal): SRCC, KRCC and PLCC are undefined, "
                "reported as NaN"
            ),
            stacklevel=2,
        )
        return {"srcc": float("nan"), "krcc": float("nan"), "plcc": float("nan"), "plcc_fit": "none", "n": n}
    with warnings.catch_warnings():  # constant inputs were handled above; scipy's own warning would only repeat it
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        srcc = float(stats.spearmanr(pred, mos).statistic)
        krcc = float(stats.kendalltau(pred, mos).statistic)
        linear = float(stats.pearsonr(pred, mos).statistic)
        plcc, failure = float("nan"), None
        if n < 5:
            failure = f"needs at least 5 scores, got {n}"
        else:
            try:
                b1, b2, b3, b4 = fit_logistic4(pred, mos)
            except RuntimeError as err:
                failure = str(err).removeprefix("the logistic4 fit ")
            else:
                fitted = logistic4(pred, b1, b2, b3, b4)
                if not np.isfinite(fitted).all() or np.ptp(fitted) == 0:
                    failure = "collapsed to a constant"
                elif is_step_fit(fitted, b1, b2):
                    failure = (f"collapsed into a step (at most one of the {n} scores on its slope): its PLCC would "
                               "measure a split into two groups, not the ranking")  # fmt: skip
                else:
                    plcc = float(np.sign(b1 - b2) * stats.pearsonr(fitted, mos).statistic)
                    if abs(plcc) < abs(linear) - _SHORTFALL:  # the logistic family contains lines in the limit
                        failure = f"stopped at a local optimum (|PLCC| {abs(plcc):.4f} < linear {abs(linear):.4f})"
    if failure is not None:
        warnings.warn(
            FitWarning(f"the logistic PLCC fit {failure}; the linear PLCC (plain Pearson correlation) is reported"),
            stacklevel=2,
        )
        plcc = linear
    return {"srcc": srcc, "krcc": krcc, "plcc": plcc, "plcc_fit": "linear" if failure else "logistic", "n": n}


def score_pairs(metric, dataset, device, desc: str | None = None, progress: bool = True) -> np.ndarray:
    """``metric(dist, ref)`` for every pair of an FR dataset (``asym.iqa_data.FRDataset``): full images, one pair at a
    time, as sizes may differ between pairs (and batching does not pay on CPU). A tqdm bar unless ``progress`` is
    False."""
    from .progress import tqdm

    scores = []
    with torch.no_grad():
        for i in tqdm(range(len(dataset)), desc=desc, leave=False, disable=not progress):
            item = dataset[i]
            scores.append(float(metric(item["dist"][None].to(device), item["ref"][None].to(device)).item()))
    return np.asarray(scores)


def score_images(metric, dataset, device, desc: str | None = None, progress: bool = True) -> np.ndarray:
    """``metric(image)`` for every image of an NR dataset (``asym.iqa_data.NRDataset``): full images, one at a time
    (sizes may differ). A tqdm bar unless ``progress`` is False."""
    from .progress import tqdm

    scores = []
    with torch.no_grad():
        for i in tqdm(range(len(dataset)), desc=desc, leave=False, disable=not progress):
            scores.append(float(metric(dataset[i]["image"][None].to(device)).reshape(()).item()))
    return np.asarray(scores)


def pearson_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - PLCC`` of a batch: a differentiable, scale- and shift-invariant objective for metric learning."""
    p, t = pred - pred.mean(), target - target.mean()
    return 1 - (p * t).sum() / (p.norm() * t.norm()).clamp_min(1e-12)


# --- Full-reference metrics by name ----------------------------------------------------------------------------


ASYM_FR_CLASSES = ("DISTS", "LPIPS")  # asym classes that score an output against its reference, lower is better


def _asym_class(source: str) -> str:
    """The class a saved asym model's config.json names (``asym_class``; a folder saved before it was recorded is a
    ``DISTS``, the only FR class then), read from the folder or downloaded from the Hub."""
    import os

    from .hub import CONFIG_NAME, saved_class

    if os.path.isdir(source):
        folder = source
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(source, CONFIG_NAME)
        except Exception as err:  # noqa: BLE001 - offline, missing repo or file: all mean "not obtainable"
            raise UserError(f"{source} is no local folder and its {CONFIG_NAME} could not be downloaded from the Hub "
                            f"({summarize(err)}): check the path, the id and the network") from err  # fmt: skip
        folder = os.path.dirname(path)
    saved = saved_class(folder)
    if saved is None:
        raise UserError(f"{source} holds no {CONFIG_NAME}: not a metric saved by asym (save_pretrained)")
    return saved or "DISTS"


class FRMetric:
    """A full-reference metric by name: ``metric(x, y)`` -> (B,) scores, with ``lower_better`` and ``name``.

    ``source`` is a folder or Hub id of a metric saved by asym (the class its config.json names: ``DISTS``, or
    ``LPIPS`` such as an R-LPIPS on a robust backbone; both lower is better), or any pyiqa FR metric name (``psnr``,
    ``ssim``, ``lpips``, ``dists``, ...; pyiqa downloads its weights on first use).

    Raises:
        UserError: an unknown name, or a saved model of another class (an ``IQAModel``, a ``Discriminator``).
    """

    def __init__(self, source: str, device: str | torch.device = "cpu", as_loss: bool = False):
        import os

        self.name = source.rstrip("/").split("/")[-1] if os.path.isdir(source) else source
        if _is_asym_source(source):
            from . import perceptual

            cls = _asym_class(source)
            if cls not in ASYM_FR_CLASSES:
                raise UserError(f"{source} holds an asym {cls}, not a full-reference metric "
                                f"({' or '.join(ASYM_FR_CLASSES)})")  # fmt: skip
            self.model, self.lower_better = getattr(perceptual, cls).from_pretrained(source).to(device), True
        else:
            import pyiqa

            names = pyiqa.list_models(metric_mode="FR")
            if source not in names:
                raise UserError(
                    f"unknown metric {source!r}: pass a saved asym metric folder / Hub id or a pyiqa FR metric "
                    f"({', '.join(names)})"
                )
            hub_reachable()  # no network: one line, then no download retries
            try:
                self.model = pyiqa.create_metric(source, device=torch.device(device), as_loss=as_loss)
            except Exception as err:  # noqa: BLE001 - pyiqa weight downloads fail in many ways offline
                raise UserError(f"pyiqa metric {source!r} could not be created ({type(err).__name__}: {err})") from err
            self.lower_better = bool(self.model.lower_better)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, y).reshape(x.shape[0])


# --- No-reference quality models by name -----------------------------------------------------------------------


class MetricUnavailable(UserError):
    """A metric that exists but cannot be built here: its weights could not be downloaded (offline, no cache), or a
    package it needs is missing. Not the user's mistake in naming it: a leaderboard reports it and goes on.

    ``reason``: why, in one line (the underlying error's type and message).
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


# In pyiqa's NR list, but they score a set of images (FID, IS) or an image against a caption (CLIPScore).
NOT_PER_IMAGE = ("fid", "fid_dinov2", "sfid", "inception_score", "clipscore")


def _is_asym_source(source: str) -> bool:
    """A saved asym model (a folder, a path or a Hub id ``owner/name``) rather than a pyiqa name (which has no "/")."""
    import os

    return os.path.isdir(source) or "/" in source or source.startswith((".", "~"))


class NRMetric:
    """A no-reference quality model by name: ``metric(x)`` -> (B,) scores, with ``lower_better`` and ``name``.

    ``source`` is a folder or Hub id of an NR ``IQAModel`` saved by train_iqa.py (higher is better), or a pyiqa NR
    metric name (``maniqa``, ``musiq``, ``piqe``, ...; pyiqa downloads its weights on first use and says whether lower
    is better: ``lower_better``, which callers use to orient scores before correlating), or ``deqa`` /
    ``visualquality-r1`` (``asym.vlm_scorers``, default Hub weights; VisualQuality-R1 scores NaN, with an
    ``UnparsableAnswerWarning``, where its reply holds no parsable answer, and ``correlations`` then refuses them).

    Raises:
        UserError: an unknown name (listing valid ones), a folder that does not hold an asym ``IQAModel``, an FR
            ``IQAModel`` (it needs references), or a pyiqa metric that does not score single images.
        MetricUnavailable: a known pyiqa metric or VLM scorer that could not be created here (weights not
            downloadable).
    """

    def __init__(self, source: str, device: str | torch.device = "cpu"):
        import os

        self.name = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
        from .vlm_scorers import VLM_SCORERS

        if source in VLM_SCORERS:  # VLM scorers pyiqa lacks (asym.vlm_scorers); NaN where an answer is unparsable
            scorer, hub_id = VLM_SCORERS[source]
            hub_reachable()
            self.model, self.lower_better = scorer.from_pretrained(hub_id, device), False
            return
        if _is_asym_source(source):
            from .iqa_model import IQAModel

            model = IQAModel.from_pretrained(source)
            if model.mode != "nr":
                raise UserError(f"{source} is an FR IQAModel (it scores a distorted image against its reference): "
                                "NR evaluation needs an NR model (train_iqa.py --mode nr)")  # fmt: skip
            self.model, self.lower_better = model.to(device).eval(), False
            return
        import pyiqa

        names = pyiqa.list_models(metric_mode="NR")
        if source not in names or source in NOT_PER_IMAGE:
            raise UserError(_unknown_nr_metric(source, names, pyiqa.list_models(metric_mode="FR")))
        hub_reachable()  # no network: one line, then no download retries (46 s for MANIQA)
        try:
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


__all__ = [
    "ASYM_FR_CLASSES",
    "ConstantScoresWarning",
    "FRMetric",
    "MetricUnavailable",
    "NOT_PER_IMAGE",
    "NRMetric",
    "FitWarning",
    "correlations",
    "fit_logistic4",
    "is_step_fit",
    "logistic4",
    "pearson_loss",
    "psnr",
    "rgb_to_y",
    "score_images",
    "score_pairs",
    "ssim",
]
