"""Agreement of scores with people: SRCC, KRCC and PLCC after the 4-parameter logistic fit (VQEG practice).

``correlations`` reports the signed PLCC through ``logistic4`` (linear PLCC, with a ``FitWarning``, where that fit
fails or collapses into a step, ``is_step_fit``; NaN, with a ``ConstantScoresWarning``, for constant scores);
``pearson_loss`` is the differentiable ``1 - PLCC`` that metric learning minimises.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..core.errors import UserError


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
    ``asym.metrics.calibration.fit_normalisation`` (the 1..100 map)."""
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
    against SRCC), a local optimum worse than a straight line, or a map whose direction is against SRCC's (a fit
    that isolates one or two outlying scores: on 8 items it turned PLCC +0.67 against SRCC -0.12); ``"none"`` where
    predictions or MOS are constant: then SRCC, KRCC and PLCC are NaN, with a ``ConstantScoresWarning``. NaN/inf in
    either input is a UserError.
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
                    elif srcc * plcc < 0:  # a map against the ranking: fitted to a few outlying scores
                        failure = (f"ran against the ranking (a map of sign {plcc:+.3f} where SRCC is {srcc:+.3f}: a "
                                   "few outlying scores decided it)")  # fmt: skip
    if failure is not None:
        warnings.warn(
            FitWarning(f"the logistic PLCC fit {failure}; the linear PLCC (plain Pearson correlation) is reported"),
            stacklevel=2,
        )
        plcc = linear
    return {"srcc": srcc, "krcc": krcc, "plcc": plcc, "plcc_fit": "linear" if failure else "logistic", "n": n}


def pearson_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - PLCC`` of a batch: a differentiable, scale- and shift-invariant objective for metric learning."""
    p, t = pred - pred.mean(), target - target.mean()
    return 1 - (p * t).sum() / (p.norm() * t.norm()).clamp_min(1e-12)


__all__ = [
    "ConstantScoresWarning",
    "FitWarning",
    "correlations",
    "finite_scores",
    "fit_logistic4",
    "is_step_fit",
    "logistic4",
    "pearson_loss",
]
