"""The paper's 1..100 normalisation (App. D): range, monotonicity, fit recovery, refusals, saved parameters."""

import json
import warnings

import numpy as np
import pytest
import scipy.optimize

from asym.core.errors import UserError
from asym.metrics.calibration import (
    Normalisation,
    fit_normalisation,
    load_normalisations,
    normalise,
    save_normalisations,
    scorer_identity,
    select_normalisation,
)


def reference_n(x, e3, e4):
    """The formula written out directly with np.exp (fine away from overflow), independent of the module."""
    return 99.0 / (1.0 + np.exp(-(np.asarray(x, dtype=np.float64) - e3) / abs(e4))) + 1.0


@pytest.mark.parametrize("lower_better", [False, True])
def test_extreme_inputs_stay_in_range_without_warnings(lower_better):
    x = np.array([-1e6, -1e3, 0.0, 1e3, 1e6])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = normalise(x, 0.5, 1e-3, lower_better)
    assert out.shape == x.shape and np.all((out >= 1) & (out <= 100))
    high, low = (1.0, 100.0) if lower_better else (100.0, 1.0)
    assert out[-1] == high and out[0] == low


def test_matches_the_formula_and_the_midpoint_is_exactly_50_5():
    x = np.linspace(-3, 7, 21)
    np.testing.assert_allclose(normalise(x, 2.0, -1.5), reference_n(x, 2.0, 1.5), rtol=1e-13)  # |e4|: sign unused
    for e3, e4 in [(0.0, 1.0), (2.5, 0.01), (-40.0, 7.0), (1e5, 3e3)]:
        assert normalise([e3], e3, e4)[0] == 50.5  # (100 - 1) / 2 + 1
        assert normalise([-e3], e3, e4, lower_better=True)[0] == 50.5  # e3 is on the negated scale
    assert normalise(2.0, 2.0, 1.0).shape == ()


def test_monotone_in_quality_for_both_directions():
    e3, e4 = 3.0, 0.7
    grid = np.linspace(e3 - 20 * e4, e3 + 20 * e4, 401)  # wide, but short of saturating at float precision
    assert np.all(np.diff(normalise(grid, e3, e4)) > 0)
    assert np.all(np.diff(normalise(grid, -e3, e4, lower_better=True)) < 0)  # higher raw score = worse image


@pytest.mark.parametrize("bad", [dict(x=[1.0, np.nan]), dict(e3=np.inf), dict(e4=0.0), dict(e4=np.nan)])
def test_normalise_refuses_undefined_inputs(bad):
    args = dict(x=[1.0, 2.0], e3=0.0, e4=1.0) | bad
    with pytest.raises(UserError):
        normalise(**args)


def _expected_se(x, e3, e4, sigma):
    """Standard errors of (e3, e4) for least squares with Gaussian noise sigma: sqrt(diag(sigma^2 (J^T J)^-1)),
    J the Jacobian of N in (e3, e4) at the true parameters (first-order theory of nonlinear least squares)."""
    s = 1.0 / (1.0 + np.exp(-(x - e3) / e4))
    d = 99.0 * s * (1.0 - s)
    jac = np.stack([-d / e4, -d * (x - e3) / e4**2], axis=1)
    return np.sqrt(np.diag(sigma**2 * np.linalg.inv(jac.T @ jac)))


@pytest.mark.parametrize("lower_better", [False, True])
@pytest.mark.parametrize("e3, e4", [(0.3, 0.05), (1e4, 250.0)])  # a 0..1-style metric, and a large offset scale
def test_fit_recovers_known_parameters(lower_better, e3, e4):
    rng = np.random.default_rng(7)
    n, sigma = 300, 0.5  # noise: 0.5 points on the 1..100 scale
    x = e3 + e4 * rng.uniform(-4, 4, n)  # oriented scores spanning the logistic's transition
    mos = reference_n(x, e3, e4) + sigma * rng.normal(size=n)
    mos = np.clip(mos, 1, 100)  # as a real MOS scale would; clipping only touches points near the flat ends
    raw = -x if lower_better else x
    fit = fit_normalisation(raw, mos, lower_better, mos_range=(1, 100), metric="m", calibration="synthetic")
    # The estimates scatter around the truth with the standard errors that the noise implies; 5 of them make a
    # spurious failure a < 1e-6 event while still catching any real bias (a wrong sign, scale or orientation).
    se3, se4 = _expected_se(x, e3, e4, sigma)
    assert abs(fit.e3 - e3) < 5 * se3 and abs(fit.e4 - e4) < 5 * se4
    assert (fit.metric, fit.lower_better, fit.calibration, fit.n) == ("m", lower_better, "synthetic", n)
    assert fit.rmse == pytest.approx(sigma, rel=0.2)  # the residuals are the noise
    np.testing.assert_allclose(fit(raw), reference_n(x, fit.e3, fit.e4), rtol=1e-12)


