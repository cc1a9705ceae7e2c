"""The paper's 1..100 normalisation of no-reference (NR) IQA scores (its App. D), fitted, applied and saved.

NR metrics score on unrelated scales (NIQE ~ 2..20, lower is better; MUSIQ ~ 20..80; CLIP-IQA 0..1), so a table that
sets them side by side first maps every metric onto a common 1..100 "higher is better" scale::

    N(x) = (e1 - e2) / (1 + exp(-(x - e3) / |e4|)) + e2,    e1 = 100, e2 = 1,

applied to the *oriented* score ``x`` (the raw score, negated for a lower-is-better metric such as NIQE or BRISQUE,
so that a better image always gets a higher normalised score; ``e3`` is then in negated units). ``N`` is
``agreement.logistic4`` with its ends fixed: the midpoint ``e3`` (where ``N = 50.5``) and the width ``|e4|`` are fitted
per metric, by least squares (``scipy.optimize.curve_fit``), so that ``N(score)`` matches the MOS of a calibration set
mapped linearly onto 1..100. Fitting to human judgements, rather than stretching each metric's observed min/max, puts
a given normalised value at the same perceived quality for every metric, and the logistic keeps outliers from
compressing the rest of the scale.

The fitted parameters (with the calibration set, its size and the fit's RMSE) are saved as JSON
(``save_normalisations`` / ``load_normalisations``), so a normalised table can be rebuilt exactly from raw scores.
A map belongs to the scorer it was fitted for, not to a name: each records ``scorer``, the scorer's identity
(``scorer_identity``: a weights hash for asym models, name and version for pyiqa, Hub id and revision for the VLM
scorers), and ``select_normalisation`` applies a saved map only to that scorer, so two models saved in folders of
one name (``kA/iqa``, ``kB/iqa``) never share one.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.atomic import write_json
from ..core.errors import UserError, reading
from ..core.hub import state_digest
from .agreement import finite_scores, is_step_fit

E1, E2 = 100.0, 1.0  # the fixed ends of the normalised scale
MIN_SCORES = 5  # the fewest calibration scores that a 2-parameter fit is asked to explain
FORMAT = "asym-normalisation"  # marks the JSON files written by save_normalisations
_MAXFEV = 10000  # function evaluations for curve_fit; well-posed fits need a few dozen
_FLAT = 0.01  # a fitted map whose values over the calibration scores span less than this (on 1..100) is constant


def _finite_vector(values, what: str) -> np.ndarray:
    """``values`` as a float64 vector; a UserError if it is not one or holds NaN/inf (naming how many and where)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise UserError(f"{what} must be numbers, got {type(values).__name__} ({err})") from err
    return finite_scores(array, what)


