"""Scores and their agreement with people.

* ``psnr`` / ``ssim``: fidelity used to monitor super-resolution, on RGB in [0, 1] after cropping ``border`` pixels
  on each side (the scale factor, as in BasicSR), one value per image. SSIM is scikit-image's (Gaussian window,
  sigma 1.5, as Wang et al.).
* ``correlations`` (SRCC, KRCC, PLCC after the ``logistic4`` fit), ``pearson_loss`` (metric learning), and
  ``FRMetric`` / ``score_pairs``: any FR metric by name, scored over an FR dataset.
"""

from __future__ import annotations

import numpy as np
import torch


def _crop(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border:-border, border:-border] if border > 0 else x


def psnr(x: torch.Tensor, y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for (B, 3, H, W) images in [0, 1]."""
    mse = (_crop(x, border).clamp(0, 1) - _crop(y, border)).double().square().mean([1, 2, 3])
    return (-10 * torch.log10(mse.clamp_min(1e-12))).float()


def ssim(x: torch.Tensor, y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Structural similarity per image, for (B, 3, H, W) images in [0, 1]."""
    from skimage.metrics import structural_similarity

    a = _crop(x, border).clamp(0, 1).detach().float().cpu().numpy()
    b = _crop(y, border).detach().float().cpu().numpy()
    values = [
        structural_similarity(
            p, q, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )  # fmt: skip
        for p, q in zip(a, b)
    ]
    return torch.tensor(np.array(values, dtype=np.float32))


# --- Agreement with human judgements --------------------------------------------------------------------------


def logistic4(x, b1: float, b2: float, b3: float, b4: float):
    """``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``: the monotonic map fitted before PLCC (VQEG practice).

    With ``b1 = 100, b2 = 1`` it is the paper's ``N(x)`` that puts NR-IQA scores on a 1..100 scale.
    """
    from scipy.special import expit  # the overflow-free 1 / (1 + exp(-t))

    return (b1 - b2) * expit((np.asarray(x, dtype=np.float64) - b3) / abs(b4)) + b2


def fit_logistic4(pred, mos) -> tuple[float, float, float, float]:
    """Least-squares ``logistic4`` parameters mapping predictions onto MOS."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    pred, mos = np.asarray(pred, dtype=np.float64), np.asarray(mos, dtype=np.float64)
    p0 = [mos.max(), mos.min(), float(np.median(pred)), float(pred.std()) or 1.0]
    try:
        with warnings.catch_warnings():  # the parameter covariance is not used: its estimate may fail harmlessly
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(logistic4, pred, mos, p0=p0, maxfev=20000)
    except RuntimeError:  # no convergence (e.g. constant predictions): fall back to the initial guess
        params = p0
    return tuple(float(p) for p in params)


def correlations(pred, mos) -> dict[str, float]:
    """SRCC, KRCC and PLCC (after a ``logistic4`` fit) between predictions and MOS, plus the count ``n``.

    Both must be oriented "higher is better" (negate distances first); values are signed.
    """
    from scipy import stats

    pred, mos = np.asarray(pred, dtype=np.float64), np.asarray(mos, dtype=np.float64)
    if len(pred) != len(mos) or len(pred) < 3:
        raise ValueError(f"need at least 3 paired scores, got {len(pred)} predictions and {len(mos)} MOS")
    fitted = logistic4(pred, *fit_logistic4(pred, mos))
    return {
        "srcc": float(stats.spearmanr(pred, mos).statistic),
        "krcc": float(stats.kendalltau(pred, mos).statistic),
        "plcc": float(stats.pearsonr(fitted, mos).statistic) if np.std(fitted) > 0 else 0.0,
        "n": len(pred),
    }


def score_pairs(metric, dataset, device, desc: str | None = None, progress: bool = True) -> np.ndarray:
    """``metric(dist, ref)`` for every pair of an FR dataset (``asym.iqa_data.FRDataset``): full images, one pair at a
    time, as sizes may differ between pairs (and batching does not pay on CPU). A tqdm bar unless ``progress`` is
    False."""
    from tqdm.auto import tqdm

    scores = []
    with torch.no_grad():
        for i in tqdm(range(len(dataset)), desc=desc, leave=False, disable=not progress):
            item = dataset[i]
            scores.append(float(metric(item["dist"][None].to(device), item["ref"][None].to(device)).item()))
    return np.asarray(scores)


def pearson_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - PLCC`` of a batch: a differentiable, scale- and shift-invariant objective for metric learning."""
    p, t = pred - pred.mean(), target - target.mean()
    return 1 - (p * t).sum() / (p.norm() * t.norm()).clamp_min(1e-12)


# --- Full-reference metrics by name ----------------------------------------------------------------------------


class FRMetric:
    """A full-reference metric by name: ``metric(x, y)`` -> (B,) scores, with ``lower_better`` and ``name``.

    ``source`` is a folder or Hub id of a metric saved by asym (``DISTS.from_pretrained``), or any pyiqa FR metric
    name (``psnr``, ``ssim``, ``lpips``, ``dists``, ...; pyiqa downloads its weights on first use).
    """

    def __init__(self, source: str, device: str | torch.device = "cpu", as_loss: bool = False):
        import os

        self.name = source.rstrip("/").split("/")[-1] if os.path.isdir(source) else source
        if os.path.isdir(source) or source.count("/") == 1:
            from .perceptual import DISTS

            self.model, self.lower_better = DISTS.from_pretrained(source).to(device), True
        else:
            import pyiqa

            names = pyiqa.list_models(metric_mode="FR")
            if source not in names:
                raise ValueError(
                    f"unknown metric {source!r}: pass a saved asym metric folder / Hub id or a pyiqa FR metric "
                    f"({', '.join(names)})"
                )
            try:
                self.model = pyiqa.create_metric(source, device=torch.device(device), as_loss=as_loss)
            except Exception as err:  # noqa: BLE001 - pyiqa weight downloads fail in many ways offline
                raise ValueError(f"pyiqa metric {source!r} could not be created ({type(err).__name__}: {err})") from err
            self.lower_better = bool(self.model.lower_better)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, y).reshape(x.shape[0])


__all__ = ["FRMetric", "correlations", "fit_logistic4", "logistic4", "pearson_loss", "psnr", "score_pairs", "ssim"]
