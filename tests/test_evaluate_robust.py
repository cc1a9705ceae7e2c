"""The robust-loss study's table (evaluate.py robust-table) from synthetic sr_results, averaged here with numpy; uqi,
ifc and the feat_weights field in evaluate.py sr; LPIPS folders as FR metrics."""

import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evaluate  # noqa: E402
from asym.errors import UserError  # noqa: E402
from asym.leaderboard import robust_label, study_loss  # noqa: E402

DATASETS = ("Set5-x4", "Set14-x4", "BSD100-x4", "Urban100-x4", "Manga109-x4")
METRICS = ("psnr", "ssim", "uqi", "ifc", "gmsd", "lpips", "rlpips")
# model name -> (card --loss, --feat_weights); the study's rows they belong to are in EXPECTED_ROWS
MODELS = {
    "e-1": ("mse", None), "e-2": ("mse", "runs/robust.safetensors"),  # E: no feature loss, robust or not
    "ep-std-1": ("mse+feat", "pretrained"), "ep-std-2": ("mse+feat", "auto"), "ep-std-3": ("mse+feat", None),
    "ep-rob-1": ("mse+feat", "runs/robust-vgg19.safetensors"), "ep-rob-2": ("feat+mse", "madrylab/robust-vgg19"),
    "ept-std": ("mse+feat+texture", "random"), "ept-rob": ("texture+mse+feat", "robust.pt"),
    "gan": ("rec+per+adv", None), "ep-gan": ("mse+feat", "gan:runs/gan"), "bicubic": (None, None), "hr": (None, None),
}  # fmt: skip
EXPECTED_ROWS = [("E", None, ["e-1", "e-2"]), ("EP", "no", ["ep-std-1", "ep-std-2", "ep-std-3"]),
                 ("EP", "yes", ["ep-rob-1", "ep-rob-2"]), ("EPT", "no", ["ept-std"]),
                 ("EPT", "yes", ["ept-rob"])]  # fmt: skip
HEADERS = ("PSNR", "SSIM", "UQI", "IFC", "GMSD", "LPIPS", "R-LPIPS")


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (conftest)


def run(argv):
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        result = evaluate.main(evaluate.parse_args(argv))
    return result, buffer.getvalue()


def synthetic_results(folder: Path, seed: int = 0):
    """Two sr_results.json files (datasets split between them, as two evaluate.py sr runs) and the scores as an
    array [model, metric, dataset]; lpips is unavailable (no weights offline) everywhere."""
    rng = np.random.default_rng(seed)
    scores = rng.random((len(MODELS), len(METRICS), len(DATASETS))) * np.array([40, 1, 1, 5, 0.3, 1, 1])[:, None]
    paths = []
    for part, datasets in enumerate((DATASETS[:2], DATASETS[2:])):
        records = []
        for i, (model, (loss, weights)) in enumerate(MODELS.items()):
            for j, metric in enumerate(METRICS):
                for dataset in datasets:
                    k = DATASETS.index(dataset)
                    record = {"model": model, "metric": metric, "dataset": dataset, "score": float(scores[i, j, k]),
                              "score_norm": None, "status": "ok", "source": f"runs/{model}", "kind": "asym",
                              "loss": loss, "per_backbone": None, "feat_weights": weights}  # fmt: skip
                    if metric == "lpips":
                        record.update(score=None, status="unavailable: URLError: offline")
                    records.append(record)
        paths.append(folder / f"part{part}.json")
        paths[-1].write_text(json.dumps(records))
    return paths, scores


def test_study_letters_and_robust_flag():
    losses = ("mse", "feat+mse", "texture+feat+mse", "mse+texture", "rec+per", "mse+adv", None)
    assert [study_loss(x) for x in losses] == ["E", "EP", "EPT", "ET", None, None, None]
    assert robust_label("E", "robust.pt") is None
    assert [robust_label("EP", w) for w in (None, "", "auto", "pretrained", "random", "x.safetensors", "a/b")] == [
        "no", "no", "no", "no", "no", "yes", "yes"]  # fmt: skip