def test_mos_range_maps_the_scale_linearly_onto_1_100():
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, 100)
    n100 = reference_n(x, 0.2, 0.8)
    mos = 1 + 4 * (n100 - 1) / 99  # a 1..5 MOS scale carrying the same normalised values
    fit = fit_normalisation(x, mos, mos_range=(1, 5))
    assert fit.e3 == pytest.approx(0.2, abs=1e-5) and fit.e4 == pytest.approx(0.8, abs=1e-5) and fit.rmse < 1e-5
    with pytest.raises(UserError, match="outside mos_range"):
        fit_normalisation(x, mos, mos_range=(0, 1))
    with pytest.raises(UserError, match="lo < hi"):
        fit_normalisation(x, mos, mos_range=(5, 1))


def test_lower_better_on_negated_data_equals_higher_better_on_the_original():
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 10, 60)
    mos = 1 + 4 * reference_n(s, 5.0, 1.2) / 100 + 0.05 * rng.normal(size=60)  # a noisy 1..5 MOS
    higher = fit_normalisation(s, mos)
    lower = fit_normalisation(-s, mos, lower_better=True)  # e.g. NIQE: the same information, lower is better
    np.testing.assert_allclose(lower(-s), higher(s), rtol=1e-9)
    assert lower.e3 == pytest.approx(higher.e3) and lower.e4 == pytest.approx(higher.e4)


@pytest.mark.parametrize(
    "scores, mos, match",
    [
        ([1, 2, 3, 4], [1, 2, 3, 4], "at least 5"),
        ([2, 2, 2, 2, 2, 2], [1, 2, 3, 4, 5, 6], "all 6 scores are equal"),
        ([1, 2, np.nan, 4, 5, 6], [1, 2, 3, 4, 5, 6], "NaN/inf"),
        ([1, 2, 3, 4, 5, 6], [1, 2, 3, np.inf, 5, 6], "NaN/inf"),
        ([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5], "6 scores but 5 MOS"),
        ([1, 2, 3, 4, 5, 6], [3, 3, 3, 3, 3, 3], "MOS are equal"),
    ],
)
def test_fit_refuses_bad_calibration_data(scores, mos, match):
    with pytest.raises(UserError, match=match):
        fit_normalisation(scores, mos, metric="niqe")


def test_a_step_fit_is_refused_not_returned():
    # The MOS jumps between two neighbouring scores: the best fit is a step (|e4| -> 0), whose e3/e4 are arbitrary.
    with pytest.raises(UserError, match=r"normalisation of brisque on toy failed: the fit is a step"):
        fit_normalisation(np.arange(8.0), [1, 1, 1, 1, 5, 5, 5, 5], metric="brisque", calibration="toy")


def test_scores_falling_with_mos_are_refused_with_a_hint_about_the_direction():
    # A lower-better metric given as higher-better: no increasing logistic fits; the least-squares optimum lies at
    # infinity (a flat map), so either curve_fit stops or returns a constant N, never a usable normalisation.
    x = np.linspace(2, 12, 30)
    with pytest.raises(UserError, match=r"normalisation of niqe failed: .*is lower_better=False right\?"):
        fit_normalisation(x, reference_n(-x, -7.0, 1.5), metric="niqe")


