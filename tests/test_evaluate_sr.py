"""evaluate.py sr: the SR leaderboard (Table 1). Its figures: tests/test_evaluate_correlation.py (Fig. 3) and
tests/test_evaluate_sweep.py (Fig. 7)."""

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

from conftest import perturbed_tiny, run_evaluate  # noqa: E402

import evaluate  # noqa: E402
from asym.core.errors import UserError  # noqa: E402
from asym.metrics import NRMetric, psnr  # noqa: E402
from asym.metrics.calibration import Normalisation, save_normalisations, scorer_identity  # noqa: E402
from asym.sr.eval_sets import SRTestSet, load_sr_test_set  # noqa: E402
from asym.sr.inference import SRSource, load_sr_source  # noqa: E402
from asym.sr.output_cache import SROutputCache, run_sr  # noqa: E402

N_IMAGES = 2
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: on the shared 2-core VM, faster than two threads


def run(argv):
    return run_evaluate(argv)


@pytest.fixture(scope="module")
def sr_models(tmp_path_factory):
    """Two distinct x4 generators (conftest.perturbed_tiny: an untrained tiny is bicubic) saved as train_sr.py would,
    with cards naming their loss and backbones."""
    folder = tmp_path_factory.mktemp("sr")
    paths = []
    for i, (loss, backbone) in enumerate((("rec+per", "vgg16"), ("rec+per", "resnet50"))):
        card = {"--loss": loss, "--lambda_adv": 0.005,
                "perceptual loss": f"DISTS-style on {backbone} (pretrained), alpha/beta: release"}  # fmt: skip
        perturbed_tiny(i + 1, card=card).save_pretrained(folder / f"sr-{backbone}")
        paths.append(str(folder / f"sr-{backbone}"))
    return paths


