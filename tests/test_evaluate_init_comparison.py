"""evaluate.py init-comparison: test correlations of training runs by backbone and initialisation (Fig. 5/8)."""

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import run_evaluate
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

from asym.core.errors import UserError  # noqa: E402


def run(argv):
    return run_evaluate(argv)


def _results(folder: Path, backbone: str, init: str, srcc: float, plcc: float, **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    n = extra.get("test_set", {}).get("n", 7)
    result = {"script": "train_iqa", "mode": "nr", "backbone": backbone, "weights": init, "weights_source": init,
              "init": init, "dataset": "koniq10k", "split": "official", "steps": 10, "best_step": 10,
              "initial_validation": {"srcc": 0.0, "plcc": 0.0, "krcc": 0.0, "n": 5},
              "validation": {"srcc": srcc, "plcc": plcc, "krcc": 0.0, "n": 5},
              "test": {"srcc": srcc, "plcc": plcc, "krcc": srcc / 2, "n": n, "plcc_fit": "logistic"},
              "test_set": {"fingerprint": "f" * 64, "n": n}, **extra}  # fmt: skip
    (folder / "results.json").write_text(json.dumps(result))
    return folder / "results.json"


def test_init_comparison_chart_and_tables(tmp_path, capsys):
    expected = {}
    sources = []
    for b, backbone in enumerate(("vgg16", "resnet50")):
        for i, init in enumerate(("random", "pretrained", "gan")):
            srcc, plcc = round(0.3 + 0.2 * i + 0.05 * b, 3), round(0.35 + 0.2 * i - 0.05 * b, 3)
            path = _results(tmp_path / "runs" / f"{backbone}-{init}", backbone, init, srcc, plcc)
            sources.append(str(path.parent) if i == 0 else str(path))  # run folders and files alike
            expected[(backbone, init)] = (srcc, plcc)
    out = tmp_path / "out"
    records = run(["init-comparison", "--results", ",".join(sources), "--output_dir", str(out)])
    assert len(records) == 6
    with Image.open(out / "init_comparison.png") as png:
        png.verify()
        assert png.format == "PNG" and png.size[0] > 400 and png.size[1] > 200
    with open(out / "init_comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["backbone"], r["init"]): (float(r["srcc"]), float(r["plcc"])) for r in rows} == expected
    assert [(r["backbone"], r["init"]) for r in rows][:3] == [("vgg16", "random"), ("vgg16", "pretrained"),
                                                              ("vgg16", "gan")]  # fmt: skip
    table = (out / "init_comparison.md").read_text()
    assert "### koniq10k (NR), test set" in table
    assert "| vgg16 | 0.300 | 0.350 | 0.500 | 0.550 | 0.700 | 0.750 |" in table
    assert "| resnet50 | 0.350 | 0.300 | 0.550 | 0.500 | 0.750 | 0.700 |" in table
    assert table.strip() in capsys.readouterr().out
    assert not [f for f in os.listdir(out) if f.startswith(".writing-")]


def test_init_comparison_mistakes(tmp_path):
    a = _results(tmp_path / "a", "vgg16", "random", 0.5, 0.5)
    b = _results(tmp_path / "b", "vgg16", "random", 0.6, 0.6)
    out = tmp_path / "out"
    with pytest.raises(UserError, match=f"{tmp_path / 'a'}.* and .*{tmp_path / 'b'}"):
        run(["init-comparison", "--results", f"{a},{b}", "--output_dir", str(out)])
    (tmp_path / "other.json").write_text(json.dumps({"srcc": 0.5}))
    with pytest.raises(UserError, match="not a results.json"):
        run(["init-comparison", "--results", f"{a},{tmp_path / 'other.json'}", "--output_dir", str(out)])
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(UserError, match="garbage.json cannot be read"):
        run(["init-comparison", "--results", str(tmp_path / "garbage.json"), "--output_dir", str(out)])
    with pytest.raises(UserError, match="does not exist"):
        run(["init-comparison", "--results", str(tmp_path / "nothing.json"), "--output_dir", str(out)])
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(UserError, match="holds no results.json"):
        run(["init-comparison", "--results", str(tmp_path / "empty_run"), "--output_dir", str(out)])
    assert not out.exists()
    # A results.json without "init" (older runs): it comes from weights_source.
    c = _results(tmp_path / "c", "vgg16", "", 0.7, 0.7, weights_source="gan:runs/sr (vanilla discriminator)")
    records = run(["init-comparison", "--results", f"{a},{c}", "--output_dir", str(out)])
    assert [r["init"] for r in records] == ["random", "gan"]


def test_init_comparison_refuses_runs_tested_on_different_test_sets(tmp_path, capsys):
    """Two seeds / --max_eval_samples: test-set fingerprints differ (n = 8 vs n = 40): refused naming both runs,
    unless --allow_different_test_sets, when each cell gives its n. A results.json without a fingerprint (an older
    run) cannot be checked: refused likewise; alone in its section, it is compared with nothing and passes."""
    out = tmp_path / "out"
    a = _results(tmp_path / "a", "vgg16", "random", 0.5, 0.5, test_set={"fingerprint": "a" * 64, "n": 8})
    b = _results(tmp_path / "b", "vgg16", "gan", 0.7, 0.6, test_set={"fingerprint": "b" * 64, "n": 40})
    argv = ["init-comparison", "--results", f"{a},{b}", "--output_dir", str(out)]
    with pytest.raises(UserError, match=rf"{a} \(n = 8\) and {b} \(n = 40\) were tested on different koniq10k \(NR\) "
                                        r"test sets: .*--allow_different_test_sets"):  # fmt: skip
        run(argv)
    assert not out.exists()
    records = run([*argv, "--allow_different_test_sets"])
    table = (out / "init_comparison.md").read_text()
    assert "### koniq10k (NR), test sets differ or unchecked: n per cell" in table
    assert "| vgg16 | 0.500 | 0.500 (n = 8) | 0.700 | 0.600 (n = 40) |" in table
    assert "koniq10k (NR): the runs' test sets differ or cannot be checked (--allow_different_test_sets)" in table
    assert [(r["n"], r["test_set"]) for r in records] == [(8, "a" * 64), (40, "b" * 64)]

    old = tmp_path / "old" / "results.json"
    old.parent.mkdir()
    old.write_text(json.dumps({k: v for k, v in json.loads(b.read_text()).items() if k != "test_set"}))
    with pytest.raises(UserError, match=rf"{old} records no test-set fingerprint .*: re-run it, or pass "
                                        r"--allow_different_test_sets"):  # fmt: skip
        run(["init-comparison", "--results", f"{a},{old}", "--output_dir", str(out)])
    run(["init-comparison", "--results", f"{a},{old}", "--output_dir", str(out), "--allow_different_test_sets"])
    other = _results(tmp_path / "other", "vgg16", "gan", 0.4, 0.3, dataset="kadid10k", test_set={"n": 5})  # old
    same = _results(tmp_path / "same", "vgg16", "gan", 0.6, 0.6, test_set={"fingerprint": "a" * 64, "n": 8})
    run(["init-comparison", "--results", f"{a},{same},{other}", "--output_dir", str(out)])  # one test set each
    table = (out / "init_comparison.md").read_text()
    assert "### koniq10k (NR), test set, n = 8" in table and "### kadid10k (NR), test set, n = 5" in table
    capsys.readouterr()


def test_init_comparison_marks_a_linear_plcc(tmp_path):
    linear = {"srcc": 0.1, "plcc": -0.117, "krcc": 0.1, "n": 8, "plcc_fit": "linear"}
    path = _results(tmp_path / "a", "vgg16", "random", 0.1, -0.117, test=linear)
    run(["init-comparison", "--results", str(path), "--output_dir", str(tmp_path / "out")])
    table = (tmp_path / "out" / "init_comparison.md").read_text()
    assert "| vgg16 | 0.100 | -0.117† |" in table and "† linear PLCC" in table
