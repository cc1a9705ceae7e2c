"""Leaderboard tables: every entry its own row, caveats marked where the number is shown."""

import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

import evaluate  # noqa: E402
from asym import DISTS  # noqa: E402
from asym.core.errors import UserError  # noqa: E402
from asym.reporting.tables import markdown_table, unique_names  # noqa: E402


@pytest.mark.parametrize(
    "sources, names",
    [
        (["psnr", "ssim"], ["psnr", "ssim"]),
        (["runs/a/metric", "runs/b/metric"], ["a/metric", "b/metric"]),
        (["x/runs/a/metric", "y/runs/a/metric", "runs/c/metric"], ["x/runs/a/metric", "y/runs/a/metric", "c/metric"]),
        (["runs/metric/", "./other/metric"], ["runs/metric", "other/metric"]),
        (["psnr", "runs/psnr"], ["psnr", "runs/psnr"]),
        (["owner/kadid10k", "data/kadid10k", "tid2013"], ["owner/kadid10k", "data/kadid10k", "tid2013"]),
    ],
)
def test_unique_names_are_the_shortest_distinguishing_suffix(sources, names):
    assert unique_names(sources) == names


@pytest.mark.parametrize("sources", [["psnr", "psnr"], ["runs/a/metric", "runs/a/metric/"], ["a/m", "./a/m"]])
def test_an_entry_listed_twice_is_refused(sources):
    with pytest.raises(UserError, match="listed twice"):
        unique_names(sources, "metric")


def test_table_marks_linear_plcc_and_constant_metrics():
    records = [
        {"metric": "a", "dataset": "d", "srcc": 0.5, "plcc": 0.4, "plcc_fit": "logistic"},
        {"metric": "b", "dataset": "d", "srcc": -0.5, "plcc": -0.45, "plcc_fit": "linear"},
        {"metric": "c", "dataset": "d", "srcc": math.nan, "plcc": math.nan, "plcc_fit": "none"},
    ]
    table = markdown_table(records, ["a", "b", "c"], ["d"])
    assert "| a | 0.500 | 0.400 | 0.500 | 0.400 |" in table
    assert "| b | -0.500 | -0.450† | -0.500 | -0.450 |" in table
    assert "| c | nan | nan | nan | nan |" in table
    assert "† linear PLCC" in table and "nan: the metric gave the same score" in table


def _tiny_table(folder):
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = {"dist_image": [], "ref_image": [], "score": []}
    for _ in range(3):
        ref = rng.integers(0, 256, (32, 32, 3)).astype(np.float64)
        for level in (1, 2, 3):
            noisy = np.clip(ref + rng.normal(0, 15 * level, ref.shape), 0, 255).astype(np.uint8)
            rows["dist_image"].append(Image.fromarray(noisy))
            rows["ref_image"].append(Image.fromarray(ref.astype(np.uint8)))
            rows["score"].append(float(5 - level))
    features = datasets.Features(
        {"dist_image": datasets.Image(), "ref_image": datasets.Image(), "score": datasets.Value("float32")}
    )
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(folder))


def test_two_metric_folders_with_one_basename_are_two_rows(tmp_path, capsys, monkeypatch):
    """runs/a/metric and runs/b/metric used to become one row printed twice; a metric whose weights cannot be had
    (lpips, offline, an empty cache) is reported and the others are still scored, as in nr and sr."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # nothing cached: pyiqa's lpips cannot be built
    DISTS("vgg16", weights="random", alpha_beta="random", seed=1).save_pretrained(tmp_path / "runs" / "a" / "metric")
    DISTS("vgg16", weights="random", alpha_beta="random", seed=2).save_pretrained(tmp_path / "runs" / "b" / "metric")
    _tiny_table(tmp_path / "data" / "noisy")
    _tiny_table(tmp_path / "other" / "noisy")  # two datasets with one name, too
    metrics = f"lpips,{tmp_path}/runs/a/metric,{tmp_path}/runs/b/metric"
    datasets = f"{tmp_path}/data/noisy,{tmp_path}/other/noisy"
    argv = ["fr", "--metrics", metrics, "--datasets", datasets, "--output_dir", str(tmp_path / "o"), "--device", "cpu"]
    records = evaluate.main(evaluate.parse_args(argv))
    out = capsys.readouterr().out
    assert {(r["metric"], r["dataset"]) for r in records} == {
        (m, d) for m in ("lpips", "a/metric", "b/metric") for d in ("data/noisy", "other/noisy")
    }
    assert all(r["status"].startswith("unavailable: ") and r["plcc"] is None for r in records if r["metric"] == "lpips")
    assert "lpips: unavailable (" in out
    assert "| a/metric |" in out and "| b/metric |" in out
    by_key = {(r["metric"], r["dataset"]): r["plcc"] for r in records}
    assert by_key[("a/metric", "data/noisy")] is not None
    assert by_key[("a/metric", "data/noisy")] != by_key[("b/metric", "data/noisy")]  # really two metrics


def test_markdown_table_status_column_only_when_needed():
    ok = {"model": "a", "dataset": "d", "srcc": 0.5, "plcc": 0.4, "plcc_fit": "logistic", "status": "ok"}
    gone = {"model": "b", "dataset": "d", "srcc": None, "plcc": None, "plcc_fit": None,
            "status": "unavailable: URLError: no network | retry"}  # fmt: skip
    assert "Status" not in markdown_table([ok], ["a"], ["d"], row_key="model")
    table = markdown_table([ok, gone], ["a", "b"], ["d"], row_key="model")
    assert table.splitlines()[0] == "| Model | d SRCC | d PLCC | Avg SRCC | Avg PLCC | Status |"
    assert "| a | 0.500 | 0.400 | 0.500 | 0.400 | ok |" in table
    assert "| b | n/a | n/a | n/a | n/a | unavailable: URLError: no network \\| retry |" in table