def test_robust_table_averages_runs_then_datasets(tmp_path):
    paths, scores = synthetic_results(tmp_path)
    rows, printed = run(["robust-table", "--sr_results", str(paths[0]), "--sr_results", str(paths[1]),
                         "--output_dir", str(tmp_path / "out")])  # fmt: skip
    names = list(MODELS)
    assert [(r["loss"], r["robust"], r["runs"]) for r in rows] == [(a, b, len(c)) for a, b, c in EXPECTED_ROWS]
    for row, (_, _, members) in zip(rows, EXPECTED_ROWS):
        block = scores[[names.index(m) for m in members]]  # [run, metric, dataset]
        for j, (header, metric) in enumerate(zip(HEADERS, METRICS)):
            if metric == "lpips":
                assert row[header] is None
            else:  # every run has every dataset: the mean of means is the mean of the block
                assert row[header] == pytest.approx(block[:, j, :].mean(), rel=1e-12)
        assert row["models"] == "; ".join(members) and row["datasets"] == "; ".join(DATASETS)
    for left_out in (
        "gan: loss rec+per+adv, not one of the study's",
        "bicubic: no loss recorded",
        "hr: no loss",
        "ep-gan: features gan:runs/gan (a GAN discriminator's: neither standard nor robust); left out",
    ):
        assert left_out in printed
    table = (tmp_path / "out" / "robust_table.md").read_text()
    assert "| Loss | Robust | Runs | PSNR ↑ | SSIM ↑ | UQI ↑ | IFC ↑ | GMSD ↓ | LPIPS ↓ | R-LPIPS ↓ |" in table
    assert "| E | – | 2 |" in table and "| EP | yes | 2 |" in table
    assert "LPIPS (lpips): unavailable: URLError: offline" in table
    saved = json.loads((tmp_path / "out" / "robust_table.json").read_text())
    assert saved == rows and (tmp_path / "out" / "robust_table.csv").read_text().startswith("loss,robust,runs,")


def test_a_missing_score_empties_only_its_cell_and_columns_can_be_renamed(tmp_path):
    paths, scores = synthetic_results(tmp_path, seed=1)
    records = json.loads(paths[1].read_text())
    records = [
        r for r in records if not (r["model"] == "ep-rob-2" and r["metric"] == "ifc" and r["dataset"] == DATASETS[3])
    ]
    for r in records:
        if r["metric"] == "rlpips":
            r["metric"] = "lpips-robust-vgg16"
    paths[1].write_text(json.dumps(records))
    first = [r for r in json.loads(paths[0].read_text()) if r["metric"] != "rlpips"]
    paths[0].write_text(json.dumps(first))  # R-LPIPS scored on the last three datasets only
    rows, _ = run(["robust-table", "--sr_results", f"{paths[0]},{paths[1]}", "--metric", "r-lpips=lpips-robust-vgg16",
                   "--output_dir", str(tmp_path / "out")])  # fmt: skip
    ep_robust = next(r for r in rows if (r["loss"], r["robust"]) == ("EP", "yes"))
    assert ep_robust["IFC"] is None and ep_robust["PSNR"] is not None
    assert all(r["R-LPIPS"] is None for r in rows)  # two datasets lack it
    table = (tmp_path / "out" / "robust_table.md").read_text()
    assert "R-LPIPS ↓ (lpips-robust-vgg16)" in table
    assert "IFC of EP/yes: no score for ep-rob-2 on Urban100-x4 (not scored)" in table