@pytest.fixture(scope="module")
def iqa_models(tmp_path_factory):
    """Two NR IQAModels of one folder name, kA/iqa and kB/iqa (different weights), on timm's 0.4M-parameter test
    ResNet, and a copy of kA's weights under another name."""
    from asym import IQAModel

    folder = tmp_path_factory.mktemp("iqa")
    for seed, name in ((0, "kA/iqa"), (1, "kB/iqa"), (0, "kC/quality")):
        torch.manual_seed(seed)
        IQAModel("timm:test_resnet", "nr", weights="random").save_pretrained(folder / name)
    return {name: str(folder / name) for name in ("kA/iqa", "kB/iqa", "kC/quality")}


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
    expected = {}
    for spec, name in ((sr_models[0], "sr-vgg16"), (sr_models[1], "sr-resnet50"), ("bicubic", "bicubic")):
        outputs = run_sr(load_sr_source(spec, 4), subset, cache)
        expected[name] = np.mean([psnr(outputs[item.name], item.hr[None], border=4, y_channel=True).item()
                                  for item in subset])  # fmt: skip
        record = next(r for r in records if r["model"] == name and r["metric"] == "psnr")
        assert record["status"] == "ok" and record["score"] == pytest.approx(expected[name], abs=1e-5)
        assert record["score_norm"] is None
    values = sorted(expected.values())
    assert min(np.diff(values)) > 0.05  # three distinct models: a swapped record cannot pass
    hr = next(r for r in records if r["model"] == "hr" and r["metric"] == "psnr")
    assert hr["status"] == "n/a: reference" and hr["score"] is None
    hr_piqe = next(r for r in records if r["model"] == "hr" and r["metric"] == "piqe")
    assert hr_piqe["status"] == "ok" and math.isfinite(hr_piqe["score"])
    assert {r["loss"] for r in records if r["model"].startswith("sr-")} == {"rec+per"}
    assert {r["per_backbone"] for r in records if r["model"] == "sr-resnet50"} == {"resnet50"}
    # files: one record per (model, metric, dataset); per-image scores
    saved = json.loads((out / "sr_results.json").read_text())
    assert len(saved) == 4 * 3 and {"model", "metric", "dataset", "score", "score_norm", "status"} <= set(saved[0])
    assert {(r["images"], r["fingerprint"]) for r in saved} == {(N_IMAGES, saved[0]["fingerprint"])}
    with open(out / "sr_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len([r for r in rows if r["model"] == "bicubic" and r["metric"] == "psnr"]) == N_IMAGES
    assert "score_norm is null and the table shows raw means" in printed


def test_a_training_runs_validation_measures_as_evaluate_sr(first_run, sr_models):
    """train_sr.py's validation (asym.sr.validation.evaluate) of a model on some images equals evaluate.py sr's psnr
    of it on the same images, for the model and for bicubic: one measuring path, not two that agree roughly."""
    from torch.utils.data import Subset

    from asym import SRModel
    from asym.sr.validation import evaluate

    _, records, _ = first_run
    model = SRModel.from_pretrained(sr_models[0])
    scores = evaluate(model, Subset(load_sr_test_set("builtin", 4).images, range(N_IMAGES)), "cpu", 4, tile=0)
    table = {r["model"]: r["score"] for r in records if r["metric"] == "psnr"}
    assert scores["psnr_y"] == pytest.approx(table["sr-vgg16"], abs=1e-12)
    assert scores["bicubic_psnr_y"] == pytest.approx(table["bicubic"], abs=1e-12)
    assert model.training  # validation hands the generator back in training mode


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
    assert all(c == "n/a" for c in rows["Average"])
    assert rows["Std"] == ["n/a", "n/a", "–", "n/a", "n/a"]  # no std of stds in the Std. column
    psnrs = [next(r["score"] for r in records if r["model"] == m and r["metric"] == "psnr")
             for m in ("sr-vgg16", "sr-resnet50")]  # fmt: skip
    assert np.std(psnrs) > 0.02 and float(rows["psnr (raw)"][2]) == pytest.approx(np.std(psnrs), abs=6e-4)
    assert [float(c) for c in rows["psnr (raw)"][:2]] == pytest.approx(psnrs, abs=6e-3)  # columns in model order
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


def test_second_run_with_more_metrics_does_no_sr_forward(first_run, sr_models, iqa_models, monkeypatch, tmp_path,
                                                         capsys):  # fmt: skip
    """A re-run with more metrics runs no model; saved maps apply to their scorers (kA/iqa's map to the same weights
    in kC/quality); Average / Std are numpy's over the two normalised metrics; each keeps its raw mean below it."""
    out, _, _ = first_run
    calls = count_sr_calls(monkeypatch)
    path = tmp_path / "normalisation.json"
    piqe_map = Normalisation("piqe", -40.0, 10.0, lower_better=True, scorer=scorer_identity(NRMetric("piqe")))
    iqa_map = Normalisation("iqa", 0.6, 0.01, scorer=scorer_identity(NRMetric(iqa_models["kA/iqa"])))
    save_normalisations(str(path), [piqe_map, iqa_map])
    metrics = f"psnr,ssim,piqe,{iqa_models['kC/quality']},maniqa"
    records = run(["sr", "--models", ",".join([*sr_models, "bicubic", "hr"]), "--metrics", metrics,
                   "--datasets", "builtin", "--max_images", str(N_IMAGES), "--output_dir", str(out),
                   "--device", "cpu", "--normalisation", str(path)])  # fmt: skip
    printed = capsys.readouterr().out
    assert calls == []  # ssim is new, yet every output comes from the cache
    assert all(r["status"] == "ok" for r in records if r["metric"] == "ssim" and r["model"] != "hr")
    with open(out / "sr_scores.csv") as f:
        rows = list(csv.DictReader(f))
    for metric, fitted in (("piqe", piqe_map), ("quality", iqa_map)):
        for r in (r for r in records if r["metric"] == metric):
            raw = [float(x["score"]) for x in rows if (x["metric"], x["model"]) == (metric, r["model"])]
            assert len(raw) == N_IMAGES and r["score"] == pytest.approx(np.mean(raw), rel=1e-6)
            assert r["score_norm"] == pytest.approx(np.mean(fitted(raw)), rel=1e-6)  # mean of the mapped scores
    assert all(r["score_norm"] is None for r in records if r["metric"] == "psnr")
    # Average / Std over the normalised metrics only (piqe, quality): numpy on the same numbers
    table = table_rows(printed)
    models = ["sr-vgg16", "sr-resnet50", "bicubic", "hr"]
    column = {"sr-vgg16": 0, "sr-resnet50": 1, "bicubic": 3, "hr": 4}  # 2: Std. [rec+per]
    for model in models:
        norms = [next(r["score_norm"] for r in records if (r["model"], r["metric"]) == (model, m))
                 for m in ("piqe", "quality")]  # fmt: skip
        assert float(table["Average"][column[model]]) == pytest.approx(np.mean(norms), abs=6e-3)
        assert float(table["Std"][column[model]]) == pytest.approx(np.std(norms), abs=6e-3) and np.std(norms) > 0.1
        for metric in ("piqe", "quality"):
            record = next(r for r in records if (r["model"], r["metric"]) == (model, metric))
            assert float(table[f"{metric} (1..100)"][column[model]]) == pytest.approx(record["score_norm"], abs=6e-3)
            assert float(table[f"{metric} (raw mean)"][column[model]]) == pytest.approx(record["score"], rel=1e-3)
    assert "(1..100): the mean over images of each image's normalised score" in printed


def test_a_map_applies_only_to_the_scorer_it_was_fitted_for(iqa_models, tmp_path):
    """kA/iqa's map, saved under the name iqa, is refused for kB/iqa (another model, the same folder name), naming
    both; a file written before maps recorded their scorer is refused with the fix."""
    path = tmp_path / "normalisation.json"
    identity = scorer_identity(NRMetric(iqa_models["kA/iqa"]))
    save_normalisations(str(path), [Normalisation("iqa", 0.6, 0.01, scorer=identity)])
    argv = ["sr", "--models", "bicubic", "--datasets", "builtin", "--max_images", "1", "--device", "cpu",
            "--normalisation", str(path), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    other = scorer_identity(NRMetric(iqa_models["kB/iqa"]))
    assert other != identity and other.startswith("IQAModel weights sha256:")
    with pytest.raises(UserError, match=f"the map of iqa was fitted for {identity}, but iqa here is {other}: refit"):
        run([*argv, "--metrics", iqa_models["kB/iqa"]])
    assert not (tmp_path / "out").exists()  # refused before anything is written
    records = run([*argv, "--metrics", iqa_models["kA/iqa"]])
    assert records[0]["status"] == "ok" and 1 <= records[0]["score_norm"] <= 100
    save_normalisations(str(path), [Normalisation("iqa", 0.6, 0.01)])  # no scorer: an old file
    with pytest.raises(UserError, match="records no scorer identity .*refit it with --calibration_dataset"):
        run([*argv, "--metrics", iqa_models["kA/iqa"]])


def test_models_trained_on_builtin_scored_on_builtin_are_warned_about(tmp_path, recwarn):
    """A card saying --dataset_name builtin, scored on builtin, gets one warning naming the model; a model trained on
    a folder (--train_data_dir) and a test set that is a folder get none."""
    from asym.sr.cards import TrainingImagesWarning

    perturbed_tiny(1, card={"--loss": "rec", "--dataset_name": "builtin"}).save_pretrained(tmp_path / "on-builtin")
    perturbed_tiny(2, card={"--loss": "rec", "--dataset_name": "builtin", "--train_data_dir": "DIV2K"}).save_pretrained(
        tmp_path / "on-div2k"
    )
    models = f"{tmp_path / 'on-builtin'},{tmp_path / 'on-div2k'},bicubic"
    argv = ["sr", "--models", models, "--metrics", "psnr", "--max_images", "1", "--device", "cpu"]
    run([*argv, "--datasets", "builtin", "--output_dir", str(tmp_path / "a")])
    (warning,) = [w for w in recwarn if w.category is TrainingImagesWarning]
    assert str(warning.message).startswith("on-builtin trained on builtin: the builtin test set holds its training")
    recwarn.clear()
    folder = tmp_path / "HR"
    folder.mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32), (90, 120, 150)).save(folder / "flat.png")
    run([*argv, "--datasets", str(folder), "--output_dir", str(tmp_path / "b")])
    assert not [w for w in recwarn if w.category is TrainingImagesWarning]


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