def _check_parameters(e3, e4, what: str = "normalisation") -> tuple[float, float]:
    """``e3``, ``e4`` as floats; a UserError unless both are finite numbers and ``e4 != 0`` (N needs a width)."""
    for name, value in (("e3", e3), ("e4", e4)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise UserError(f"{what}: {name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise UserError(f"{what}: {name} must be finite, got {value!r}")
    if e4 == 0:
        raise UserError(f"{what}: e4 (the logistic's width) must not be 0")
    return float(e3), float(e4)


def _map(x: np.ndarray, e3: float, e4: float) -> np.ndarray:
    """``N`` on oriented scores, through ``expit`` (no overflow for any ``|x - e3| / |e4|``)."""
    from scipy.special import expit

    return (E1 - E2) * expit((x - e3) / abs(e4)) + E2


def normalise(x, e3: float, e4: float, lower_better: bool = False) -> np.ndarray:
    """Raw scores -> the 1..100 scale, ``N(x)`` (module docstring), increasing in quality.

    A ``lower_better`` metric's scores are negated first, so ``N`` always rises with quality (``e3`` is then in negated
    units, as ``fit_normalisation`` returns it). Computed with ``scipy.special.expit``, so scores far from ``e3`` reach
    the ends (1 or 100 in floating point) without overflow. NaN/inf scores, non-finite ``e3``/``e4`` and ``e4 == 0``
    are UserErrors.
    """
    e3, e4 = _check_parameters(e3, e4)
    shape = np.shape(x)
    scores = _finite_vector(np.ravel(x), "scores")
    return _map(-scores if lower_better else scores, e3, e4).reshape(shape)


@dataclass(frozen=True)
class Normalisation:
    """One metric's fitted ``N``: ``e3``/``e4`` on the oriented scores, and how well it fitted its calibration set.

    ``calibration`` names the set the fit used ("" if unnamed), ``n`` its size, ``rmse`` the fit's root-mean-square
    error on the 1..100 scale (``None`` where unknown), kept so that a table states how far to trust its scale;
    ``scorer`` is the ``scorer_identity`` of the scorer fitted ("" where unknown: such a map is not applied by
    ``select_normalisation``).
    """

    metric: str
    e3: float
    e4: float
    lower_better: bool = False
    calibration: str = ""
    n: int = 0
    rmse: float | None = field(default=None)
    scorer: str = ""

    def __post_init__(self) -> None:
        """Refuse parameters that define no map (non-finite, ``e4 == 0``), so a bad one fails where it is made."""
        if not isinstance(self.metric, str) or not self.metric:
            raise UserError(f"a normalisation needs a metric name (a non-empty string), got {self.metric!r}")
        _check_parameters(self.e3, self.e4, f"normalisation of {self.metric}")

    def __call__(self, scores) -> np.ndarray:
        """Raw scores of this metric on the 1..100 scale (``normalise`` with these parameters)."""
        return normalise(scores, self.e3, self.e4, self.lower_better)

    def to_dict(self) -> dict:
        """JSON-ready fields (plain floats, ints and strings)."""
        out = asdict(self)
        out.update(e3=float(self.e3), e4=float(self.e4), n=int(self.n), lower_better=bool(self.lower_better))
        out["rmse"] = None if self.rmse is None else float(self.rmse)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        """The inverse of ``to_dict``; a UserError naming the field where one is missing or of the wrong type."""
        if not isinstance(d, dict):
            raise UserError(f"a normalisation must be a JSON object, got {type(d).__name__}")
        missing = [key for key in ("metric", "e3", "e4") if key not in d]
        if missing:
            raise UserError(f"normalisation {d.get('metric', '(unnamed)')!r} lacks {', '.join(missing)}")
        unknown = sorted(set(d) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise UserError(f"normalisation {d['metric']!r} has unknown fields {', '.join(unknown)}")
        lower_better, calibration = d.get("lower_better", False), d.get("calibration", "")
        n, rmse, scorer = d.get("n", 0), d.get("rmse"), d.get("scorer", "")
        if not isinstance(lower_better, bool):
            raise UserError(f"normalisation {d['metric']!r}: lower_better must be true or false, got {lower_better!r}")
        for key, value in (("calibration", calibration), ("scorer", scorer)):
            if not isinstance(value, str):
                raise UserError(f"normalisation {d['metric']!r}: {key} must be a string, got {value!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise UserError(f"normalisation {d['metric']!r}: n must be a count, got {n!r}")
        if rmse is not None and (isinstance(rmse, bool) or not isinstance(rmse, (int, float))):
            raise UserError(f"normalisation {d['metric']!r}: rmse must be a number or null, got {rmse!r}")
        return cls(d["metric"], d["e3"], d["e4"], lower_better, calibration, n, rmse, scorer)


def fit_normalisation(
    scores,
    mos,
    lower_better: bool = False,
    mos_range: tuple[float, float] | None = None,
    *,
    metric: str = "metric",
    calibration: str = "",
    scorer: str = "",
) -> Normalisation:
    """Fit ``e3``, ``e4`` so that ``N(scores)`` matches the calibration MOS mapped linearly onto 1..100.

    ``mos_range=(lo, hi)`` is the MOS scale (e.g. ``(1, 5)``; ``lo`` maps to 1, ``hi`` to 100), by default the
    observed min/max. The fit is least squares (``scipy.optimize.curve_fit``) on the oriented scores ``x`` (negated
    if ``lower_better``), starting from ``e3 = mean(x)``, ``e4 = std(x) / 4`` (the midpoint at the typical score, the
    transition spanning the bulk of them); it runs on standardised scores, an affine change undone afterwards, so its
    steps and tolerances suit scores of any scale and offset. ``metric`` and ``calibration`` name what was fitted,
    ``scorer`` identifies the scorer (``scorer_identity``) that the map may be applied to.

    Raises:
        UserError: fewer than 5 scores, mismatched lengths, NaN/inf, constant scores or MOS, MOS outside
            ``mos_range``; or a failed fit, named with its reason: no convergence, non-finite parameters, a step
            (``metrics.is_step_fit``, ``|e4| ~ 0``: at most one calibration score inside the transition, so
            ``e3``/``e4`` are undetermined) or a constant map (the scores do not rise with the MOS). A failed fit is
            never returned.
    """
    from scipy.optimize import OptimizeWarning, curve_fit
    from scipy.stats import spearmanr

    what = f"normalisation of {metric}" + (f" on {calibration}" if calibration else "")
    x, m = _finite_vector(scores, f"{metric} scores"), _finite_vector(mos, "MOS")
    if len(x) != len(m):
        raise UserError(f"{what}: {len(x)} scores but {len(m)} MOS; they must be paired")
    if len(x) < MIN_SCORES:
        raise UserError(f"{what} needs at least {MIN_SCORES} calibration scores, got {len(x)}")
    if np.ptp(x) == 0:
        raise UserError(f"{what}: all {len(x)} scores are equal ({x[0]:g}); a constant metric cannot be normalised")
    if mos_range is None:
        lo, hi = float(m.min()), float(m.max())
        if lo == hi:
            raise UserError(f"{what}: all {len(m)} MOS are equal ({lo:g}); give mos_range or a varied calibration set")
    else:
        lo, hi = (float(v) for v in mos_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise UserError(f"{what}: mos_range must be (lo, hi) with finite lo < hi, got {mos_range!r}")
        outside = int(((m < lo) | (m > hi)).sum())
        if outside:
            raise UserError(f"{what}: {outside} MOS lie outside mos_range ({lo:g}, {hi:g}); is it the right scale?")
    target = E2 + (E1 - E2) * (m - lo) / (hi - lo)
    x = -x if lower_better else x
    mid, scale = float(x.mean()), float(x.std())
    z = (x - mid) / scale

    def fail(reason: str) -> UserError:
        rising = spearmanr(x, m).statistic
        hint = ""
        if not rising > 0:  # also NaN (constant MOS under a given mos_range)
            hint = f"; the scores do not rise with the MOS (SRCC {rising:.3f}): is lower_better={lower_better} right?"
        return UserError(f"{what} failed: {reason}{hint}")

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # e4 may pass through 0 on the way
            warnings.simplefilter("ignore", OptimizeWarning)  # the parameter covariance is not used
            (c3, c4), _ = curve_fit(_map, z, target, p0=[0.0, 0.25], maxfev=_MAXFEV)
    except (RuntimeError, ValueError) as err:  # no convergence; NaN/inf met along the way
        raise fail(f"curve_fit did not converge ({err})") from err
    e3, e4 = mid + scale * float(c3), scale * abs(float(c4))
    if not (math.isfinite(e3) and math.isfinite(e4)) or e4 == 0:
        raise fail(f"the fit gave non-finite or zero parameters (e3={e3!r}, e4={e4!r})")
    fitted = _map(x, e3, e4)
    if is_step_fit(fitted, E2, E1):
        raise fail(
            f"the fit is a step (|e4| = {e4:.3g}, at most one calibration score inside the transition): e3 and e4 are "
            "undetermined; the MOS jumps between two neighbouring scores"
        )
    if np.ptp(fitted) < _FLAT:
        raise fail(f"the fit is constant (N spans {np.ptp(fitted):.3g} over the calibration scores)")
    rmse = float(np.sqrt(np.mean((fitted - target) ** 2)))
    return Normalisation(metric, e3, e4, bool(lower_better), calibration, len(x), rmse, scorer)


def save_normalisations(path: str, normalisations: Sequence[Normalisation]) -> None:
    """Write fitted normalisations to the JSON file ``path`` (atomically), so a normalised table can be rebuilt.

    Raises:
        UserError: two entries for one metric (one would silently shadow the other on loading).
    """
    names = [n.metric for n in normalisations]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"normalisations listed twice for {', '.join(twice)}; each metric needs exactly one")
    formula = f"N(x) = ({E1:g} - {E2:g}) / (1 + exp(-(x - e3) / |e4|)) + {E2:g}, x negated if lower_better"
    write_json(path, {"format": FORMAT, "formula": formula, "normalisations": [n.to_dict() for n in normalisations]})


def load_normalisations(path: str) -> dict[str, Normalisation]:
    """Normalisations saved by ``save_normalisations``, by metric name.

    Raises:
        UserError: naming ``path``, where the file is missing, is not such JSON, or an entry lacks e3/e4 or holds a
            bad value.
    """
    if not os.path.isfile(path):
        raise UserError(f"normalisation file {path} does not exist")
    with reading(path, "normalisation file", "JSON"), open(path, encoding="utf-8") as file:
        data = json.load(file)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("normalisations"), list):
        raise UserError(f"normalisation file {path} is not one written by save_normalisations (no {FORMAT!r} format)")
    out: dict[str, Normalisation] = {}
    for i, entry in enumerate(data["normalisations"]):
        try:
            normalisation = Normalisation.from_dict(entry)
        except UserError as err:
            raise UserError(f"normalisation file {path}, entry {i}: {err}") from err
        if normalisation.metric in out:
            raise UserError(f"normalisation file {path} lists {normalisation.metric!r} twice")
        out[normalisation.metric] = normalisation
    return out


def scorer_identity(metric) -> str:
    """What a 1..100 map is fitted for: the identity of an NR scorer (an ``asym.metrics.NRMetric`` or its model).

    * an asym model (a train_iqa.py output): ``"<class> weights sha256:<digest>"``, the digest of its parameters and
      buffers that the SR output cache keys models by (``asym.core.hub.state_digest``), so another folder's model,
      or the same folder retrained, is another scorer;
    * a pyiqa metric: ``"pyiqa <name> <pyiqa version>"`` (pyiqa fixes each metric's weights per release);
    * a VLM scorer (``asym.metrics.vlm``): its ``identity``, the Hub id and revision (commit) of its weights.
    """
    model = getattr(metric, "model", metric)
    identity = getattr(model, "identity", None)
    if isinstance(identity, str) and identity:
        return identity
    if type(model).__module__.split(".")[0] == "pyiqa":
        import pyiqa

        name = getattr(model, "metric_name", None) or getattr(metric, "name", type(model).__name__)
        return f"pyiqa {name} {pyiqa.__version__}"
    import torch

    if isinstance(model, torch.nn.Module):
        return f"{type(model).__name__} weights sha256:{state_digest(model)}"
    raise TypeError(f"no scorer identity for a {type(model).__name__}")


def select_normalisation(saved: dict[str, Normalisation], name: str, scorer: str, path: str) -> Normalisation | None:
    """The map in ``saved`` (``load_normalisations`` of ``path``) fitted for ``scorer`` (the metric shown as
    ``name``), None if it holds none for that scorer or that name.

    Raises:
        UserError: the map saved under ``name`` was fitted for another scorer (naming both), or records none (a file
            written before maps were keyed by scorer); either way the fix is to refit it.
    """
    for normalisation in saved.values():
        if normalisation.scorer == scorer:
            return normalisation
    other = saved.get(name)
    if other is None:
        return None
    refit = "refit it with --calibration_dataset (a map is applied only to the scorer it was fitted for)"
    if not other.scorer:
        raise UserError(f"{path}: the map of {name} records no scorer identity (written before maps were keyed by "
                        f"scorer): {refit}")  # fmt: skip
    raise UserError(f"{path}: the map of {name} was fitted for {other.scorer}, but {name} here is {scorer}: {refit}")


def normalisations_from_file(metrics: dict, path: str) -> dict[str, Normalisation]:
    """{name: Normalisation} of each of ``metrics`` ({name: NR scorer}) that the file at ``path`` holds a map for,
    fitted for that scorer's identity (``select_normalisation``: never a name alone); a map fitted in the other
    direction is a ``UserError``. A metric without one is said in a line and left raw."""
    loaded, out = load_normalisations(path), {}
    for name, metric in metrics.items():
        found = select_normalisation(loaded, name, scorer_identity(metric), path)
        if found is None:
            print(f"{name}: no normalisation in {path}; shown raw (score_norm null)")
        elif found.lower_better != metric.lower_better:
            raise UserError(f"{path}: {name} is fitted with lower_better={found.lower_better} but the metric says "
                            f"{metric.lower_better}: refit it")  # fmt: skip
        else:
            out[name] = found
    return out


def fit_normalisations(metrics: dict, dataset, device) -> dict[str, Normalisation]:
    """{name: Normalisation} of each of ``metrics`` ({name: NR scorer}) fitted on ``dataset`` (an NR dataset with
    MOS: the paper's calibration set), each recording its scorer's identity."""
    from .scorers import score_images

    print(f"fitting the 1..100 normalisation on {dataset.name} ({len(dataset)} images, MOS {dataset.direction})")
    out = {}
    for name, metric in metrics.items():
        scores = score_images(metric, dataset, device, desc=f"{name} on {dataset.name}")
        out[name] = fit_normalisation(scores, dataset.quality(), metric.lower_better, metric=name,
                                      calibration=dataset.name, scorer=scorer_identity(metric))  # fmt: skip
    return out


__all__ = [
    "fit_normalisations",
    "normalisations_from_file",
    "Normalisation",
    "fit_normalisation",
    "load_normalisations",
    "normalise",
    "save_normalisations",
    "scorer_identity",
    "select_normalisation",
]
