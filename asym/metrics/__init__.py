"""Metrics: one table of every metric asym scores with, and the scorers built from it.

* ``table``: a row per metric (FR / NR, direction, range, per-image, how it loads); ``metric_info``,
  ``list_metrics``.
* ``scorers``: ``create_metric(name_or_path)``, the one way to a scorer, and ``score_pairs`` / ``score_images``.
* ``fidelity``: PSNR, SSIM, UQI, IFC (float64, SR papers' Y channel and border crop).
* ``agreement``: SRCC / KRCC / PLCC after the logistic fit, ``pearson_loss``.
* ``calibration``: the paper's 1..100 map of NR scores, fitted on a calibration set (``normalisation.json``).
* ``vlm``: VisualQuality-R1 and DeQA-Score, the vision-language NR scorers pyiqa lacks.
"""

from ..core.errors import MetricUnavailable
from .agreement import (
    ConstantScoresWarning,
    FitWarning,
    correlations,
    finite_scores,
    fit_logistic4,
    is_step_fit,
    logistic4,
    pearson_loss,
)
from .fidelity import ifc, psnr, rgb_to_y, ssim, uqi
from .scorers import FidelityMetric, FRMetric, NRMetric, create_metric, score_images, score_pairs
from .table import MetricSpec, list_metrics, metric_info

__all__ = [
    "ConstantScoresWarning",
    "FRMetric",
    "FidelityMetric",
    "FitWarning",
    "MetricSpec",
    "MetricUnavailable",
    "NRMetric",
    "correlations",
    "create_metric",
    "finite_scores",
    "fit_logistic4",
    "ifc",
    "is_step_fit",
    "list_metrics",
    "logistic4",
    "metric_info",
    "pearson_loss",
    "psnr",
    "rgb_to_y",
    "score_images",
    "score_pairs",
    "ssim",
    "uqi",
]