def _units_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("score units:"))


def test_a_killed_run_resumes_from_its_score_units(sr_models, tmp_path, monkeypatch, capsys):
    """Every (model, scorer, image) score is stored as it is computed: a run killed after 5 of its 14 units, run
    again, computes only the 9 missing ones and writes the same sr_results.json as an uninterrupted run."""
    from asym.sr.score_cache import ScoreCache

    models = ",".join([*sr_models, "bicubic", "hr"])

    def argv(out):
        return ["sr", "--models", models, "--metrics", "psnr,piqe", "--datasets", "builtin", "--max_images",
                str(N_IMAGES), "--output_dir", str(out), "--device", "cpu"]  # fmt: skip

    run(argv(tmp_path / "straight"))
    real_put, puts = ScoreCache.put, []

    def put_then_die(self, *unit):
        if len(puts) == 5:
            raise KeyboardInterrupt  # the process is killed here
        puts.append(unit)
        real_put(self, *unit)

    monkeypatch.setattr(ScoreCache, "put", put_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(argv(tmp_path / "killed"))
    monkeypatch.setattr(ScoreCache, "put", real_put)
    capsys.readouterr()
    run(argv(tmp_path / "killed"))
    line = _units_line(capsys.readouterr().out)
    assert line.startswith("score units: 5 reused from ") and line.endswith(", 9 computed")
    straight, resumed = (json.loads((tmp_path / d / "sr_results.json").read_text()) for d in ("straight", "killed"))
    assert resumed == straight
    assert (tmp_path / "killed" / "sr_scores.csv").read_text() == (tmp_path / "straight" / "sr_scores.csv").read_text()


def test_another_model_or_scorer_invalidates_only_its_own_units(sr_models, tmp_path, capsys):
    def units(models, metrics, *more):
        run(["sr", "--models", ",".join(models), "--metrics", metrics, "--datasets", "builtin", "--max_images",
             str(N_IMAGES), "--output_dir", str(tmp_path), "--device", "cpu", *more])  # fmt: skip
        return _units_line(capsys.readouterr().out)

    assert units([sr_models[0], "bicubic"], "psnr,piqe").endswith(", 8 computed")  # 2 models x 2 metrics x 2 images
    assert units([sr_models[1], "bicubic"], "psnr,piqe").startswith("score units: 4 reused")  # bicubic's
    line = units([sr_models[1], "bicubic"], "psnr,piqe,ssim")
    assert line.startswith("score units: 8 reused") and line.endswith(", 4 computed")  # ssim's alone
    line = units([sr_models[1], "bicubic"], "psnr", "--tile", "64")  # tiled outputs differ: the model's units anew
    assert line.startswith("score units: 2 reused") and line.endswith(", 2 computed")  # bicubic has no tiles


def test_every_process_ends_together_once_the_main_one_has_written(tmp_path, monkeypatch):
    """A process that returns early tore the gloo group down under the others (exit 1 from the launcher): evaluate.py
    ends every verb with a barrier and the group's destruction, after the files are written."""
    import torch.distributed as dist

    from asym.core.processes import end_processes

    ended = []
    monkeypatch.setattr(evaluate, "end_processes", lambda: ended.append(sorted(p.name for p in tmp_path.iterdir())))
    run(["sr", "--models", "bicubic", "--metrics", "psnr", "--datasets", "builtin", "--max_images", "1",
         "--output_dir", str(tmp_path), "--device", "cpu"])  # fmt: skip
    assert ended == [["sr_cache", "sr_results.csv", "sr_results.json", "sr_results.md", "sr_scores.csv"]]
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    end_processes()
    assert not dist.is_initialized()


@pytest.mark.slow
def test_several_processes_write_what_one_process_writes_and_all_exit_0(tmp_path):
    """`accelerate launch --num_processes 3 evaluate.py sr` (gloo, CPU): each process scores a third of the images (5:
    unevenly), the main process gathers and writes sr_results.json / sr_scores.csv equal to a one-process run's, and
    the launch exits 0."""
    import os
    import subprocess

    for seed in (1, 2, 3):
        perturbed_tiny(seed).save_pretrained(tmp_path / f"tiny-{seed}")
    models = ",".join([*(str(tmp_path / f"tiny-{seed}") for seed in (1, 2, 3)), "bicubic"])

    def argv(out):
        return ["sr", "--models", models, "--metrics", "psnr,ssim,piqe,niqe", "--datasets", "builtin", "--max_images",
                "5", "--output_dir", str(tmp_path / out), "--device", "cpu"]  # fmt: skip

    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "3", "--num_cpu_threads_per_process", "1"]
    two = subprocess.run([*launch, "evaluate.py", *argv("two")], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "evaluate.py", *argv("one")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = (json.loads((tmp_path / out / "sr_results.json").read_text()) for out in ("one", "two"))
    assert len(a) == len(b) == 16 and [r["status"] for r in a] == [r["status"] for r in b]
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if k not in ("score", "score_norm")} == \
            {k: v for k, v in y.items() if k not in ("score", "score_norm")}  # fmt: skip
        assert x["score"] == pytest.approx(y["score"], abs=1e-6, nan_ok=True) or x["score"] is y["score"] is None
    assert two.stdout.count("score units: 0 reused") == 1  # printed by the main process alone
    with open(tmp_path / "one" / "sr_scores.csv") as f, open(tmp_path / "two" / "sr_scores.csv") as g:
        assert [r["image"] for r in csv.DictReader(f)] == [r["image"] for r in csv.DictReader(g)]


