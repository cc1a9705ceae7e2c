"""evaluate.py nr: NR leaderboards (init-comparison: test_evaluate_init_comparison.py; features:
test_evaluate_features.py)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_evaluate
from PIL import Image
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]

from asym import IQAModel  # noqa: E402
from asym.core.errors import UserError  # noqa: E402


def run(argv):
    return run_evaluate(argv)


@pytest.fixture(scope="module")
def nr_data(tmp_path_factory):
    """A pyiqa-style NR folder: 12 noisy 64x64 PNGs and scores.csv (img_name,mos); MOS falls with the noise."""
    folder = tmp_path_factory.mktemp("nr") / "noisy"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    base = np.stack([xx, yy, 0.5 + 0.4 * np.sin(6 * xx * yy)], -1) * 200 + 20
    rows = []
    for i in range(12):
        level = i % 4
        image = np.clip(base + rng.normal(0, 1 + 20 * level, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / "images" / f"img{i:02d}.png")
        rows.append((f"images/img{i:02d}.png", 90 - 20 * level + rng.uniform(-5, 5)))
    with open(folder / "scores.csv", "w", newline="") as f:
        csv.writer(f).writerows([("img_name", "mos"), *rows])
    images = [torch.from_numpy(np.asarray(Image.open(folder / p), dtype=np.float32) / 255).permute(2, 0, 1)
              for p, _ in rows]  # fmt: skip
    return folder, images, np.array([m for _, m in rows])


def test_nr_table_matches_independent_scores(nr_data, random_iqa_models, tmp_path, capsys):
    """The model's row equals SRCC/KRCC of its own scores; piqe (lower is better) is negated; maniqa is unavailable."""
    import pyiqa

    folder, images, mos = nr_data
    out = tmp_path / "out"
    records = run(["nr", "--models", f"{random_iqa_models / 'iqa'},piqe,maniqa", "--datasets", str(folder),
                   "--output_dir", str(out), "--device", "cpu"])  # fmt: skip
    printed = capsys.readouterr().out
    by_model = {r["model"]: r for r in records}
    assert set(by_model) == {"iqa", "piqe", "maniqa"} and {r["dataset"] for r in records} == {"noisy"}
    assert "noisy: 12 images, scores higher is better" in printed

    model = IQAModel.from_pretrained(random_iqa_models / "iqa").eval()
    with torch.no_grad():
        own = np.array([model(x[None]).item() for x in images])
    row = by_model["iqa"]
    assert row["status"] == "ok" and row["n"] == 12
    assert row["srcc"] == pytest.approx(stats.spearmanr(own, mos).statistic, abs=1e-9)
    assert row["krcc"] == pytest.approx(stats.kendalltau(own, mos).statistic, abs=1e-9)

    piqe = pyiqa.create_metric("piqe", device=torch.device("cpu"))
    assert piqe.lower_better
    with torch.no_grad():
        raw = np.array([piqe(x[None]).item() for x in images])
    expected = stats.spearmanr(-raw, mos).statistic  # oriented: higher is better
    assert abs(expected) > 0.1 and by_model["piqe"]["srcc"] == pytest.approx(expected, abs=1e-9)

    unavailable = by_model["maniqa"]
    assert unavailable["status"].startswith("unavailable:")
    assert unavailable["srcc"] is None and unavailable["plcc"] is None

    saved = json.loads((out / "nr_results.json").read_text())
    assert saved == records
    with open(out / "nr_results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["model", "dataset", "srcc", "plcc", "krcc", "n", "plcc_fit", "status", "split",
                             "split_file", "images"]  # fmt: skip
    assert row["split"] == "all" and row["images"] == "all images (no split.json beside the model), n = 12"
    assert by_model["piqe"]["images"].startswith("all images (a pyiqa / VLM model")
    assert float(next(r for r in rows if r["model"] == "iqa")["srcc"]) == pytest.approx(row["srcc"])
    assert next(r for r in rows if r["model"] == "maniqa")["srcc"] == ""
    assert "| maniqa | n/a | n/a | n/a | n/a | unavailable:" in printed
    assert f"| iqa | {row['srcc']:.3f} |" in printed


