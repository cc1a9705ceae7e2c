"""The robust-loss study's table (evaluate.py robust-table) from synthetic sr_results, averaged here with numpy; uqi,
ifc and the feat_weights field in evaluate.py sr; LPIPS folders as FR metrics."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_evaluate

ROOT = Path(__file__).resolve().parents[1]

from asym.core.errors import UserError  # noqa: E402
from asym.robust.table import robust_label, study_loss  # noqa: E402
from asym.sr.cards import feat_weights_robustness  # noqa: E402

DATASETS = ("Set5-x4", "Set14-x4", "BSD100-x4", "Urban100-x4", "Manga109-x4")
METRICS = ("psnr", "ssim", "uqi", "ifc", "gmsd", "lpips", "rlpips")
# model name -> (card --loss, --feat_weights, their robustness as evaluate.py sr records it); rows: EXPECTED_ROWS
MODELS = {
    "e-1": ("mse", None, "no"), "e-2": ("mse", "runs/robust", "yes"),  # E: no feature loss, robust or not
    "ep-std-1": ("mse+feat", "pretrained", "no"), "ep-std-2": ("mse+feat", "auto", "no"),
    "ep-std-3": ("mse+feat", "runs/standard", "no"), "ep-rob-1": ("mse+feat", "runs/robust-vgg19", "yes"),
    "ep-rob-2": ("feat+mse", "madrylab/robust-vgg19", "yes"), "ep-unk": ("mse+feat", "robust.pt", "unknown"),
    "ept-std": ("mse+feat+texture", "random", "no"), "ept-rob": ("texture+mse+feat", "runs/robust", "yes"),
    "gan": ("rec+per+adv", None, "no"), "ep-gan": ("mse+feat", "gan:runs/gan", "no"),
    "bicubic": (None, None, None), "hr": (None, None, None),
}  # fmt: skip
EXPECTED_ROWS = [("E", None, ["e-1", "e-2"]), ("EP", "no", ["ep-std-1", "ep-std-2", "ep-std-3"]),
                 ("EP", "yes", ["ep-rob-1", "ep-rob-2"]), ("EP", "unknown", ["ep-unk"]), ("EPT", "no", ["ept-std"]),
                 ("EPT", "yes", ["ept-rob"])]  # fmt: skip
HEADERS = ("PSNR", "SSIM", "UQI", "IFC", "GMSD", "LPIPS", "R-LPIPS")


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (conftest)


def run(argv):
    return run_evaluate(argv, capture=True)


def synthetic_results(folder: Path, seed: int = 0):
    """Two sr_results.json files (datasets split between them, as two evaluate.py sr runs) and the scores as an
    array [model, metric, dataset]; lpips is unavailable (no weights offline) everywhere."""
    rng = np.random.default_rng(seed)
    scores = rng.random((len(MODELS), len(METRICS), len(DATASETS))) * np.array([40, 1, 1, 5, 0.3, 1, 1])[:, None]
    paths = []
    for part, datasets in enumerate((DATASETS[:2], DATASETS[2:])):
        records = []
        for i, (model, (loss, weights, robust)) in enumerate(MODELS.items()):
            for j, metric in enumerate(METRICS):
                for dataset in datasets:
                    k = DATASETS.index(dataset)
                    record = {"model": model, "metric": metric, "dataset": dataset, "score": float(scores[i, j, k]),
                              "score_norm": None, "status": "ok", "images": 5 + k, "fingerprint": f"{k:016x}",
                              "source": f"runs/{model}", "kind": "asym", "loss": loss, "per_backbone": None,
                              "feat_weights": weights, "feat_robust": robust,
                              "feat_robust_why": "no card" if robust == "unknown" else None}  # fmt: skip
                    if metric == "lpips":
                        record.update(score=None, status="unavailable: URLError: offline")
                    records.append(record)
        paths.append(folder / f"part{part}.json")
        paths[-1].write_text(json.dumps(records))
    return paths, scores


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """Two train_robust.py outputs of one step (timm's test ResNet, 32x32 crops): PGD-trained and standard."""
    from conftest import reset_accelerate_state

    import train_robust

    out = tmp_path_factory.mktemp("classifiers")
    argv = ["--backbone", "timm:test_resnet", "--weights", "random", "--crop_size", "32", "--train_batch_size", "4",
            "--report_to", "none", "--attack_steps", "1", "--eval_attack_steps", "1", "--num_validation_crops", "1",
            "--max_train_steps", "1", "--checkpointing_steps", "1000"]  # fmt: skip
    for name, extra in (("robust", []), ("standard", ["--no_adversarial"])):
        reset_accelerate_state()
        train_robust.main(train_robust.parse_args([*argv, "--output_dir", str(out / name), *extra]))
    return out / "robust", out / "standard"


def test_study_letters_and_robust_flag(classifiers, tmp_path):
    robust, standard = classifiers
    losses = ("mse", "feat+mse", "texture+feat+mse", "mse+texture", "rec+per", "mse+adv", None)
    assert [study_loss(x) for x in losses] == ["E", "EP", "EPT", "ET", None, None, None]
    assert robust_label("E", str(robust)) is None
    (tmp_path / "robust.pt").write_bytes(b"weights of unknown training")  # a bare checkpoint file: no card
    weights = {None: "no", "": "no", "auto": "no", "pretrained": "no", "random": "no", "gan:runs/gan": "no",
               str(robust): "yes", str(robust / "model.safetensors"): "yes", str(standard): "no",
               str(tmp_path / "robust.pt"): "unknown", "owner/not-cached": "unknown",
               str(tmp_path / "missing.safetensors"): "unknown"}  # fmt: skip
    assert {w: robust_label("EP", w) for w in weights} == weights
    verdict, why = feat_weights_robustness(str(robust))
    assert verdict == "yes" and why.endswith("config.json: PGD-1, L2 eps 5.82, step 14.55")
    assert feat_weights_robustness(str(tmp_path / "robust.pt"))[1].endswith("without a config.json or model card "
                                                                            "saying how they were trained")  # fmt: skip


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
    assert "ep-unk: robustness of its feature weights unknown (no card); its row says unknown" in printed
    table = (tmp_path / "out" / "robust_table.md").read_text()
    assert "| Loss | Robust | Runs | PSNR ↑ | SSIM ↑ | UQI ↑ | IFC ↑ | GMSD ↓ | LPIPS ↓ | R-LPIPS ↓ |" in table
    assert "| E | – | 2 |" in table and "| EP | yes | 2 |" in table and "| EP | unknown | 1 |" in table
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
    for field, message in (("feat_robust", "before evaluate.py sr recorded feat_weights and their robustness"),
                           ("fingerprint", "before evaluate.py sr recorded which images it scored")):  # fmt: skip
        old.write_text(json.dumps([{k: v for k, v in r.items() if k != field} for r in records]))
        with pytest.raises(UserError, match=message):
            run(["robust-table", "--sr_results", str(old), *out])
    other_images = tmp_path / "other_images.json"  # Set14 again, for other models, on other images
    other_images.write_text(
        json.dumps(
            [
                {**r, "model": r["model"] + "-b", "source": r["source"] + "-b", "images": 1, "fingerprint": "f" * 16}
                for r in records
                if r["dataset"] == DATASETS[1]
            ]
        )
    )
    with pytest.raises(
        UserError,
        match=r"Set14-x4 was scored on different images in .*part0.json \(6 images, "
        r"fingerprint 0000000000000001\) and in .*other_images.json \(1 images",
    ):
        run(["robust-table", "--sr_results", str(paths[0]), "--sr_results", str(other_images), *out])
    strings = tmp_path / "strings.json"
    strings.write_text(json.dumps([{**r, "score": str(r["score"])} for r in records]))
    with pytest.raises(UserError, match=r"strings.json, record 0: score must be a number or null, got '"):
        run(["robust-table", "--sr_results", str(strings), *out])
    assert not (tmp_path / "out").exists()
    other = tmp_path / "other.json"
    other.write_text(json.dumps([r for r in records if r["model"] in ("gan", "bicubic")]))
    with pytest.raises(UserError, match="no model .* was trained with the study's losses"):
        run(["robust-table", "--sr_results", str(other), *out])
    with pytest.raises(UserError, match="expected COLUMN=NAME"):
        run(["robust-table", "--sr_results", str(paths[0]), "--metric", "FID=fid", *out])
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(UserError, match="garbage.json"):
        run(["robust-table", "--sr_results", str(tmp_path / "garbage.json"), *out])


def test_sr_then_robust_table_on_y_with_feat_robustness_and_one_image_set(classifiers, tmp_path):
    """evaluate.py sr scores uqi / ifc on Y (against asym.metrics.fidelity, cached outputs) and records each model's
    feature weights and their robustness from the weights' card; robust-table puts each distinct model in its row,
    and refuses to average in a run scored on other images of the same test set."""
    from conftest import perturbed_tiny
    from PIL import Image

    from asym.metrics.fidelity import ifc, uqi
    from asym.sr.data import load_sr_images
    from asym.sr.eval_sets import load_sr_test_set
    from asym.sr.inference import load_sr_source
    from asym.sr.output_cache import SROutputCache, run_sr

    robust, standard = classifiers
    for seed, (name, weights) in enumerate((("ep-robust", robust), ("ep", standard)), 1):
        perturbed_tiny(seed, card={"--loss": "mse+feat", "--feat_weights": str(weights)}).save_pretrained(
            tmp_path / name
        )
    (tmp_path / "hr").mkdir()
    photographs = load_sr_images("builtin")
    Image.fromarray(photographs[1][100:234, 150:281]).save(tmp_path / "hr" / "a-coffee.png")  # 134x131
    Image.fromarray(photographs[0][:96, :96]).save(tmp_path / "hr" / "b-astronaut.png")
    models = f"{tmp_path / 'ep-robust'},{tmp_path / 'ep'},bicubic"
    records, _ = run(["sr", "--models", models, "--metrics", "uqi,ifc", "--datasets", str(tmp_path / "hr"),
                      "--max_images", "1", "--output_dir", str(tmp_path / "one"), "--device", "cpu"])  # fmt: skip
    one = load_sr_test_set(str(tmp_path / "hr"), 4)
    hr = one[0].hr[None]
    assert hr.shape[-2:] == (132, 128)  # cut to a multiple of the scale
    expected = {}
    for spec, name in (
        (str(tmp_path / "ep-robust"), "ep-robust"),
        (str(tmp_path / "ep"), "ep"),
        ("bicubic", "bicubic"),
    ):
        output = run_sr(load_sr_source(spec, 4), one, SROutputCache(str(tmp_path / "one" / "sr_cache")))[one.names[0]]
        for metric, function in (("uqi", uqi), ("ifc", ifc)):
            record = next(r for r in records if r["model"] == name and r["metric"] == metric)
            expected[name, metric] = function(output, hr, border=4, y_channel=True).item()
            assert record["status"] == "ok" and record["score"] == pytest.approx(expected[name, metric], rel=1e-6)
    assert min(abs(expected[a, "ifc"] - expected[b, "ifc"]) for a, b in (("ep", "ep-robust"), ("ep", "bicubic"),
                                                                          ("ep-robust", "bicubic"))) > 0.01  # fmt: skip
    recorded = {r["model"]: (r["feat_weights"], r["feat_robust"], r["images"]) for r in records}
    assert recorded == {"ep-robust": (str(robust), "yes", 1), "ep": (str(standard), "no", 1),
                        "bicubic": (None, None, 1)}  # fmt: skip
    rows, _ = run(["robust-table", "--sr_results", str(tmp_path / "one" / "sr_results.json"), "--metric", "psnr=uqi",
                   "--output_dir", str(tmp_path / "table")])  # fmt: skip
    cells = {(r["loss"], r["robust"]): (r["models"], r["PSNR"], r["IFC"]) for r in rows}
    assert cells == {("EP", "no"): ("ep", pytest.approx(expected["ep", "uqi"]), pytest.approx(expected["ep", "ifc"])),
                     ("EP", "yes"): ("ep-robust", pytest.approx(expected["ep-robust", "uqi"]),
                                     pytest.approx(expected["ep-robust", "ifc"]))}  # fmt: skip
    run(
        [
            "sr",
            "--models",
            str(tmp_path / "ep-robust"),
            "--metrics",
            "uqi",
            "--datasets",
            str(tmp_path / "hr"),
            "--output_dir",
            str(tmp_path / "two"),
            "--device",
            "cpu",
        ]
    )  # both images
    with pytest.raises(UserError, match=r"hr-x4 was scored on different images in .*one/sr_results.json \(1 images, "
                                        r"fingerprint \w{16}\) and in .*two/sr_results.json \(2 images"):  # fmt: skip
        run(["robust-table", "--sr_results", str(tmp_path / "one" / "sr_results.json"), "--sr_results",
             str(tmp_path / "two" / "sr_results.json"), "--output_dir", str(tmp_path / "table2")])  # fmt: skip


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