def _save(path, seed, size=(48, 40)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def _psnr_rows(out) -> dict:
    return {r["dataset"]: r for r in json.loads((out / "sr_results.json").read_text()) if r["metric"] == "psnr"}


def test_scores_are_keyed_by_pixels_not_by_set_or_image_names(tmp_path, capsys):
    """Two sets whose folders share a name, images that share a name across sets (other pixels), a.png beside a.jpg,
    and an image replaced under its name: every number is its own pixels', and a rerun rescores exactly what changed."""
    for folder, seeds in (("p/HR", {"a.png": 1, "b.png": 2}), ("q/HR", {"a.png": 3, "a.jpg": 4, "c.png": 5})):
        for name, seed in seeds.items():
            _save(tmp_path / folder / name, seed)

    def evaluate_sr(datasets, out):
        run(["sr", "--models", "bicubic", "--metrics", "psnr", "--datasets", datasets, "--output_dir",
             str(tmp_path / out), "--device", "cpu"])  # fmt: skip
        return _psnr_rows(tmp_path / out), _units_line(capsys.readouterr().out)

    both, line = evaluate_sr(f"{tmp_path}/p/HR,{tmp_path}/q/HR", "both")
    assert line.endswith("0 reused from " + str(tmp_path / "both" / "sr_cache" / "scores") + ", 5 computed")
    alone = {name: evaluate_sr(str(tmp_path / name / "HR"), name)[0]["HR-x4"] for name in ("p", "q")}
    assert set(both) == {"p/HR-x4", "q/HR-x4"}
    for name in ("p", "q"):
        row = both[f"{name}/HR-x4"]
        assert (row["score"], row["images"], row["fingerprint"]) == \
            (alone[name]["score"], alone[name]["images"], alone[name]["fingerprint"])  # fmt: skip
    with open(tmp_path / "both" / "sr_scores.csv") as f:
        scored = [(r["dataset"], r["image"], r["pixels"]) for r in csv.DictReader(f)]
    assert [(d, i) for d, i, _ in scored] == [("p/HR-x4", "a"), ("p/HR-x4", "b"), ("q/HR-x4", "a.jpg"),
                                              ("q/HR-x4", "a.png"), ("q/HR-x4", "c")]  # fmt: skip
    assert len({p for _, _, p in scored}) == 5  # five images, five contents
    _save(tmp_path / "q/HR/c.png", 6)  # a corrected release: same name, other pixels
    again, line = evaluate_sr(f"{tmp_path}/p/HR,{tmp_path}/q/HR", "both")
    assert line.startswith("score units: 4 reused") and line.endswith(", 1 computed")
    fresh = evaluate_sr(str(tmp_path / "q/HR"), "fresh")[0]["HR-x4"]
    assert again["q/HR-x4"]["score"] == fresh["score"] != both["q/HR-x4"]["score"]
    assert again["q/HR-x4"]["fingerprint"] == fresh["fingerprint"]
