"""train_iqa.py on builtin: it learns (NR and FR), resumes exactly, keeps the best model, writes its split and results,
and takes a train_sr.py discriminator as its starting point (the chain of the asymmetry study, from the CLI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from PIL import Image
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]

from conftest import reset_accelerate_state  # noqa: E402

import train_iqa  # noqa: E402
from asym import Discriminator, IQAModel  # noqa: E402
from asym.core.errors import run_cli  # noqa: E402
from asym.iqa.data import load_nr_dataset  # noqa: E402
from asym.iqa.data.splits import dataset_eval_set  # noqa: E402

# From scratch (random weights) on CPU: larger learning rates than the defaults, which are for pretrained backbones.
QUICK = ["--backbone", "vgg16", "--weights", "random", "--crop_size", "64", "--train_batch_size", "8",
         "--report_to", "none", "--max_eval_samples", "8", "--learning_rate", "3e-3",
         "--backbone_learning_rate", "3e-4"]  # fmt: skip
# A small timm ResNet learns from scratch fast enough on 2 cores (~25 s a run); random VGG-16 needs hundreds of steps.
LEARN = ["--backbone", "timm:resnet10t", "--crop_size", "96", "--max_eval_samples", "32", "--max_train_steps", "60",
         "--validation_steps", "20"]  # fmt: skip


def run(out, *argv):
    reset_accelerate_state()
    return train_iqa.main(train_iqa.parse_args([*QUICK, "--output_dir", str(out), *argv]))


@pytest.fixture(scope="module")
def nr_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nr")
    return out, run(out, "--mode", "nr", *LEARN)


@pytest.mark.parametrize("mode", ["nr", "fr"])
def test_training_beats_the_untrained_model(request, tmp_path, mode):
    if mode == "nr":
        out, _ = request.getfixturevalue("nr_run")
    else:
        out = tmp_path
        run(out, "--mode", "fr", *LEARN)
    saved = json.loads((out / "results.json").read_text())
    assert saved["mode"] == mode and saved["init"] == "random" and saved["steps"] == 60
    # measured: -0.13 -> 0.47 (FR), -0.09 -> 0.49 (NR); the untrained model is at chance level
    assert saved["validation"]["srcc"] > saved["initial_validation"]["srcc"] + 0.3, saved
    assert saved["validation"]["srcc"] > 0.3, saved
    for key in ("srcc", "plcc", "krcc", "n"):
        assert key in saved["test"]
    assert saved["test"]["n"] == 32


def test_results_are_the_kept_models_scores_on_the_test_split(nr_run):
    """Recompute the test correlations independently: reload the kept model, score the test images of split.json."""
    out, _ = nr_run
    saved = json.loads((out / "results.json").read_text())
    split = json.loads((out / "split.json").read_text())
    data = load_nr_dataset("builtin")
    keys = {item.key: i for i, item in enumerate(data.items)}
    test = [keys[k] for k in split["test"]]
    test = [test[round(i * (len(test) - 1) / 31)] for i in range(32)] if len(test) > 32 else test
    model = IQAModel.from_pretrained(out)
    with torch.no_grad():
        scores = [model(data[i]["image"][None]).item() for i in test]
    mos = data.scores()[test]  # builtin pseudo-MOS: higher is better
    assert saved["test_set"] == dataset_eval_set(data.subset(test)) and saved["test_set"]["n"] == 32
    assert saved["test"]["srcc"] == pytest.approx(scipy.stats.spearmanr(scores, mos)[0], abs=1e-9)
    assert saved["test"]["krcc"] == pytest.approx(scipy.stats.kendalltau(scores, mos)[0], abs=1e-9)
    assert saved["best_step"] in (20, 40, 60)
    card = (out / "README.md").read_text()
    assert f"step {saved['best_step']} (best validation SRCC)" in card and "test" in card
    # the card's Hub metadata: the test correlations of results.json as its model-index, --license's default
    from huggingface_hub import ModelCard

    data = ModelCard.load(out / "README.md").data
    assert (data.license, data.datasets, data.base_model, data.pipeline_tag) == ("unknown", None, None, None)
    assert {(r.task_name, r.dataset_type, r.dataset_name, r.dataset_split) for r in data.eval_results} == {
        ("No-reference image quality assessment", "builtin", saved["dataset"], "test")
    }
    kinds = {"spearmanr": "srcc", "pearsonr": "plcc", "kendalltau": "krcc"}
    expected = {k: saved["test"][k] for k in kinds.values()}
    assert {kinds[r.metric_type]: r.metric_value for r in data.eval_results} == expected


def test_split_is_written_and_reused(nr_run, tmp_path):
    out, _ = nr_run
    split = json.loads((out / "split.json").read_text())
    parts = [set(split[k]) for k in ("train", "validation", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    data = load_nr_dataset("builtin")
    ref_of = {item.key: item.ref_id for item in data.items}
    refs = [{ref_of[k] for k in p} for p in parts]
    assert not (refs[0] & refs[1] or refs[0] & refs[2] or refs[1] & refs[2])  # by reference content
    assert sum(map(len, parts)) == len(data)
    # another seed draws another split, unless --split_file pins it
    run(tmp_path / "a", "--seed", "5", "--max_train_steps", "1", "--max_eval_samples", "3")
    assert json.loads((tmp_path / "a" / "split.json").read_text())["test"] != split["test"]
    pinned = ["--split_file", str(out / "split.json")]
    run(tmp_path / "b", "--seed", "5", "--max_train_steps", "1", "--max_eval_samples", "3", *pinned)
    again = json.loads((tmp_path / "b" / "split.json").read_text())
    assert [again[k] for k in ("train", "validation", "test")] == [split[k] for k in ("train", "validation", "test")]


def _csv_set(folder, n=24, scores=None):
    """A pyiqa NR csv of ``n`` 16x16 PNGs (img_name,mos): MOS 10, 13, ... unless ``scores``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["img_name,mos"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"img{i:02d}.png")
        rows.append(f"img{i:02d}.png,{scores[i] if scores else 10 + 3 * i}")
    (folder / "meta_info.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.parametrize("broken", ["truncated png", "text named png", "truncated jpeg", "constant mos"])
def test_bad_training_data_ends_with_one_error_before_anything_is_written(tmp_path, capsys, broken):
    """A truncated image or a text file named .png anywhere in the set, or a constant MOS column: one error line
    naming the file (or the column's problem), exit 2, and the output folder of an earlier run left as it was."""
    data = _csv_set(tmp_path / "set", scores=[50] * 24 if broken == "constant mos" else None)
    bad = data / "img07.png"
    if broken == "truncated png":
        bad.write_bytes(bad.read_bytes()[:-40])
    elif broken == "text named png":
        bad.write_text("hello, this is no image\n")
    elif broken == "truncated jpeg":
        Image.open(bad).save(data / "img07.jpg", quality=90)
        (data / "img07.jpg").write_bytes((data / "img07.jpg").read_bytes()[:-200])
        text = (data / "meta_info.csv").read_text()
        (data / "meta_info.csv").write_text(text.replace("img07.png", "img07.jpg"))
        bad = data / "img07.jpg"
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")  # an earlier run's: must stay as it is
    reset_accelerate_state()
    args = train_iqa.parse_args([*QUICK, "--dataset_name", str(data), "--max_train_steps", "2", "--output_dir",
                                 str(out)])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_iqa.main, args)
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert exit_info.value.code == 2 and len(errors) == 1, errors
    if broken == "constant mos":
        assert "all 24 scores of set are equal (50): a constant MOS" in errors[0]
    else:
        assert f"image {bad} cannot be read as an image" in errors[0]
    assert os.listdir(out) == ["results.json"] and (out / "results.json").read_text() == "{}"