def test_nr_scores_each_model_on_its_own_test_split(nr_data, tmp_path, capsys, one_thread):
    """Models whose split.json was made for the dataset are scored on their own test split by default (two runs, two
    seeds, two test sets: said so); one whose split.json was made for another dataset, on all images (said so);
    --split_file puts every model on one file's images, --split all on every image; what was asked for explicitly
    and cannot be done is refused."""
    import shutil

    from asym.iqa.data import choose_split, load_nr_dataset, save_split

    folder, images, mos = nr_data
    data = load_nr_dataset(str(folder))
    runs = tmp_path / "runs"
    IQAModel(backbone="timm:resnet10t", mode="nr", weights="random").save_pretrained(runs / "a")  # small: fast
    for run_name, seed in (("a", 0), ("b", 1)):
        if run_name != "a":
            shutil.copytree(runs / "a", runs / run_name, ignore=shutil.ignore_patterns("split.json"))
        parts, how = choose_split(data, seed=seed, ratios=(0.5, 0.25, 0.25))
        save_split(str(runs / run_name), data, parts, how)
    shutil.copytree(runs / "a", runs / "c", ignore=shutil.ignore_patterns("split.json"))
    builtin = load_nr_dataset("builtin")
    save_split(str(runs / "c"), builtin, choose_split(builtin)[0], "random")  # made for another dataset
    tests = {r: json.loads((runs / r / "split.json").read_text())["test"] for r in ("a", "b")}
    assert tests["a"] != tests["b"] and len(tests["a"]) == 3

    model = IQAModel.from_pretrained(runs / "a").eval()  # b and c are copies of it
    with torch.no_grad():
        own = np.array([model(x[None]).item() for x in images])
    index = {key: i for i, key in enumerate(data.keys())}

    def srcc_on(keys):
        idx = [index[k] for k in keys]
        return stats.spearmanr(own[idx], mos[idx]).statistic

    argv = ["nr", "--models", ",".join(str(runs / r) for r in "abc"), "--datasets", str(folder), "--output_dir",
            str(tmp_path / "out"), "--device", "cpu"]  # fmt: skip
    by_model = {r["model"]: r for r in run(argv)}
    printed = capsys.readouterr().out
    for r in ("a", "b"):
        record = by_model[r]
        assert (record["split"], record["n"], record["split_file"]) == ("test", 3, str(runs / r / "split.json"))
        assert record["srcc"] == pytest.approx(srcc_on(tests[r]), abs=1e-9)
        assert f"{r}: test split of {runs / r / 'split.json'}, n = 3" in printed
    assert by_model["c"]["split"] == "all" and by_model["c"]["n"] == 12
    assert by_model["c"]["srcc"] == pytest.approx(stats.spearmanr(own, mos).statistic, abs=1e-9)
    assert "c: all images: its split file" in printed and "made for dataset builtin" in printed
    assert "the models are scored on different images" in printed

    pinned = run([*argv, "--split_file", str(runs / "a")])  # every model on a's test images, c included
    assert {(r["n"], r["split"], r["srcc"]) for r in pinned} == {(3, "test", by_model["a"]["srcc"])}
    assert "different images" not in capsys.readouterr().out
    trained_on = run([*argv, "--split", "train", "--split_file", str(runs / "b")])
    assert {r["n"] for r in trained_on} == {6}
    everything = run([*argv, "--split", "all"])
    assert {(r["n"], r["split"]) for r in everything} == {(12, "all")}
    with pytest.raises(UserError, match="--split test: c's split file .* was made for dataset builtin"):
        run([*argv, "--split", "test"])
    with pytest.raises(UserError, match="--split test: piqe has no split to take it from .*--split_file"):
        run([*argv[:2], "piqe", *argv[3:], "--split", "test"])
    with pytest.raises(UserError, match="was made for dataset builtin.*drop --split_file"):
        run([*argv, "--split_file", str(runs / "c" / "split.json")])
    capsys.readouterr()


