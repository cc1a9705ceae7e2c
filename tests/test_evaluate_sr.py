"""evaluate.py sr / correlation / sweep: the SR leaderboard (Table 1), its link to assessment (Fig. 3), lambda_adv."""

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evaluate  # noqa: E402
from asym import SRModel  # noqa: E402
from asym.errors import UserError  # noqa: E402
from asym.metrics import psnr  # noqa: E402
from asym.normalisation import Normalisation, save_normalisations  # noqa: E402
from asym.sr_eval import SROutputCache, SRSource, SRTestSet, load_sr_source, load_sr_test_set, run_sr  # noqa: E402

N_IMAGES = 2


def run(argv):
    return evaluate.main(evaluate.parse_args(argv))


@pytest.fixture(scope="module")
def sr_models(tmp_path_factory):
    """Two tiny random x4 generators saved as train_sr.py would, with cards naming their loss and backbones."""
    folder = tmp_path_factory.mktemp("sr")
    paths = []
    for i, (loss, backbone) in enumerate((("rec+per", "vgg16"), ("rec+per", "resnet50"))):
        torch.manual_seed(i)
        card = {"--loss": loss, "--lambda_adv": 0.005,
                "perceptual loss": f"DISTS-style on {backbone} (pretrained), alpha/beta: release"}  # fmt: skip
        SRModel("tiny", 4, card=card).save_pretrained(folder / f"sr-{backbone}")
        paths.append(str(folder / f"sr-{backbone}"))
    return paths


