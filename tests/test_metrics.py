import numpy as np
import pytest
import torch
from scipy import stats

from asym.metrics import correlations, fit_logistic4, logistic4, pearson_loss, psnr, ssim


def test_correlations_equal_scipy():
    rng = np.random.default_rng(0)
    mos = rng.uniform(1, 5, 200)
    pred = np.tanh(mos - 3) + 0.3 * rng.normal(size=200)
    result = correlations(pred, mos)
    assert result["srcc"] == pytest.approx(stats.spearmanr(pred, mos).statistic, abs=1e-12)
    assert result["krcc"] == pytest.approx(stats.kendalltau(pred, mos).statistic, abs=1e-12)
    fitted = logistic4(pred, *fit_logistic4(pred, mos))
    assert result["plcc"] == pytest.approx(stats.pearsonr(fitted, mos).statistic, abs=1e-12)
    assert result["plcc"] >= stats.pearsonr(pred, mos).statistic - 1e-9  # the fit never hurts linearity
    assert result["n"] == 200


def test_logistic_fit_recovers_known_parameters():
    x = np.linspace(-3, 5, 300)
    truth = (80.0, 5.0, 1.2, 0.7)
    noisy = logistic4(x, *truth) + np.random.default_rng(1).normal(0, 0.2, x.size)
    fitted = fit_logistic4(x, noisy)
    assert fitted[0] == pytest.approx(80, rel=0.01) and fitted[1] == pytest.approx(5, abs=0.5)
    assert fitted[2] == pytest.approx(1.2, abs=0.05) and abs(fitted[3]) == pytest.approx(0.7, rel=0.05)


def test_too_few_scores_is_an_error():
    with pytest.raises(ValueError, match="at least 3"):
        correlations([1, 2], [1, 2])


def test_pearson_loss_matches_scipy_and_has_gradients():
    pred = torch.randn(32, dtype=torch.float64, requires_grad=True)
    target = torch.randn(32, dtype=torch.float64)
    loss = pearson_loss(pred, target)
    assert loss.item() == pytest.approx(1 - stats.pearsonr(pred.detach(), target).statistic, abs=1e-12)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pearson_loss(2 * target + 3, target).item() == pytest.approx(0, abs=1e-12)


def test_psnr_and_ssim():
    y = torch.rand(2, 3, 32, 32)
    x = (y + 0.1).clamp(0, 1)
    expected = -10 * torch.log10(((x - y) ** 2).mean([1, 2, 3]))
    torch.testing.assert_close(psnr(x, y), expected, rtol=1e-5, atol=1e-4)
    assert torch.allclose(ssim(y, y), torch.ones(2)) and (ssim(x, y) < 1).all()
