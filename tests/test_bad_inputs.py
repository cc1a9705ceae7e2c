"""Every script, every file that is not what it claims: one line naming the problem, exit status 2, no traceback,
and nothing already in the output folder touched. Table-driven: each row is (script, arguments, expected message)."""

import argparse
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]

from conftest import reset_accelerate_state  # noqa: E402

import evaluate  # noqa: E402
import train_iqa  # noqa: E402
import train_metric  # noqa: E402
import train_robust  # noqa: E402
import train_sr  # noqa: E402
from asym import DISTS, SRModel  # noqa: E402
from asym.core.errors import run_cli  # noqa: E402
from asym.core.training import check_output_dir  # noqa: E402

SCRIPTS = {"train_sr": train_sr, "train_metric": train_metric, "train_iqa": train_iqa, "train_robust": train_robust,
           "evaluate": evaluate}  # fmt: skip
SR = ["--model", "tiny", "--crop_size", "32", "--weights", "random", "--max_train_steps", "1", "--report_to", "none",
      "--num_validation_images", "1", "--loss", "rec"]  # fmt: skip
METRIC = ["--weights", "random", "--max_train_steps", "1", "--report_to", "none", "--crop_size", "64",
          "--max_eval_samples", "4"]  # fmt: skip
IQA = METRIC  # train_iqa.py shares train_metric.py's quick flags
ROBUST = ["--backbone", "timm:test_resnet", "--weights", "random", "--max_train_steps", "1", "--report_to", "none",
          "--num_validation_crops", "1", "--eval_attack_steps", "1"]  # fmt: skip


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The broken inputs, made once: each is realistic (a real file cut short, garbage bytes, a foreign pickle...)."""
    d = tmp_path_factory.mktemp("inputs")
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()  # the same garbage every run
    (d / "garbage.pth").write_bytes(noise)
    (d / "garbage.safetensors").write_bytes(b"\xff" * 64 + noise[:1024])
    save_file({"features.0.weight": torch.rand(64, 3, 3, 3)}, str(d / "cut.safetensors"))
    _truncated(d / "cut.safetensors")
    torch.save({"state_dict": argparse.Namespace(lr=1)}, d / "pickle.pt")  # not tensors: weights_only refuses it
    (d / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + noise[:512])
    (d / "a_file.txt").write_text("not a folder")
    SRModel("tiny", 4).save_pretrained(d / "sr-cut")
    _truncated(d / "sr-cut" / "model.safetensors")
    SRModel("tiny", 2).save_pretrained(d / "sr-x2")
    torch.save({"params": SRModel("tiny", 2).net.state_dict()}, d / "release_x2.pth")
    DISTS("vgg16", weights="random").save_pretrained(d / "metric")
    DISTS("vgg16", weights="random").save_pretrained(d / "metric-cut")
    _truncated(d / "metric-cut" / "model.safetensors")
    pretrained = DISTS("vgg16", weights="random")
    pretrained.backbone.weights_source = "pretrained"  # as if saved with ImageNet weights: not stored, not obtainable
    pretrained.save_pretrained(d / "metric-pretrained")
    (d / "broken-images").mkdir()
    for name in ("a.png", "b.jpg"):
        (d / "broken-images" / name).write_bytes(noise[:300])
    (d / "empty").mkdir()
    kadid = d / "kadid-malformed"
    (kadid / "images").mkdir(parents=True)
    for name in ("I01.png", "I01_01_01.png"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(kadid / "images" / name)
    (kadid / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.1,0.2\nI01_01_02.png,I01.png\n")
    koniq = d / "koniq-malformed"
    (koniq / "512x384").mkdir(parents=True)
    for name in ("1.jpg", "2.jpg"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(koniq / "512x384" / name)
    (koniq / "koniq10k_scores_and_distributions.csv").write_text(
        "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore\n1.jpg,0,1,2,3,4,10,3.8,0.9,70.1\n2.jpg,0,1,2,3,4,10,good\n"
    )
    (d / "other-split.json").write_text('{"dataset": "kadid10k", "train": ["I01_01_01.png"], "validation": '
                                        '["I02_01_01.png"], "test": ["I03_01_01.png"]}')  # fmt: skip
    (d / "no-layout").mkdir()
    (d / "no-layout" / "notes.txt").write_text("hello")
    return d


@pytest.fixture(scope="module")
def x2_checkpoint(tmp_path_factory):
    """A real checkpoint of a x2 tiny run: resuming a x4 run from it cannot fit."""
    reset_accelerate_state()
    out = tmp_path_factory.mktemp("x2run")
    train_sr.main(train_sr.parse_args([*SR, "--scale", "2", "--checkpointing_steps", "1", "--output_dir", str(out)]))
    return out / "checkpoints" / "checkpoint-1"


# (script, arguments with {f} = the inputs folder and {out} = the output folder, expected part of the message)
CASES = [
    ("train_sr", [*SR, "--init_generator", "{f}/garbage.pth"], "generator checkpoint {f}/garbage.pth cannot be read"),
    ("train_sr", [*SR, "--init_generator", "{f}/pickle.pt"], "not a tensors-only torch file"),
    ("train_sr", [*SR, "--init_generator", "{f}/sr-cut"], "model weights {f}/sr-cut/model.safetensors cannot be read"),
    ("train_sr", [*SR, "--init_generator", "{f}/sr-x2"], "is a tiny x2 model, not --model tiny --scale 4"),
    ("train_sr", [*SR, "--init_generator", "{f}/release_x2.pth"], "does not fit --model tiny --scale 4"),
    ("train_sr", [*SR, "--init_generator", "{f}/metric"], "holds an asym DISTS, not a SRModel"),
    ("train_sr", [*SR, "--init_generator", "{f}/nowhere/model"], "{f}/nowhere/model is not a folder saved by asym"),
    ("train_sr", [*SR, "--loss", "per", "--weights", "{f}/garbage.safetensors"], "{f}/garbage.safetensors"),
    ("train_sr", [*SR, "--loss", "per", "--weights", "{f}/cut.safetensors"], "{f}/cut.safetensors"),
    ("train_sr", [*SR, "--loss", "per", "--weights", "{f}/pickle.pt"], "not a tensors-only torch file"),
    ("train_sr", [*SR, "--loss", "per", "--per_metric", "{f}/metric-cut"], "metric-cut/model.safetensors cannot be"),
    ("train_sr", [*SR, "--loss", "per", "--per_metric", "{f}/metric-pretrained"], "relies on pretrained backbone"),
    ("train_sr", [*SR, "--loss", "adv", "--disc_weights", "{f}/garbage.safetensors"], "{f}/garbage.safetensors"),
    (
        "train_sr",
        [*SR, "--resume_from_checkpoint", "{out}/checkpoints/checkpoint-3", "--max_train_steps", "3"],
        "checkpoint {out}/checkpoints/",
    ),
    ("train_sr", [*SR, "--resume_from_checkpoint", "{f}/nowhere/checkpoint-3"], "is not a checkpoint-N folder"),
    ("train_sr", [*SR, "--resume_from_checkpoint", "{x2}"], "size mismatch"),
    ("train_sr", [*SR, "--output_dir", "{f}/a_file.txt"], "--output_dir {f}/a_file.txt exists and is not a folder"),
    ("train_sr", [*SR, "--train_data_dir", "{f}/a_file.txt"], "image folder {f}/a_file.txt is not a folder"),
    ("train_sr", [*SR, "--train_data_dir", "{f}/broken-images"], "none of the 2 images in {f}/broken-images"),
    ("train_sr", [*SR, "--validation_data_dir", "{f}/empty"], "{f}/empty has no images"),
    ("train_sr", [*SR, "--dataset_name", "./no/such/dataset"], "dataset ./no/such/dataset does not exist"),
    ("train_sr", [*SR, "--crop_size", "2048"], "smaller than the 2048x2048 crop"),
    ("train_sr", [*SR, "--lr_milestones", "1e3,abc"], "expected comma-separated step numbers"),
    ("train_sr", [*SR, "--loss", "per", "--per_backbone", "vgg17"], "unknown backbone 'vgg17'"),
    ("train_metric", [*METRIC, "--dataset_name", "{f}/kadid-malformed"], "dmos.csv line 3"),
    ("train_metric", [*METRIC, "--dataset_name", "{f}/no-layout"], "in no known IQA layout"),
    ("train_metric", [*METRIC, "--weights", "{f}/cut.safetensors"], "{f}/cut.safetensors"),
    ("train_metric", [*METRIC, "--output_dir", "{f}/a_file.txt"], "exists and is not a folder"),
    (
        "train_metric",
        [*METRIC, "--resume_from_checkpoint", "{out}/checkpoints/checkpoint-3", "--max_train_steps", "3"],
        "cannot be read",
    ),
    ("train_metric", [*METRIC, "--backbone", "timm:no_such_net"], "no_such_net"),
    ("train_iqa", [*IQA, "--mode", "xx"], "argument --mode: invalid choice: 'xx'"),
    ("train_iqa", [*IQA, "--backbone", "vgg17"], "unknown backbone 'vgg17'"),
    ("train_iqa", [*IQA, "--weights", "gan:{f}/empty"], "gan:{f}/empty holds no discriminator"),
    ("train_iqa", [*IQA, "--weights", "gan:{f}/metric"], "gan:{f}/metric holds no discriminator"),
    ("train_iqa", [*IQA, "--split_file", "{f}/other-split.json"], "was made for dataset kadid10k"),
    ("train_iqa", [*IQA, "--split_file", "{f}/garbage.png"], "garbage.png line 1: not UTF-8 text"),
    ("train_iqa", [*IQA, "--split", "official"], "builtin has no official split"),
    ("train_iqa", [*IQA, "--dataset_name", "{f}/koniq-malformed"], "koniq10k_scores_and_distributions.csv line 3"),
    ("train_iqa", [*IQA, "--mode", "fr", "--dataset_name", "{f}/kadid-malformed"], "dmos.csv line 3"),
    (
        "train_iqa",
        [*IQA, "--resume_from_checkpoint", "{out}/checkpoints/checkpoint-3", "--max_train_steps", "3"],
        "cannot be read",
    ),
    ("evaluate", ["fr", "--metrics", "{f}/metric-cut"], "metric-cut/model.safetensors cannot be read"),
    ("evaluate", ["fr", "--metrics", "{f}/metric-pretrained"], "relies on pretrained backbone"),
    ("evaluate", ["fr", "--metrics", "psnr,{f}/metric,psnr"], "metric listed twice (psnr, psnr)"),
    ("evaluate", ["fr", "--metrics", "psnr", "--datasets", "{f}/nowhere/kadid"], "does not exist"),
    ("evaluate", ["fr", "--metrics", "psnr", "--datasets", "data/dmos.csv"], "file data/dmos.csv does not exist"),
    ("evaluate", ["fr", "--metrics", "nosuchmetric"], "unknown metric 'nosuchmetric'"),
    ("evaluate", ["recover", "--metric", "psnr", "--image", "{f}/garbage.png"], "--image {f}/garbage.png cannot be"),
    ("evaluate", ["recover", "--metric", "psnr", "--output_dir", "{f}/a_file.txt"], "exists and is not a folder"),
    # numbers out of range: refused while parsing (every flag: test_numeric_flags.py); a run that would train nothing
    # must not replace the folder's model and results.json
    ("train_iqa", [*IQA, "--max_train_steps", "0"], "argument --max_train_steps: must be at least 1, got 0"),
    ("train_robust", [*ROBUST, "--max_train_steps", "-1"], "argument --max_train_steps: must be at least 1, got -1"),
    ("train_metric", [*METRIC, "--objective", "2afc", "--max_train_steps", "0"], "--max_train_steps: must be at least"),
    ("train_sr", [*SR, "--train_batch_size", "0"], "argument --train_batch_size: must be at least 1, got 0"),
    ("train_iqa", [*IQA, "--train_batch_size", "0"], "argument --train_batch_size: must be at least 1, got 0"),
    ("train_sr", [*SR, "--lambda_rec", "0"], "every term has weight 0 (--lambda_rec): the generator would not train"),
    ("train_sr", [*SR, "--attention", "sdpa"], "--attention sdpa is for window-attention generators (swinir, "),
    ("train_sr", [*SR, "--compile_mode", "fastest"], "argument --compile_mode: invalid choice: 'fastest'"),
    ("train_sr", [*SR, "--resume_from_checkpoint", "latest"], "is at step 3, past --max_train_steps 1"),
    ("train_sr", SR, "holds an earlier run's checkpoints (up to checkpoint-3): pass --resume_from_checkpoint latest"),
    ("evaluate", ["grid", "--models", "bicubic", "--size", "0"], "argument --size: must be at least 1, got 0"),
    ("evaluate", ["grid", "--models", "bicubic", "--size", "-2"], "argument --size: must be at least 1, got -2"),
    ("evaluate", ["grid", "--models", "bicubic", "--scale", "0"], "argument --scale: must be at least 1, got 0"),
    ("evaluate", ["grid", "--models", "bicubic", "--size", "30", "--scale", "4"], "--size 30 is not divisible by"),
    (
        "evaluate",
        ["sr", "--models", "bicubic", "--metrics", "psnr", "--tile", "-8"],
        "argument --tile: must be at least 0, got -8",
    ),
    # an output folder that cannot be written: os.access says yes to root, and to /proc; an empty name
    (
        "evaluate",
        ["recover", "--metric", "psnr", "--output_dir", "/proc/asym/out"],
        "--output_dir /proc/asym/out cannot be created",
    ),
    ("evaluate", ["grid", "--models", "bicubic", "--output_dir", ""], "--output_dir is empty"),
    ("train_iqa", [*IQA, "--output_dir", "/proc/asym/out"], "--output_dir /proc/asym/out cannot be created"),
    ("train_robust", [*ROBUST, "--output_dir", ""], "--output_dir is empty"),
]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.mark.parametrize("script, argv, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_and_touches_nothing(files, x2_checkpoint, tmp_path, capsys, script, argv, message):
    out = tmp_path / "out"
    (out / "checkpoints" / "checkpoint-3").mkdir(parents=True)  # an earlier run's files, which must survive
    (out / "checkpoints" / "checkpoint-3" / "model.safetensors").write_bytes(b"half-written by a killed run")
    (out / "model.safetensors").write_bytes(b"the previous model")
    (out / "results.json").write_text('{"test": {"srcc": 0.9, "plcc": 0.9}}')
    before = _snapshot(out)
    fill = {"f": str(files), "out": str(out), "x2": str(x2_checkpoint)}
    argv = [a.format(**fill) for a in argv]
    if "--output_dir" not in argv:
        argv += ["--output_dir", str(out)]
    reset_accelerate_state()
    module = SCRIPTS[script]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(module.main, module.parse_args(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(("error:", "usage:")) or ": error: " in last, err
    assert message.format(**fill) in last, err
    assert sum(line.startswith("error:") for line in err.splitlines()) <= 1
    assert _snapshot(out) == before


def test_each_script_has_its_own_folder_and_never_writes_over_another_kind(files, x2_checkpoint, tmp_path, capsys):
    """Bare runs of the four training scripts used to share ./output (its config.json went IQAModel -> DISTS ->
    Classifier, a stale split.json left beside the classifier). Each has its own default folder now, and a run into a
    folder holding another class's model, or a model of another library, is refused before any work: one error line,
    exit 2, the folder byte-identical. A resume or a re-run of the same kind is allowed."""
    defaults = {name: SCRIPTS[name].parse_args([]).output_dir for name in SCRIPTS if name.startswith("train_")}
    assert defaults == {"train_sr": "output/sr", "train_metric": "output/metric", "train_iqa": "output/iqa",
                        "train_robust": "output/robust"}  # fmt: skip
    sr_run = x2_checkpoint.parent.parent  # a real train_sr.py run: SRModel, checkpoints, validation grids
    foreign = tmp_path / "vae"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"_class_name": "AutoencoderKL"}')  # a diffusers folder
    cases = [
        ("train_iqa", IQA, sr_run, "holds an asym SRModel (a train_sr.py run), not the IQAModel this run writes"),
        ("train_metric", METRIC, sr_run, "holds an asym SRModel (a train_sr.py run), not the DISTS this run"),
        ("train_metric", [*METRIC, "--objective", "2afc"], sr_run, "not the LPIPS this run writes"),
        ("train_robust", ROBUST, sr_run, "holds an asym SRModel (a train_sr.py run), not the Classifier this run"),
        ("train_sr", SR, files / "metric", "holds an asym DISTS (a train_metric.py run), not the SRModel this run"),
        ("train_sr", SR, foreign, "holds a config.json naming no asym class, not the SRModel this run writes"),
    ]
    for script, argv, folder, message in cases:
        before = _snapshot(folder)
        reset_accelerate_state()
        with pytest.raises(SystemExit) as exit_info:
            run_cli(SCRIPTS[script].main, SCRIPTS[script].parse_args([*argv, "--output_dir", str(folder)]))
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert exit_info.value.code == 2 and len(errors) == 1 and message in errors[0], (script, errors)
        assert _snapshot(folder) == before
    check_output_dir(str(sr_run), SRModel)  # the same kind: a resume or a re-run may write there
    check_output_dir(str(files / "metric"), DISTS)


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Only UserError is a user mistake: a ValueError from deep inside a library (here: scipy, simulated) is a bug
    and must reach the developer as a traceback, not be dressed up as one "error:" line."""

    def broken(*args, **kwargs):
        raise ValueError("array must not contain infs or NaNs")  # as scipy would word an internal failure

    monkeypatch.setattr("asym.iqa.leaderboard.correlations", broken)
    args = evaluate.parse_args(["fr", "--metrics", "psnr", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="infs or NaNs"):
        run_cli(evaluate.main, args)


def test_any_garbage_torch_file_is_a_user_error(tmp_path):
    """Fuzzed: whatever the weights-only unpickler raises on random bytes (UnpicklingError, RuntimeError, IndexError,
    ...), a user gets one UserError naming the file, never a traceback. 300 seeded files, pickle and zip headers."""
    from asym.core.errors import UserError
    from asym.core.hub import read_tensor_file

    rng = np.random.default_rng(1)
    path = tmp_path / "fuzz.pth"
    for i in range(300):
        prefix = [b"", b"\x80\x02", b"PK\x03\x04"][i % 3]
        path.write_bytes(prefix + rng.integers(0, 256, int(rng.choice([16, 200, 4096])), dtype=np.uint8).tobytes())
        with pytest.raises(UserError, match="fuzz.pth cannot be read"):
            read_tensor_file(str(path), "weights")


def test_processes_that_accelerate_did_not_connect_are_refused(tmp_path, monkeypatch, capsys):
    """`accelerate launch --multi_gpu --num_processes 2` on a machine without GPUs starts two processes that each
    think they are the only one (both "main", both writing the same checkpoints). Seen from inside, WORLD_SIZE says 2
    while Accelerate runs 1: that run is refused before any work."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)  # with it, Accelerate would wait for a second process
    reset_accelerate_state()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_sr.main, train_sr.parse_args([*SR, "--output_dir", str(tmp_path / "out")]))
    assert exit_info.value.code == 2
    assert "2 processes were launched but Accelerate set up 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