def table_rows(text: str) -> dict[str, list[str]]:
    """{row label: cells} of the printed Markdown table."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def first_run(sr_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    models = ",".join([*sr_models, "bicubic", "hr"])
    argv = ["sr", "--models", models, "--metrics", "psnr,piqe,maniqa", "--datasets", "builtin",
            "--max_images", str(N_IMAGES), "--output_dir", str(out), "--device", "cpu"]  # fmt: skip
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        records = run(argv)
    return out, records, buffer.getvalue()


def test_sr_table_psnr_matches_independent_computation(first_run, sr_models):
    out, records, printed = first_run
    test_set = load_sr_test_set("builtin", 4)
    subset = SRTestSet(test_set.name, 4, test_set.names[:N_IMAGES], test_set.images)
    cache = SROutputCache(str(out / "sr_cache"))
    for spec, name in ((sr_models[0], "sr-vgg16"), ("bicubic", "bicubic")):
        outputs = run_sr(load_sr_source(spec, 4), subset, cache)
        expected = np.mean([psnr(outputs[item.name], item.hr[None], border=4, y_channel=True).item()
                            for item in subset])  # fmt: skip
        record = next(r for r in records if r["model"] == name and r["metric"] == "psnr")
        assert record["status"] == "ok" and record["score"] == pytest.approx(expected, abs=1e-5)
        assert record["score_norm"] is None
    hr = next(r for r in records if r["model"] == "hr" and r["metric"] == "psnr")
    assert hr["status"] == "n/a: reference" and hr["score"] is None
    hr_piqe = next(r for r in records if r["model"] == "hr" and r["metric"] == "piqe")
    assert hr_piqe["status"] == "ok" and math.isfinite(hr_piqe["score"])
    assert {r["loss"] for r in records if r["model"].startswith("sr-")} == {"rec+per"}
    assert {r["per_backbone"] for r in records if r["model"] == "sr-resnet50"} == {"resnet50"}
    # files: one record per (model, metric, dataset); per-image scores
    saved = json.loads((out / "sr_results.json").read_text())
    assert len(saved) == 4 * 3 and {"model", "metric", "dataset", "score", "score_norm", "status"} <= set(saved[0])
    with open(out / "sr_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len([r for r in rows if r["model"] == "bicubic" and r["metric"] == "psnr"]) == N_IMAGES
    assert "score_norm is null and the table shows raw means" in printed


def test_sr_table_average_std_and_unavailable_metric(first_run):
    _, records, printed = first_run
    rows = table_rows(printed)
    header = rows["Metric"]
    assert header[:3] == ["sr-vgg16 [rec+per]", "sr-resnet50 [rec+per]", "Std. [rec+per]"]
    assert header[3:] == ["bicubic", "Ref. (hr)"]
    assert all(c == "n/a" for c in rows["maniqa (raw) (unavailable)"])
    maniqa = [r for r in records if r["metric"] == "maniqa"]
    assert all(r["status"].startswith("unavailable") and r["score"] is None for r in maniqa)
    # no normalisation: raw means differ in scale and direction (psnr dB up, piqe down), so no Average / Std
    assert all(c == "n/a" for c in rows["Average"]) and all(c == "n/a" for c in rows["Std"])
    psnrs = [next(r["score"] for r in records if r["model"] == m and r["metric"] == "psnr")
             for m in ("sr-vgg16", "sr-resnet50")]  # fmt: skip
    assert float(rows["psnr (raw)"][2]) == pytest.approx(np.std(psnrs), abs=6e-4)
    assert rows["psnr (raw)"][4] == "n/a"  # the reference against itself
    assert "Average / Std: not computed" in printed


def count_sr_calls(monkeypatch) -> list[str]:
    """The names of the SR sources called from now on (every SR forward goes through ``SRSource.__call__``)."""
    calls = []
    original = SRSource.__call__

    def counted(self, *args, **kwargs):
        calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SRSource, "__call__", counted)
    return calls


def test_second_run_with_more_metrics_does_no_sr_forward(first_run, sr_models, monkeypatch, tmp_path):
    out, _, _ = first_run
    calls = count_sr_calls(monkeypatch)
    path = tmp_path / "normalisation.json"
    save_normalisations(str(path), [Normalisation("piqe", -40.0, 10.0, lower_better=True)])
    records = run(["sr", "--models", ",".join([*sr_models, "bicubic", "hr"]), "--metrics", "psnr,ssim,piqe,maniqa",
                   "--datasets", "builtin", "--max_images", str(N_IMAGES), "--output_dir", str(out),
                   "--device", "cpu", "--normalisation", str(path)])  # fmt: skip
    assert calls == []  # ssim is new, yet every output comes from the cache
    assert all(r["status"] == "ok" for r in records if r["metric"] == "ssim" and r["model"] != "hr")
    piqe = [r for r in records if r["metric"] == "piqe"]
    assert all(1 <= r["score_norm"] <= 100 for r in piqe)
    with open(out / "sr_scores.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == "piqe" and r["model"] == "bicubic"]
    expected = np.mean(Normalisation("piqe", -40.0, 10.0, lower_better=True)([float(r["score"]) for r in rows]))
    assert next(r for r in piqe if r["model"] == "bicubic")["score_norm"] == pytest.approx(expected)
    assert all(r["score_norm"] is None for r in records if r["metric"] == "psnr")
    # Average / Std over the normalised metrics only (here piqe): numpy on the same numbers
    from asym.leaderboard import sr_summary

    models = list(dict.fromkeys(r["model"] for r in records))
    summary = sr_summary(records, models, ["psnr", "ssim", "piqe", "maniqa"])
    assert summary["basis"] == ["piqe"]
    for r in piqe:
        assert summary["average"][r["model"]] == pytest.approx(np.mean([r["score_norm"]]))
        assert summary["std"][r["model"]] == pytest.approx(0.0)


def test_batch_size_does_not_change_scores_and_bf16_outputs_are_cached_apart(first_run, sr_models, monkeypatch):
    """Scoring every model's output of an image in one batch equals scoring them one by one; a bf16 SR forward is a
    different output (its own cache entries, so the float32 ones are not silently reused) close to float32's."""
    out, first, _ = first_run
    calls = count_sr_calls(monkeypatch)
    argv = ["sr", "--models", ",".join([*sr_models, "bicubic", "hr"]), "--metrics", "psnr,piqe", "--datasets",
            "builtin", "--max_images", str(N_IMAGES), "--output_dir", str(out), "--device", "cpu"]  # fmt: skip
    batched = run([*argv, "--batch_size", "4"])  # all four models' outputs of an image at once (CPU default: 1)
    assert calls == []
    expected = {(r["model"], r["metric"]): r["score"] for r in first if r["metric"] in ("psnr", "piqe")}
    for r in batched:
        if r["score"] is not None:
            assert r["score"] == pytest.approx(expected[r["model"], r["metric"]], rel=1e-6, abs=1e-6)
    bf16 = run([*argv, "--mixed_precision", "bf16", "--batch_size", "3"])  # a partial last batch too
    assert sorted(calls) == sorted(sr_models * N_IMAGES)  # asym models re-run; bicubic and hr have no forward
    for r in bf16:
        if r["metric"] == "psnr" and r["score"] is not None:  # bf16 keeps 8 mantissa bits: ~0.4% per value
            assert r["score"] == pytest.approx(expected[r["model"], "psnr"], abs=0.1)
            if r["model"] == "bicubic":
                assert r["score"] == expected["bicubic", "psnr"]


def sr_record(model, metric, score, loss, backbone, source=None, norm=None):
    return {"model": model, "metric": metric, "dataset": "set", "score": score, "score_norm": norm, "status": "ok",
            "source": source or model, "loss": loss, "per_backbone": backbone}  # fmt: skip