def test_non_convergence_is_refused_with_the_reason(monkeypatch):
    def no_convergence(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found: Number of calls to function has reached maxfev = 10000.")

    monkeypatch.setattr(scipy.optimize, "curve_fit", no_convergence)
    with pytest.raises(UserError, match=r"normalisation of musiq failed: curve_fit did not converge \(Optimal"):
        fit_normalisation(np.arange(6.0), np.arange(6.0), metric="musiq")


def test_non_finite_parameters_from_curve_fit_are_refused(monkeypatch):
    monkeypatch.setattr(scipy.optimize, "curve_fit", lambda *a, **k: (np.array([np.nan, 1.0]), None))
    with pytest.raises(UserError, match="non-finite or zero parameters"):
        fit_normalisation(np.arange(6.0), np.arange(6.0), metric="musiq")


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    s = rng.uniform(0, 1, 40)
    fitted = fit_normalisation(s, reference_n(s, 0.5, 0.1), metric="clipiqa", calibration="koniq-val",
                               scorer="pyiqa clipiqa 0.1.16")  # fmt: skip
    assert fitted.scorer == "pyiqa clipiqa 0.1.16"
    fixed = Normalisation("niqe", -6.0, 1.5, lower_better=True)
    path = tmp_path / "sub" / "norm.json"
    save_normalisations(str(path), [fitted, fixed])
    loaded = load_normalisations(str(path))
    assert loaded == {"clipiqa": fitted, "niqe": fixed}
    np.testing.assert_array_equal(loaded["clipiqa"](s), fitted(s))  # a table rebuilds to the same numbers
    assert [p.name for p in path.parent.iterdir()] == ["norm.json"]  # no temporary file left behind
    with pytest.raises(UserError, match="listed twice"):
        save_normalisations(str(path), [fixed, fixed])


def _saved(entry) -> str:
    """A normalisation file's text holding the single ``entry``."""
    return json.dumps({"format": "asym-normalisation", "normalisations": [entry]})


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "cannot be read"),
        ("", "cannot be read"),
        ("[1, 2]", "not one written by save_normalisations"),
        (_saved({"metric": "niqe", "e3": 1.0}), "lacks e4"),
        (_saved({"metric": "niqe", "e4": 1.0}), "lacks e3"),
        (_saved({"metric": "x", "e3": 1, "e4": 0}), "not be 0"),
        (_saved({"metric": "x", "e3": "1", "e4": 1}), "e3 must be a number"),
        (_saved({"metric": "x", "e3": 1, "e4": 1, "lower_better": "yes"}), "lower_better"),
        (_saved(7), "JSON object"),
    ],
)
def test_load_refuses_bad_files_naming_them(tmp_path, content, match):
    path = tmp_path / "norm.json"
    path.write_text(content)
    with pytest.raises(UserError, match=match) as info:
        load_normalisations(str(path))
    assert str(path) in str(info.value)


def test_load_refuses_a_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_normalisations(str(tmp_path / "absent.json"))


def test_dict_round_trip_and_invalid_parameters():
    n = Normalisation("musiq", 40.0, 8.0, calibration="spaq", n=100, rmse=6.5)
    assert Normalisation.from_dict(json.loads(json.dumps(n.to_dict()))) == n
    with pytest.raises(UserError, match="e4"):
        Normalisation("musiq", 40.0, 0.0)
    with pytest.raises(UserError, match="unknown fields"):
        Normalisation.from_dict(n.to_dict() | {"e5": 1})


def test_a_map_is_selected_by_its_scorer_not_its_name(tmp_path):
    path = tmp_path / "norm.json"
    iqa = Normalisation("iqa", 0.5, 0.1, scorer="IQAModel weights sha256:aaa")
    save_normalisations(str(path), [iqa, Normalisation("piqe", -40.0, 10.0, True, scorer="pyiqa piqe 0.1.16")])
    saved = load_normalisations(str(path))
    assert saved["iqa"] == iqa  # the scorer is saved and read back
    assert select_normalisation(saved, "quality", "IQAModel weights sha256:aaa", str(path)) == iqa  # renamed folder
    assert select_normalisation(saved, "musiq", "pyiqa musiq 0.1.16", str(path)) is None  # none for it: raw
    with pytest.raises(
        UserError,
        match=r"norm.json: the map of iqa was fitted for IQAModel weights sha256:aaa, but "
        r"iqa here is IQAModel weights sha256:bbb: refit it with --calibration",
    ):
        select_normalisation(saved, "iqa", "IQAModel weights sha256:bbb", str(path))
    with pytest.raises(UserError, match="old.json: the map of iqa records no scorer identity .* --calibration_dataset"):
        select_normalisation({"iqa": Normalisation("iqa", 0.5, 0.1)}, "iqa", "IQAModel weights sha256:aaa", "old.json")
    with pytest.raises(UserError, match="scorer must be a string"):
        Normalisation.from_dict(iqa.to_dict() | {"scorer": 7})


def test_scorer_identity_is_the_weights_or_the_pyiqa_release():
    import pyiqa
    import torch

    from asym.metrics import NRMetric

    assert scorer_identity(NRMetric("piqe")) == f"pyiqa piqe {pyiqa.__version__}"
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))  # a 0-dim buffer too
    before = scorer_identity(net)
    assert before.startswith("Sequential weights sha256:") and scorer_identity(net) == before
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] += 1e-3
    assert scorer_identity(net) != before
