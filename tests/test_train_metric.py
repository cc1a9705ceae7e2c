"""train_metric.py and evaluate.py end to end on the builtin IQA set, CPU, random backbones."""

import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

from conftest import reset_accelerate_state  # noqa: E402

import evaluate  # noqa: E402
import train_metric  # noqa: E402
from asym import DISTS  # noqa: E402
from asym.core.training import run_cli  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short training run shared by the tests below (random VGG-16, builtin pseudo-MOS)."""
    reset_accelerate_state()
    out = tmp_path_factory.mktemp("metric")
    args = train_metric.parse_args([
        "--backbone", "vgg16", "--weights", "random", "--output_dir", str(out), "--max_train_steps", "30",
        "--train_batch_size", "8", "--crop_size", "96", "--learning_rate", "3e-3", "--lr_halving_steps", "1000",
        "--validation_steps", "30", "--checkpointing_steps", "15", "--report_to", "none", "--max_eval_samples", "16",
    ])  # fmt: skip
    return args, train_metric.main(args)


def test_training_raises_validation_srcc(trained):
    args, result = trained
    final = result["history"][-1]["val/srcc"]
    assert final > result["initial"]["srcc"] + 0.02, (result["initial"], final)
    assert result["history"][-1]["loss"] < result["history"][0]["loss"]


def test_saved_metric_reproduces_the_runs_test_results_and_card(trained):
    """The saved metric, loaded back and scored on the test pairs split.json names, gives the test correlations the
    run recorded in results.json (SRCC / KRCC recomputed with scipy), on the test set results.json fingerprints."""
    from scipy import stats

    from asym.core.training import evenly_spaced
    from asym.iqa.data import load_fr_dataset
    from asym.iqa.data.splits import dataset_eval_set
    from asym.metrics import correlations

    args, _ = trained
    metric = DISTS.from_pretrained(args.output_dir).eval()
    assert torch.all(metric.alpha >= 0) and torch.isclose(metric.alpha.sum() + metric.beta.sum(), torch.tensor(1.0))
    assert (metric.alpha[:3] >= 0.02 - 1e-6).all() and (metric.beta[:3] >= 0.02 - 1e-6).all()
    results = json.loads((Path(args.output_dir) / "results.json").read_text())
    split = json.loads((Path(args.output_dir) / "split.json").read_text())
    data = load_fr_dataset("builtin")
    index = {key: i for i, key in enumerate(data.keys())}
    test = data.subset(evenly_spaced([index[key] for key in split["test"]], 16))  # --max_eval_samples 16
    with torch.no_grad():
        scores = [-metric(test[i]["dist"][None], test[i]["ref"][None]).item() for i in range(len(test))]
    mos = test.quality()
    assert results["test"]["n"] == len(test) == 16 and results["test_set"] == dataset_eval_set(test)
    assert results["test"]["srcc"] == pytest.approx(stats.spearmanr(scores, mos).statistic, abs=1e-6)
    assert results["test"]["krcc"] == pytest.approx(stats.kendalltau(scores, mos).statistic, abs=1e-6)
    assert results["test"]["plcc"] == pytest.approx(correlations(scores, mos)["plcc"], abs=1e-5)
    card = (Path(args.output_dir) / "README.md").read_text()
    assert "test" in card and "SRCC" in card and "1 - PLCC" in card
    # the card's Hub metadata: --license's default, nothing on the Hub used, the test correlations as its model-index
    from huggingface_hub import ModelCard

    data = ModelCard.load(Path(args.output_dir) / "README.md").data
    assert (data.license, data.datasets, data.base_model, data.pipeline_tag) == ("unknown", None, None, None)
    assert {(r.task_type, r.task_name, r.dataset_type, r.dataset_name, r.dataset_split) for r in data.eval_results} == {
        ("image-quality-assessment", "Full-reference image quality assessment", "builtin", results["dataset"], "test")
    }  # fmt: skip
    kinds = {"spearmanr": "srcc", "pearsonr": "plcc", "kendalltau": "krcc"}
    expected = {k: results["test"][k] for k in kinds.values()}
    assert {kinds[r.metric_type]: r.metric_value for r in data.eval_results} == expected


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    def run(name, steps, *extra):
        reset_accelerate_state()
        args = train_metric.parse_args([
            "--backbone", "vgg16", "--weights", "random", "--output_dir", str(tmp_path / name), "--crop_size", "64",
            "--train_batch_size", "4", "--learning_rate", "1e-2", "--lr_halving_steps", "2", "--validation_steps",
            "100", "--max_eval_samples", "4", "--checkpointing_steps", "3", "--report_to", "none",
            "--max_train_steps", str(steps), *extra,
        ])  # fmt: skip
        return train_metric.main(args)["history"]

    straight = run("straight", 6)
    run("split", 3)
    resumed = run("split", 6, "--resume_from_checkpoint", "latest")
    assert len(resumed) == 3  # steps 4..6 only
    assert [h["lr"] for h in resumed] == [h["lr"] for h in straight[3:]]  # the halving schedule resumed too
    for a, b in zip(straight[3:], resumed):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)  # same batches, same alpha/beta
    a, b = DISTS.from_pretrained(tmp_path / "straight"), DISTS.from_pretrained(tmp_path / "split")
    torch.testing.assert_close(a.alpha, b.alpha, atol=1e-7, rtol=0)
    torch.testing.assert_close(a.beta, b.beta, atol=1e-7, rtol=0)
    assert not torch.equal(a.alpha, DISTS("vgg16", weights="random", alpha_beta="uniform").alpha)  # it did train


def test_vgg16_r_is_only_evaluated(tmp_path):
    args = train_metric.parse_args(["--backbone", "vgg16-r", "--output_dir", str(tmp_path), "--max_train_steps", "5",
                                    "--report_to", "none", "--crop_size", "96", "--max_eval_samples", "8"])  # fmt: skip
    result = train_metric.main(args)
    assert result["history"] == []
    saved = DISTS.from_pretrained(tmp_path)
    assert torch.equal(saved.alpha, DISTS("vgg16-r", seed=0).alpha)


def test_evaluate_fr_table_and_files(trained, tmp_path, capsys):
    args, _ = trained
    argv = ["fr", "--metrics", f"psnr,ssim,{args.output_dir}", "--datasets", "builtin", "--max_samples", "6"]
    records = evaluate.main(evaluate.parse_args([*argv, "--output_dir", str(tmp_path), "--device", "cpu"]))
    table = capsys.readouterr().out
    assert "| Metric | builtin SRCC | builtin PLCC | Avg SRCC | Avg PLCC |" in table
    saved = json.loads((tmp_path / "fr_results.json").read_text())
    assert saved == records and len(records) == 3  # 6 evenly spaced pairs of what each scores
    assert {"metric", "dataset", "srcc", "plcc", "krcc", "n"} <= set(records[0])
    assert (tmp_path / "fr_results.csv").read_text().startswith("metric,dataset,srcc,plcc,krcc,n")
    by_name = {r["metric"]: r for r in records}
    assert by_name["psnr"]["srcc"] > 0.3  # PSNR tracks the pseudo-MOS of graded distortions
    # the trained metric is scored on its own test split (never on its training pairs), the pyiqa ones on all pairs
    split = json.loads((Path(args.output_dir) / "split.json").read_text())
    own = by_name[Path(args.output_dir).name]
    assert (own["split"], own["n"]) == ("test", 6) and own["split_file"].endswith("split.json")
    assert own["images"] == f"test split of {own['split_file']}, n = 6" and len(split["test"]) == 40
    assert (by_name["psnr"]["split"], by_name["psnr"]["n"]) == ("all", 6) and by_name["psnr"]["status"] == "ok"
    assert by_name["psnr"]["images"] == "all images (a fixed index, never trained: no split.json), n = 6"
    assert "builtin: the metrics are scored on different images" in table
    # one split file for all: every metric on the same test pairs, and no warning
    argv = [*argv, "--split_file", args.output_dir, "--output_dir", str(tmp_path / "same"), "--device", "cpu"]
    same = evaluate.main(evaluate.parse_args(argv))
    assert {(r["split"], r["n"]) for r in same} == {("test", 6)}
    assert "scored on different images" not in capsys.readouterr().out


def test_evaluate_fr_reads_dataset_columns_and_lower_better(tmp_path, capsys):
    """A saved `datasets` table with its own column names and a DMOS (higher = worse): PSNR agrees once oriented."""
    import datasets
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = {"distorted": [], "pristine": [], "dmos": []}
    for _ in range(3):
        ref = rng.integers(0, 256, (32, 32, 3)).astype(np.float64)
        for level in (1, 2, 3, 4):
            noisy = np.clip(ref + rng.normal(0, 12 * level, ref.shape), 0, 255).astype(np.uint8)
            rows["distorted"].append(Image.fromarray(noisy))
            rows["pristine"].append(Image.fromarray(ref.astype(np.uint8)))
            rows["dmos"].append(float(level))
    features = datasets.Features(
        {"distorted": datasets.Image(), "pristine": datasets.Image(), "dmos": datasets.Value("float32")}
    )
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "noisy"))
    argv = ["fr", "--metrics", "psnr", "--datasets", str(tmp_path / "noisy"), "--image_column", "distorted",
            "--ref_column", "pristine", "--score_column", "dmos", "--output_dir", str(tmp_path)]  # fmt: skip
    oriented = evaluate.main(evaluate.parse_args([*argv, "--lower_better"]))[0]
    assert oriented["dataset"] == "noisy" and oriented["n"] == 12 and oriented["srcc"] > 0.6
    assert "lower is better" in capsys.readouterr().out
    # a column named dmos is read lower-is-better without the flag too; --higher_better says otherwise
    assert evaluate.main(evaluate.parse_args(argv))[0]["srcc"] == pytest.approx(oriented["srcc"])
    assert "lower is better (column 'dmos'" in capsys.readouterr().out
    flipped = evaluate.main(evaluate.parse_args([*argv, "--higher_better"]))[0]
    assert flipped["srcc"] == pytest.approx(-oriented["srcc"])


def test_evaluate_recover_writes_images(trained, tmp_path, capsys):
    args, _ = trained
    evaluate.main(evaluate.parse_args(["recover", "--metric", args.output_dir, "--size", "48", "--steps", "10",
                                       "--output_dir", str(tmp_path), "--device", "cpu"]))  # fmt: skip
    printed = capsys.readouterr()
    assert "PSNR" in printed.out and "10/10" in printed.err  # its progress: a bar over the steps
    assert "backbone with random weights (vgg16: stored in" in printed.out  # and why the picture is noise: random VGG
    from PIL import Image

    from asym.reporting.grids import LABEL_HEIGHT

    (path,) = tmp_path.glob("recover-*.png")
    with Image.open(path) as picture:  # two labelled 48x48 panels: result | target, under a label strip
        assert picture.size == (2 * 48 + 3 * 2, LABEL_HEIGHT + 48 + 2 * 2)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fr", "--metrics", "nosuchmetric"], "unknown metric 'nosuchmetric'"),
        (["fr", "--metrics", "psnr", "--datasets", "/nonexistent/kadid"], "does not exist"),
        (["recover", "--metric", "psnr", "--image", "nosuchimage"], "neither a file nor a builtin name"),
    ],
)
def test_evaluate_user_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(evaluate.main, evaluate.parse_args([*argv, "--output_dir", str(tmp_path)]))
    assert exit_info.value.code != 0 and message in capsys.readouterr().err


def test_default_crop_is_capped_to_builtin_before_any_work(tmp_path, monkeypatch):
    """The default --crop_size 256 on the 192x192 builtin pairs: capped (with a warning) before the first
    evaluation, instead of failing after it."""
    crops_seen = []
    evaluate_metric = train_metric.evaluate

    def recording(*args, **kwargs):
        crops_seen.append(parsed.crop_size)
        return evaluate_metric(*args, **kwargs)

    monkeypatch.setattr(train_metric, "evaluate", recording)
    parsed = train_metric.parse_args(["--weights", "random", "--max_train_steps", "1", "--train_batch_size", "2",
                                      "--max_eval_samples", "5", "--report_to", "none",
                                      "--output_dir", str(tmp_path)])  # fmt: skip
    assert parsed.crop_size == 256
    result = train_metric.main(parsed)
    assert len(result["history"]) == 1 and crops_seen[0] == 192
    assert json.loads((tmp_path / "config.json").read_text())["card"]["--crop_size"] == 192
