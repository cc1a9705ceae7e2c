"""asym.reporting.figures: figures on their own canvas, written atomically as PNG; no figure from nothing."""

import pytest
from PIL import Image

from asym.reporting.figures import (
    new_figure,
    plot_correlation,
    plot_init_comparison,
    plot_stage_features,
    plot_sweep,
    save_figure,
)


def test_a_figure_is_written_as_a_png_and_nothing_else_is_left(tmp_path):
    fig = new_figure(3.0, 2.0)
    fig.subplots().plot([0, 1], [1, 0])
    path = tmp_path / "line.png"
    assert save_figure(fig, str(path), dpi=50) == str(path)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (150, 100)
    assert [p.name for p in tmp_path.iterdir()] == ["line.png"]  # no temporary file beside it


def test_sweep_and_correlation_points_are_drawn(tmp_path):
    points = [{"backbone": "vgg16", "loss": "per", "srcc": 0.5 + i / 10, "average": 40.0 + i, "lambda_adv": 10.0**-i}
              for i in range(3)]  # fmt: skip
    for plot, name in ((plot_correlation, "correlation.png"), (plot_sweep, "sweep.png")):
        plot(points, str(tmp_path / name))
        with Image.open(tmp_path / name) as png:
            png.verify()
    plot_sweep([], str(tmp_path / "baseline.png"), baselines=[{"run": "rec", "average": 45.0}])  # baselines alone
    assert (tmp_path / "baseline.png").stat().st_size > 0


@pytest.mark.parametrize("plot", [plot_init_comparison, plot_correlation, plot_sweep])
def test_no_figure_from_no_records(plot, tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        plot([], str(tmp_path / "empty.png"))
    assert not (tmp_path / "empty.png").exists()


def test_no_stage_figure_without_stages(tmp_path):
    import torch

    with pytest.raises(ValueError, match="at least one stage"):
        plot_stage_features([], torch.zeros(3, 8, 8), str(tmp_path / "stages.png"))