def test_robust_table_refuses_what_it_cannot_average(tmp_path):
    paths, _ = synthetic_results(tmp_path)
    out = ["--output_dir", str(tmp_path / "out")]
    with pytest.raises(UserError, match="in both"):
        run(["robust-table", "--sr_results", f"{paths[0]},{paths[0]}", *out])
    records = json.loads(paths[0].read_text())
    old = tmp_path / "old.json"
    old.write_text(json.dumps([{k: v for k, v in r.items() if k != "feat_weights"} for r in records]))
    with pytest.raises(UserError, match="before evaluate.py sr recorded feat_weights"):
        run(["robust-table", "--sr_results", str(old), *out])
    other = tmp_path / "other.json"
    other.write_text(json.dumps([r for r in records if r["model"] in ("gan", "bicubic")]))
    with pytest.raises(UserError, match="no model .* was trained with the study's losses"):
        run(["robust-table", "--sr_results", str(other), *out])
    with pytest.raises(UserError, match="expected COLUMN=NAME"):
        run(["robust-table", "--sr_results", str(paths[0]), "--metric", "FID=fid", *out])
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(UserError, match="garbage.json"):
        run(["robust-table", "--sr_results", str(tmp_path / "garbage.json"), *out])


def test_sr_scores_uqi_ifc_on_y_and_records_feat_weights(tmp_path):
    from PIL import Image

    from asym import SRModel
    from asym.data import load_sr_images
    from asym.fidelity import ifc, uqi
    from asym.sr_eval import SROutputCache, load_sr_source, load_sr_test_set, run_sr

    torch.manual_seed(0)
    card = {"--loss": "mse+feat", "--feat_weights": "robust.safetensors"}
    SRModel("tiny", 4, card=card).save_pretrained(tmp_path / "sr")
    (tmp_path / "hr").mkdir()
    Image.fromarray(load_sr_images("builtin")[1][100:234, 150:281]).save(tmp_path / "hr" / "coffee.png")  # 134x131
    records, _ = run(["sr", "--models", f"{tmp_path / 'sr'},bicubic", "--metrics", "uqi,ifc", "--datasets",
                      str(tmp_path / "hr"), "--output_dir", str(tmp_path / "out"), "--device", "cpu"])  # fmt: skip
    one = load_sr_test_set(str(tmp_path / "hr"), 4)
    hr = one[0].hr[None]
    assert hr.shape[-2:] == (132, 128)  # cut to a multiple of the scale
    for spec, name in ((str(tmp_path / "sr"), "sr"), ("bicubic", "bicubic")):
        output = run_sr(load_sr_source(spec, 4), one, SROutputCache(str(tmp_path / "out" / "sr_cache")))[one.names[0]]
        for metric, function in (("uqi", uqi), ("ifc", ifc)):
            record = next(r for r in records if r["model"] == name and r["metric"] == metric)
            expected = function(output, hr, border=4, y_channel=True).item()
            assert record["status"] == "ok" and record["score"] == pytest.approx(expected, rel=1e-6)
        assert next(r for r in records if r["model"] == name)["feat_weights"] == (
            "robust.safetensors" if name == "sr" else None
        )


def test_fr_metric_loads_the_class_a_folder_names(tmp_path):
    from asym import LPIPS
    from asym.metrics import FRMetric

    torch.manual_seed(0)
    lpips = LPIPS("vgg16", weights="random")  # an R-LPIPS would be the same class on robust weights
    lpips.save_pretrained(tmp_path / "rlpips")
    metric = FRMetric(str(tmp_path / "rlpips"))
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert type(metric.model).__name__ == "LPIPS" and metric.lower_better and metric.name == "rlpips"
    with torch.no_grad():
        assert torch.allclose(metric(x, y), lpips.eval()(x, y))
    (tmp_path / "iqa").mkdir()
    (tmp_path / "iqa" / "config.json").write_text(json.dumps({"asym_class": "IQAModel", "backbone": "vgg16"}))
    with pytest.raises(UserError, match="holds an asym IQAModel, not a full-reference metric"):
        FRMetric(str(tmp_path / "iqa"))
    with pytest.raises(UserError, match="holds no config.json"):
        FRMetric(str(tmp_path))