def test_correlation_joins_fr_srcc_with_sr_averages(tmp_path, capsys):
    backbones = ["vgg16", "resnet50", "convnext", "swin-t"]
    fr = [{"metric": f"metric-{b}", "dataset": d, "srcc": 0.5 + 0.1 * i + 0.01 * j}
          for i, b in enumerate(backbones) for j, d in enumerate(("tid", "kadid"))]  # fmt: skip
    sr = []
    for i, b in enumerate(backbones):
        for metric, base in (("maniqa", 40), ("liqe", 50)):
            sr.append(sr_record(f"per-{b}", metric, 0.0, "per", b, norm=base + 3 * i))
            sr.append(sr_record(f"rpa-{b}", metric, 0.0, "rec+per+adv", b, norm=base + 5 - i))
    sr += [sr_record("sr-vgg16-rec", "maniqa", 0.0, "rec+per", "vgg16", norm=40.0), sr_record("bicubic", "maniqa",
           0.0, None, None, norm=30.0)]  # fmt: skip
    (tmp_path / "fr.json").write_text(json.dumps(fr))
    (tmp_path / "sr.json").write_text(json.dumps(sr))
    points = run(["correlation", "--fr_results", str(tmp_path / "fr.json"), "--sr_results", str(tmp_path / "sr.json"),
                  "--output_dir", str(tmp_path / "out")])  # fmt: skip
    printed = capsys.readouterr().out
    assert len(points) == 9 and (tmp_path / "out" / "correlation.png").stat().st_size > 0
    p = next(p for p in points if p["model"] == "per-resnet50")
    assert p["srcc"] == pytest.approx(0.605) and p["average"] == pytest.approx((43 + 53) / 2)
    assert "per: Spearman 1.000" in printed and "(n = 4)" in printed
    assert "rec+per+adv: Spearman -1.000" in printed
    assert "rec+per: n = 1 backbones; a Spearman correlation needs at least 3, none reported" in printed
    assert "bicubic: no perceptual loss backbone" in printed
    pairs = run(["correlation", "--fr_results", str(tmp_path / "fr.json"), "--sr_results", str(tmp_path / "sr.json"),
                 "--pairs", "metric-vgg16=bicubic", "--output_dir", str(tmp_path / "out2")])  # fmt: skip
    assert [(p["metric"], p["model"], p["loss"]) for p in pairs] == [("metric-vgg16", "bicubic", "unknown")]
    with pytest.raises(UserError, match="expected metric=model"):
        run(["correlation", "--fr_results", str(tmp_path / "fr.json"), "--sr_results", str(tmp_path / "sr.json"),
             "--pairs", "metric-vgg16", "--output_dir", str(tmp_path / "out3")])  # fmt: skip


def test_sweep_plots_average_against_lambda_adv(tmp_path, capsys):
    runs, sr = [], []
    for backbone in ("vgg16", "resnet50"):
        for weight in (0.001, 0.005, 0.01):
            folder = tmp_path / f"{backbone}-{weight}"
            folder.mkdir()
            card = {"--loss": "rec+per+adv", "--lambda_adv": weight,
                    "discriminator": f"vanilla on {backbone} (pretrained), lr 0.0001"}  # fmt: skip
            (folder / "config.json").write_text(json.dumps({"card": card}))
            runs.append(str(folder))
            sr.append(sr_record(folder.name, "liqe", 0.0, "rec+per+adv", "vgg16", str(folder), norm=50 + 1000 * weight))
    base = tmp_path / "rec"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"card": {"--loss": "rec", "--lambda_adv": 0.005}}))
    sr.append(sr_record("rec", "liqe", 0.0, "rec", None, str(base), norm=45.0))
    (tmp_path / "sr.json").write_text(json.dumps(sr))
    points = run(["sweep", "--runs", ",".join([*runs, str(base)]), "--sr_results", str(tmp_path / "sr.json"),
                  "--output_dir", str(tmp_path / "out")])  # fmt: skip
    printed = capsys.readouterr().out
    assert len(points) == 6 and {p["backbone"] for p in points} == {"vgg16", "resnet50"}
    p = next(p for p in points if p["backbone"] == "resnet50" and p["lambda_adv"] == 0.01)
    assert p["average"] == pytest.approx(60.0)
    assert "rec: no adversarial term -> average 45.000" in printed
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0
    with pytest.raises(UserError, match="holds no config.json"):
        run(["sweep", "--runs", str(tmp_path), "--sr_results", str(tmp_path / "sr.json"),
             "--output_dir", str(tmp_path / "out2")])  # fmt: skip