def test_resumed_run_equals_uninterrupted_run(tmp_path, kill_after_checkpoint):
    """Killed right after its step-3 checkpoint, then resumed: the same losses, learning rates (cosine), best model
    and final weights as 6 uninterrupted steps (validation every 2 steps, so the kept best crosses the restart)."""
    argv = ["--mode", "fr", "--backbone", "timm:resnet10t", "--max_train_steps", "6", "--validation_steps", "2",
            "--checkpointing_steps", "3", "--max_eval_samples", "4"]  # fmt: skip
    straight = run(tmp_path / "straight", *argv)["history"]

    kill_after_checkpoint(train_iqa, 3, lambda: run(tmp_path / "split", *argv))
    resumed = run(tmp_path / "split", *argv, "--resume_from_checkpoint", "latest")["history"]
    assert len(resumed) == 3
    for a, b in zip(straight[3:], resumed):
        assert a["lr_head"] == b["lr_head"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    for name in ("checkpoints/checkpoint-6/model.safetensors", "model.safetensors"):
        a, b = load_file(tmp_path / "straight" / name), load_file(tmp_path / "split" / name)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    ra, rb = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("straight", "split"))
    assert ra["best_step"] == rb["best_step"] and ra["test"] == pytest.approx(rb["test"], abs=1e-6)


@pytest.mark.slow  # a long end-to-end chain: the slow lane, which CI runs too
def test_the_study_chain_from_the_command_line(tmp_path):
    """train_sr.py per+adv -> train_iqa.py --weights gan:<its output> -> evaluate.py nr, each a fresh process."""

    def cli(*argv):
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    sr, iqa, table = tmp_path / "sr", tmp_path / "iqa", tmp_path / "table"
    cli("train_sr.py", "--loss", "per+adv", "--model", "tiny", "--crop_size", "32", "--weights", "random",
        "--max_train_steps", "2", "--num_validation_images", "1", "--report_to", "none",
        "--output_dir", str(sr))  # fmt: skip
    cli("train_iqa.py", *QUICK, "--weights", f"gan:{sr}", "--max_train_steps", "2", "--output_dir", str(iqa))
    small = tmp_path / "nr-set"  # 12 builtin images cut to 64x64, as a pyiqa NR csv: scoring all 160 takes minutes
    small.mkdir()
    data, rows = load_nr_dataset("builtin"), ["img_name,mos"]
    for i in range(0, 160, 14):
        Image.fromarray((data[i]["image"][:, :64, :64].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(
            small / f"{i}.png"
        )
        rows.append(f"{i}.png,{data.items[i].score}")
    (small / "meta_info.csv").write_text("\n".join(rows) + "\n")
    cli("evaluate.py", "nr", "--models", str(iqa), "--datasets", str(small), "--output_dir", str(table))

    results = json.loads((iqa / "results.json").read_text())
    assert results["init"] == "gan"
    assert results["weights_source"].startswith(f"gan:{sr / 'discriminator'} (vanilla discriminator on vgg16, 2 steps")
    disc = Discriminator.from_pretrained(sr / "discriminator")
    model = IQAModel.from_pretrained(iqa)  # fine-tuned from it: close to, but not equal to, the discriminator
    first = "model.features.0.weight"
    start, tuned = disc.backbone.state_dict()[first], model.backbone.state_dict()[first]
    assert not torch.equal(start, tuned) and (start - tuned).abs().max() < 0.05 * start.abs().max()
    rows = json.loads((table / "nr_results.json").read_text())
    assert len(rows) == 1 and rows[0]["status"] == "ok" and np.isfinite(rows[0]["srcc"]) and rows[0]["n"] == 12
