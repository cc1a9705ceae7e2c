"""train_sr.py end to end on the builtin photographs, tiny models, CPU."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train_sr  # noqa: E402
from asym import SRModel  # noqa: E402
from asym.adversarial import Discriminator  # noqa: E402
from asym.training import list_checkpoints, run_cli  # noqa: E402

FAST = ["--model", "tiny", "--crop_size", "32", "--train_batch_size", "2", "--weights", "random",
        "--per_backbone", "vgg16", "--disc_backbone", "vgg16", "--validation_steps", "1000", "--report_to", "none",
        "--num_validation_images", "1"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def run(tmp_path, *extra, name="out"):
    args = train_sr.parse_args([*FAST, "--output_dir", str(tmp_path / name), *extra])
    return args, train_sr.main(args)


@pytest.mark.parametrize(
    "loss, disc_type",
    [("per", "vanilla"), ("rec+per", "vanilla"), ("per+adv", "vanilla"), ("per+adv", "patch"),
     ("rec+per+adv", "vanilla"), ("rec+per+adv", "patch")],
)  # fmt: skip
def test_every_paper_setting_trains_and_saves(tmp_path, loss, disc_type):
    args, history = run(tmp_path, "--loss", loss, "--disc_type", disc_type, "--max_train_steps", "2")
    assert len(history) == 2
    assert set(history[-1]) >= {f"loss/{t}" for t in loss.split("+")}
    assert ("loss/disc" in history[-1]) == ("adv" in loss)
    out = Path(args.output_dir)
    assert {"model.safetensors", "config.json", "README.md"} <= {p.name for p in out.iterdir()}
    assert (out / "discriminator" / "model.safetensors").exists() == ("adv" in loss)
    card = (out / "README.md").read_text()
    assert f"--loss**: {loss}" in card and "--lambda_per" in card and "PSNR" in card


def test_l1_pretraining_loss_falls(tmp_path):
    _, history = run(tmp_path, "--loss", "rec", "--max_train_steps", "50", "--learning_rate", "2e-3")
    losses = [h["loss/rec"] for h in history]
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(os.path.join(folder, "model.safetensors"))


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    common = ["--loss", "rec+per+adv", "--checkpointing_steps", "3", "--disc_backbone", "timm:resnet18"]
    run(tmp_path, *common, "--max_train_steps", "6", name="straight")
    run(tmp_path, *common, "--max_train_steps", "3", name="split")
    run(tmp_path, *common, "--max_train_steps", "6", "--resume_from_checkpoint", "latest", name="split")
    for sub in ("", "discriminator"):
        a, b = _weights(tmp_path / "straight" / sub), _weights(tmp_path / "split" / sub)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=f"{sub}/{key}")


def test_checkpoint_rotation_and_interrupted_save(tmp_path, monkeypatch):
    args, _ = run(tmp_path, "--loss", "rec", "--max_train_steps", "4", "--checkpointing_steps", "1",
                  "--checkpoints_total_limit", "2")  # fmt: skip
    assert [step for step, _ in list_checkpoints(args.output_dir)] == [3, 4]
    # A save killed half-way leaves only a temporary folder: `latest` is still checkpoint-4.
    partial = Path(args.output_dir) / "checkpoints" / ".checkpoint-5.tmp"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"truncated")
    assert list_checkpoints(args.output_dir)[-1][0] == 4
    _, history = run(tmp_path, "--loss", "rec", "--max_train_steps", "5", "--resume_from_checkpoint", "latest")
    assert len(history) == 1  # resumed at step 4, trained step 5 only


def test_saved_models_load_back_identically(tmp_path):
    args, _ = run(tmp_path, "--loss", "rec+adv", "--max_train_steps", "1", "--disc_type", "patch")
    generator = SRModel.from_pretrained(args.output_dir)
    config = json.loads((Path(args.output_dir) / "config.json").read_text())
    assert config["model"] == "tiny" and config["scale"] == 4 and config["card"]["--loss"] == "rec+adv"
    lr = torch.rand(1, 3, 8, 8)
    again = SRModel.from_pretrained(args.output_dir)
    torch.testing.assert_close(generator(lr), again(lr), atol=0, rtol=0)
    disc = Discriminator.from_pretrained(os.path.join(args.output_dir, "discriminator"))
    assert disc(torch.rand(1, 3, 32, 32)).dim() == 4  # patch logits
    # a saved generator is a valid --init_generator for stage 2
    _, history = run(tmp_path, "--loss", "per", "--max_train_steps", "1", "--init_generator", args.output_dir,
                     name="stage2")  # fmt: skip
    assert len(history) == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--loss", "rec+perc"], "unknown term"),
        (["--loss", "adv", "--disc_backbone", "vgg17"], "unknown backbone 'vgg17'"),
        (["--train_data_dir", "/nonexistent/DIV2K"], "does not exist"),
        (["--crop_size", "30"], "not divisible by --scale 4"),
        (["--loss", "rec", "--max_train_steps", "1", "--push_to_hub"], "kept in"),
    ],
)
def test_user_errors_are_one_clear_line(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_sr.main, train_sr.parse_args([*FAST, "--output_dir", str(tmp_path / "o"), *extra]))
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    if "--push_to_hub" in extra:  # the local model survives a failed upload
        assert (tmp_path / "o" / "model.safetensors").exists()


def test_saved_metric_as_perceptual_loss_and_accelerate_options(tmp_path):
    from asym import DISTS

    DISTS("resnet50", weights="random", alpha_beta="random").save_pretrained(tmp_path / "metric")
    args, history = run(
        tmp_path, "--loss", "rec+per", "--per_metric", str(tmp_path / "metric"), "--max_train_steps", "4",
        "--mixed_precision", "bf16", "--use_ema", "--gradient_accumulation_steps", "2", "--max_grad_norm", "1",
        "--lr_milestones", "2,3",
    )  # fmt: skip
    assert len(history) == 4 and all(torch.isfinite(torch.tensor(h["loss/per"])) for h in history)
    assert [h["lr"] for h in history] == pytest.approx([2e-4, 1e-4, 5e-5, 5e-5])
    assert "DISTS-style on resnet50" in (Path(args.output_dir) / "README.md").read_text()