@pytest.mark.parametrize("lower_better", [True, False])
def test_pyiqa_scores_are_oriented_by_lower_better(nr_data, tmp_path, monkeypatch, lower_better):
    """A stub pyiqa metric with known scores: the SRCC is that of the scores negated exactly when lower is better."""
    import pyiqa

    folder, _, mos = nr_data
    known = -mos + np.linspace(0, 3, len(mos))  # nearly the reverse of the MOS

    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lower_better, self.calls = lower_better, 0

        def forward(self, x):
            self.calls += 1
            return torch.tensor([[known[self.calls - 1]]], dtype=torch.float32)

    monkeypatch.setattr(pyiqa, "create_metric", lambda *args, **kwargs: Stub())
    records = run(["nr", "--models", "nima", "--datasets", str(folder), "--output_dir", str(tmp_path), "--device",
                   "cpu"])  # fmt: skip
    oriented = -known if lower_better else known
    assert records[0]["srcc"] == pytest.approx(stats.spearmanr(oriented.astype(np.float32), mos).statistic)
    assert (records[0]["srcc"] > 0.9) if lower_better else (records[0]["srcc"] < -0.9)
    assert np.sign(records[0]["plcc"]) == np.sign(records[0]["srcc"])


@pytest.mark.parametrize(
    "models_arg, datasets_arg, match",
    [
        ("not_a_metric", "builtin", "unknown model 'not_a_metric'"),
        ("maniqa_kadid", "builtin", "did you mean"),
        ("psnr", "builtin", "full-reference pyiqa metric"),
        ("fid", "builtin", "does not score single images"),
        ("{models}/fr_iqa", "builtin", "is an FR IQAModel"),
        ("{models}/missing_model", "builtin", "missing_model"),
        ("owner/iqa-model", "builtin", "could not be downloaded"),  # tests run offline (conftest)
        ("{models}/iqa", "{tmp}/no_such_dataset", "does not exist"),
        ("{models}/iqa,{models}/iqa", "builtin", "listed twice"),
    ],
)
def test_nr_user_mistakes_are_one_line_errors(random_iqa_models, tmp_path, models_arg, datasets_arg, match):
    out = tmp_path / "out"
    models = models_arg.format(models=random_iqa_models)
    argv = ["nr", "--models", models, "--datasets", datasets_arg.format(tmp=tmp_path), "--output_dir", str(out),
            "--device", "cpu"]  # fmt: skip
    with pytest.raises(UserError, match=match) as err:
        run(argv)
    assert "\n" not in str(err.value)
    assert not (out / "nr_results.csv").exists()


def test_nr_error_exits_2_with_one_error_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "nr", "--models", "not_a_metric", "--output_dir", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unknown model" in errors[0] and "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_two_processes_write_the_nr_table_one_process_writes(nr_data, tmp_path):
    """`accelerate launch --num_processes 2 evaluate.py nr` (gloo): each process scores every other image, all of them
    reach the correlations, the main process alone writes nr_results.json, equal to a one-process run's."""
    torch.manual_seed(0)
    IQAModel("timm:test_resnet", "nr", weights="random").save_pretrained(tmp_path / "iqa")
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}

    def argv(out):
        return ["nr", "--models", f"piqe,{tmp_path / 'iqa'}", "--datasets", str(nr_data[0]), "--output_dir",
                str(tmp_path / out), "--device", "cpu"]  # fmt: skip

    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_cpu_threads_per_process", "1"]
    for prefix, out in ((launch, "two"), ([sys.executable], "one")):
        done = subprocess.run([*prefix, "evaluate.py", *argv(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        if out == "two":
            assert done.stdout.count("| Model |") == 1  # the table printed once, by the main process
    one, two = (json.loads((tmp_path / out / "nr_results.json").read_text()) for out in ("one", "two"))
    assert len(one) == 2 and [r["n"] for r in one] == [r["n"] for r in two] == [12, 12]
    for a, b in zip(one, two):
        assert a["srcc"] == pytest.approx(b["srcc"], abs=1e-9) and a["plcc"] == pytest.approx(b["plcc"], abs=1e-6)
