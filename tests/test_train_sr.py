"""train_sr.py end to end on the builtin photographs, tiny models, CPU."""

import json
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

import train_sr  # noqa: E402
from asym import SRModel  # noqa: E402
from asym.core.atomic import new_file_mode  # noqa: E402
from asym.core.training import interrupted_line, list_checkpoints, resume, run_cli  # noqa: E402
from asym.nets.discriminator import Discriminator  # noqa: E402

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
    # every file has the mode the umask gives (safetensors alone would write model.safetensors 0600)
    modes = {oct(path.stat().st_mode & 0o777) for path in Path(args.output_dir).rglob("*") if path.is_file()}
    assert modes == {oct(new_file_mode())}


def test_ctrl_c_ends_with_one_line_naming_the_last_checkpoint(tmp_path, capsys, monkeypatch, kill_after_checkpoint):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run_cli quiets it for the interrupt: put it back after
    args = train_sr.parse_args([*FAST, "--loss", "rec", "--max_train_steps", "4", "--checkpointing_steps", "2",
                                "--output_dir", str(tmp_path / "out")])  # fmt: skip
    kill_after_checkpoint(train_sr, 2, lambda: run_cli(train_sr.main, args))
    checkpoint = tmp_path / "out" / "checkpoints" / "checkpoint-2"
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"interrupted; the last checkpoint is {checkpoint} (step 2): to continue from it, run the same command with "
        "--resume_from_checkpoint latest")  # fmt: skip
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)  # what the interpreter does next: no traceback
    assert capsys.readouterr().err == ""
    args.resume_from_checkpoint = "latest"
    assert interrupted_line(args).endswith("to continue from it, run the same command again")

    def interrupted_at_once(args):
        raise KeyboardInterrupt

    fresh = train_sr.parse_args([*FAST, "--output_dir", str(tmp_path / "fresh")])
    with pytest.raises(KeyboardInterrupt):
        run_cli(interrupted_at_once, fresh)
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"interrupted before the first checkpoint (one every --checkpointing_steps {fresh.checkpointing_steps} steps): "
        "nothing to resume, the same command starts again from step 0")  # fmt: skip


def test_resume_latest_without_a_checkpoint_is_a_warning(tmp_path, caplog):
    args = train_sr.parse_args([*FAST, "--resume_from_checkpoint", "latest", "--output_dir", str(tmp_path)])
    with caplog.at_level(logging.INFO, logger="asym"):
        assert resume(None, args) == 0  # nothing to load: the accelerator is not asked
    [record] = [record for record in caplog.records if "no checkpoint" in record.getMessage()]
    assert record.levelno == logging.WARNING and record.getMessage().endswith("training from step 0")


def test_a_folder_is_decoded_once_into_the_cache_and_data_wait_is_logged(tmp_path, caplog):
    """The default run caches a folder's images (--cache_dir), logs perf/data_wait to tensorboard and says the run's
    waiting share in its final line."""
    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (tmp_path / "hr").mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (48, 56, 3), dtype=np.uint8)).save(
            tmp_path / "hr" / f"{i}.png"
        )
    extra = ["--loss", "rec", "--max_train_steps", "3", "--train_data_dir", str(tmp_path / "hr"), "--cache_dir",
             str(tmp_path / "cache"), "--report_to", "tensorboard"]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="asym"):
        args, history = run(tmp_path, *extra)
    assert len([f for _, _, files in os.walk(tmp_path / "cache") for f in files if f.endswith(".npy")]) == 3
    assert all(0 <= logs["perf/data_wait"] <= 1 for logs in history)
    assert any(r.getMessage().endswith("cache: 3 images decoded into it now, 0 found there already")
               for r in caplog.records)  # fmt: skip
    [final] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("final validation")]
    assert final.endswith("% of the training time spent waiting for data (perf/data_wait)")
    steps = []
    for events in (Path(args.output_dir) / "logs").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "perf/data_wait" in accumulator.Tags()["scalars"]:
            steps += [e.step for e in accumulator.Scalars("perf/data_wait")]
    assert steps == [1, 2, 3]


def test_saved_models_load_back_as_the_run_validated_them(tmp_path):
    """The saved generator, loaded back, scores on the held-out image exactly what the run recorded in its card's
    model-index (a save of other weights, e.g. the model before its last step, would not: the one step moves the
    score 0.05 dB away from bicubic's); the validation grid names its columns."""
    import numpy as np
    from huggingface_hub import ModelCard
    from PIL import Image

    from asym.metrics import psnr, ssim
    from asym.reporting.grids import LABEL_HEIGHT, label_strip
    from asym.sr.data import SRImageDataset, load_sr_images, split_train_validation

    args, _ = run(tmp_path, "--loss", "rec+adv", "--max_train_steps", "1", "--disc_type", "patch")
    generator = SRModel.from_pretrained(args.output_dir)
    config = json.loads((Path(args.output_dir) / "config.json").read_text())
    assert config["model"] == "tiny" and config["scale"] == 4 and config["card"]["--loss"] == "rec+adv"
    card = ModelCard.load(Path(args.output_dir) / "README.md")
    recorded = {r.metric_type: r.metric_value for r in card.data.eval_results}
    _, held_out = split_train_validation(load_sr_images("builtin"), 1, seed=0)  # --num_validation_images 1
    item = SRImageDataset(held_out, 4)[0]
    with torch.no_grad():
        sr = generator(item["lr"][None]).clamp(0, 1)
    hr = item["hr"][None]
    assert psnr(sr, hr, border=4, y_channel=True).item() == pytest.approx(recorded["psnr"], abs=1e-5)
    assert ssim(sr, hr, border=4, y_channel=True).item() == pytest.approx(recorded["ssim"], abs=1e-6)
    disc = Discriminator.from_pretrained(os.path.join(args.output_dir, "discriminator"))
    assert disc(torch.rand(1, 3, 32, 32)).dim() == 4  # patch logits
    disc_config = json.loads((Path(args.output_dir) / "discriminator" / "config.json").read_text())
    assert disc_config["card"]["steps trained"] == 1 and disc_config["card"]["loss"] == "rec+adv"
    # the validation grid: LR | bicubic | SR | HR, 256-pixel tiles, the columns named on a strip above them
    grid = np.asarray(Image.open(Path(args.output_dir) / "validation" / "final.png").convert("RGB"))
    assert grid.shape == (LABEL_HEIGHT + 258 + 2, 4 * 258 + 2, 3)
    strip = label_strip(["LR x4 (nearest)", "bicubic", "SR", "HR"], 256, 2)
    assert np.array_equal(grid[:LABEL_HEIGHT], (strip.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
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


def test_default_crop_follows_the_scale_and_x3_runs_bare(tmp_path):
    """`--scale 3` with no --crop_size: the default (64 LR pixels, 192 HR) divides by the scale."""
    assert [train_sr.parse_args(["--scale", s]).crop_size for s in ("2", "3", "4")] == [128, 192, 256]
    args = train_sr.parse_args(["--model", "tiny", "--scale", "3", "--loss", "rec", "--max_train_steps", "1",
                                "--report_to", "none", "--num_validation_images", "1",
                                "--output_dir", str(tmp_path / "x3")])  # fmt: skip
    assert len(train_sr.main(args)) == 1
    assert SRModel.from_pretrained(args.output_dir).scale == 3


def test_checkpoints_are_rotated_by_default(tmp_path):
    assert train_sr.parse_args([]).checkpoints_total_limit == 3
    args, _ = run(tmp_path, "--loss", "rec", "--max_train_steps", "5", "--checkpointing_steps", "1")
    assert [step for step, _ in list_checkpoints(args.output_dir)] == [3, 4, 5]
    args, _ = run(tmp_path, "--loss", "rec", "--max_train_steps", "3", "--checkpointing_steps", "1",
                  "--checkpoints_total_limit", "0", name="keep-all")  # fmt: skip
    assert [step for step, _ in list_checkpoints(args.output_dir)] == [1, 2, 3]


def test_perceptual_loss_uses_the_official_dists_weights_for_vgg16(tmp_path):
    args, _ = run(tmp_path, "--loss", "per", "--max_train_steps", "1")
    assert train_sr.parse_args([]).per_alpha_beta == "auto"
    assert "alpha/beta: the DISTS release" in (Path(args.output_dir) / "README.md").read_text()
    args, _ = run(tmp_path, "--loss", "per", "--max_train_steps", "1", "--per_alpha_beta", "uniform", name="uniform")
    assert "alpha/beta: uniform" in (Path(args.output_dir) / "README.md").read_text()


def test_gan_recipe_optimisers_and_discriminator_logs(tmp_path):
    """BasicSR's ESRGAN optimisers (D at lr 1e-4, Adam betas (0.9, 0.99)) and D's accuracy / logit gap in the logs."""
    args, history = run(tmp_path, "--loss", "rec+adv", "--max_train_steps", "2", "--checkpointing_steps", "2")
    checkpoint = Path(list_checkpoints(args.output_dir)[-1][1])
    groups = [torch.load(checkpoint / name, weights_only=True)["param_groups"][0]
              for name in ("optimizer.bin", "optimizer_1.bin")]  # fmt: skip
    assert [(g["lr"], tuple(g["betas"])) for g in groups] == [(2e-4, (0.9, 0.99)), (1e-4, (0.9, 0.99))]
    for logs in history:
        assert 0 <= logs["disc/acc_real"] <= 1 and 0 <= logs["disc/acc_fake"] <= 1
        assert torch.isfinite(torch.tensor(logs["disc/logit_gap"]))


def _held_out_image(scale: int = 4):
    """The one held-out builtin image of a ``--num_validation_images 1`` run, mod-cropped, and its bicubic LR."""
    import torch.nn.functional as F

    from asym.sr.data import load_sr_images, split_train_validation

    _, val = split_train_validation(load_sr_images("builtin"), 1, seed=0)
    hr = torch.from_numpy(val[0]).permute(2, 0, 1).float() / 255
    hr = hr[:, : hr.shape[1] // scale * scale, : hr.shape[2] // scale * scale]
    return hr, F.interpolate(hr[None], scale_factor=1 / scale, mode="bicubic", antialias=True).clamp(0, 1)


def _y_psnr(sr, hr, border=4):
    """Y-PSNR from scratch: BT.601 Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255, ``border`` pixels cropped."""

    def y(t):
        return (16 + 65.481 * t[0] + 128.553 * t[1] + 24.966 * t[2]) / 255

    mse = (y(sr) - y(hr))[border:-border, border:-border].double().square().mean()
    return (10 * torch.log10(1 / mse)).item()


def test_validation_is_on_whole_images_in_y_and_rgb_next_to_bicubic(tmp_path):
    """The card's PSNR, and bicubic's beside it, equal ones computed here from scratch: the whole held-out image,
    mod-cropped, bicubic LR, Y-PSNR with scale border pixels cropped."""
    import torch.nn.functional as F

    args, _ = run(tmp_path, "--loss", "rec", "--max_train_steps", "1", "--scale", "4")
    config = json.loads((Path(args.output_dir) / "config.json").read_text())
    validation = config["card"]["validation"]
    assert "Y (BT.601)" in validation and "1 whole images" in validation
    hr, lr = _held_out_image()
    with torch.no_grad():
        sr = SRModel.from_pretrained(args.output_dir)(lr).clamp(0, 1)[0]
    bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)[0]
    reported = float(validation.split("PSNR ")[1].split(" dB")[0])
    assert reported == pytest.approx(_y_psnr(sr, hr), abs=0.006)  # the card rounds to 0.01 dB
    reported_bicubic = float(validation.split("(bicubic: ")[1].split(" dB")[0])
    assert reported_bicubic == pytest.approx(_y_psnr(bicubic, hr), abs=0.006)
    # the Hub metadata: an image-to-image model whose model-index holds the same validation PSNR, unrounded
    from huggingface_hub import ModelCard

    card = ModelCard.load(Path(args.output_dir) / "README.md")
    assert (card.data.pipeline_tag, card.data.library_name, card.data.license) == ("image-to-image", "asym", "unknown")
    assert card.data.datasets is None and card.data.base_model is None  # builtin and no --init_generator
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"psnr", "ssim"} and results["psnr"].task_name == "Super-resolution x4"
    assert results["psnr"].dataset_split == "validation" and results["psnr"].dataset_type == "builtin"
    assert results["psnr"].metric_value == pytest.approx(_y_psnr(sr, hr), abs=1e-4)
    assert 0 < results["ssim"].metric_value < 1


def test_tiny_learns_to_beat_bicubic_in_150_l1_steps(tmp_path):
    """The CPU demo's promise: ``tiny`` starts as bicubic up-sampling and 150 ``--loss rec`` steps (the README's crop
    and batch, the default learning rate) improve on it on the held-out image, measured here from scratch."""
    import torch.nn.functional as F

    args, _ = run(tmp_path, "--loss", "rec", "--max_train_steps", "150", "--crop_size", "64", "--train_batch_size", "4")
    hr, lr = _held_out_image()
    with torch.no_grad():
        sr = SRModel.from_pretrained(args.output_dir)(lr).clamp(0, 1)[0]
    bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)[0]
    gain = _y_psnr(sr, hr) - _y_psnr(bicubic, hr)
    # 0.10 dB measured (100 steps gave 0.03, 200 0.12: the data order decides the early gains); an untrained tiny
    # scores exactly 0 and a noisy one far below, rounding across CPUs ~1e-4 dB
    assert gain > 0.05, f"tiny after 150 L1 steps: {gain:+.3f} dB over bicubic"


def test_ema_weights_are_what_is_saved(tmp_path):
    """The saved generator is the EMA of the online weights (read from each step's checkpoint), computed here with
    diffusers' documented schedule: decay_k = min(ema_decay, (1 + t) / (10 + t)) with t = k - 1, and 0 at step 1."""
    from safetensors.torch import load_file

    args, _ = run(tmp_path, "--loss", "rec", "--max_train_steps", "3", "--checkpointing_steps", "1",
                  "--checkpoints_total_limit", "0", "--use_ema", "--ema_decay", "0.2",
                  "--learning_rate", "1e-2")  # fmt: skip
    online = [load_file(os.path.join(path, "model.safetensors")) for _, path in list_checkpoints(args.output_dir)]
    expected = {k: v.clone() for k, v in online[0].items()}  # step 1: decay 0
    for k in (2, 3):
        decay = min(0.2, (1 + (k - 1)) / (10 + (k - 1)))  # 2/11 at step 2, then capped at 0.2
        expected = {n: decay * expected[n] + (1 - decay) * online[k - 1][n] for n in expected}
    saved = _weights(args.output_dir)
    assert saved.keys() == expected.keys()
    parameters = {name for name, _ in SRModel("tiny", 4).named_parameters()}  # buffers are not averaged
    assert parameters and parameters <= set(saved)
    moved = 0
    for name in saved:
        want = expected[name] if name in parameters else online[-1][name]
        torch.testing.assert_close(saved[name], want, atol=1e-6, rtol=1e-5, msg=name)
        moved += not torch.allclose(saved[name], online[-1][name])
    assert moved > 0  # the EMA differs from the last online weights: the test can tell them apart


def test_gradient_clipping_clips_both_networks(tmp_path, monkeypatch):
    """Every Adam step (generator and discriminator) sees a gradient norm at most --max_grad_norm."""
    norms = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    # tiny's zero-initialised last layer makes its first gradients small (~4e-4 here): a bound well below them
    run(tmp_path, "--loss", "rec+adv", "--max_train_steps", "2", "--max_grad_norm", "1e-5", name="clipped")
    assert len(norms) == 4 and max(norms) <= 1e-5 * (1 + 1e-5)  # clip_grad_norm_ scales to norm / (norm + 1e-6)
    norms.clear()
    run(tmp_path, "--loss", "rec+adv", "--max_train_steps", "2", name="free")
    assert min(norms) > 1e-5  # without clipping the same steps are larger: the check above can fail


@pytest.mark.parametrize("loss", ["mse", "feat", "texture", "mse+feat+texture"])
def test_robust_study_terms_train_enhancenet(tmp_path, loss):
    """The study's E / P / T terms (one VGG-19 for P and T, normalised maps) train EnhanceNet and are recorded."""
    args, history = run(tmp_path, "--model", "enhancenet", "--loss", loss, "--feat_weights", "random",
                        "--max_train_steps", "2")  # fmt: skip
    assert len(history) == 2 and set(history[-1]) >= {f"loss/{t}" for t in loss.split("+")}
    assert all(torch.isfinite(torch.tensor(h[f"loss/{t}"])) for h in history for t in loss.split("+"))
    card = SRModel.from_pretrained(args.output_dir).card
    assert card["--loss"] == loss
    assert card.get("--lambda_mse") == (1.0 if "mse" in loss else None)
    if loss != "mse":
        assert card["--feat_weights"] == "random" and "feature maps normalised" in card["feature loss"]
        assert card["feature loss"].startswith("+".join(t for t in ("feat", "texture") if t in loss) + " on vgg19")
    else:
        assert "--feat_weights" not in card


def test_feat_weights_file_is_the_network_of_p_and_t(tmp_path):
    """--feat_weights FILE: the loss network holds exactly those tensors (normalisation off to compare them)."""
    from safetensors.torch import save_file

    from asym import FeatureTextureLoss, create_backbone

    torch.manual_seed(5)
    robust = create_backbone("vgg19", weights="random")
    path = tmp_path / "robust-vgg19.safetensors"
    save_file({k: v.contiguous() for k, v in robust.model.state_dict().items()}, str(path))
    seen = {}
    original = FeatureTextureLoss.__init__

    def spy(self, *a, **k):
        original(self, *a, **k)
        seen["state"] = {n: t.clone() for n, t in self.backbone.model.state_dict().items()}

    import unittest.mock

    with unittest.mock.patch.object(FeatureTextureLoss, "__init__", spy):
        args, _ = run(tmp_path, "--model", "enhancenet", "--loss", "mse+feat", "--feat_weights", str(path),
                      "--no_feat_normalisation", "--max_train_steps", "1")  # fmt: skip
    assert all(torch.equal(seen["state"][k], v) for k, v in robust.model.state_dict().items())
    card = SRModel.from_pretrained(args.output_dir).card
    assert card["--feat_weights"] == str(path) and "not normalised" in card["feature loss"]


def test_mse_training_brings_enhancenet_closer_to_hr(tmp_path):
    """40 mse steps from a saved random EnhanceNet lower its MSE on fixed validation crops (per-batch losses of
    random crops are too noisy to compare)."""
    from asym.sr.data import SRPairDataset, load_sr_images

    torch.manual_seed(3)
    start = SRModel("enhancenet", 4)
    start.save_pretrained(tmp_path / "start")
    args, _ = run(tmp_path, "--model", "enhancenet", "--loss", "mse", "--init_generator", str(tmp_path / "start"),
                  "--max_train_steps", "40", "--learning_rate", "1e-3")  # fmt: skip
    trained = SRModel.from_pretrained(args.output_dir)
    crops = SRPairDataset(load_sr_images("builtin"), 4, 64, train=False)
    lr = torch.stack([crops[i]["lr"] for i in range(len(crops))])
    hr = torch.stack([crops[i]["hr"] for i in range(len(crops))])
    with torch.no_grad():
        before, after = (torch.nn.functional.mse_loss(m(lr), hr).item() for m in (start, trained))
    assert after < 0.9 * before  # measured: 0.00462 -> 0.00389 (-16%); bicubic's residual error stays


def test_a_new_loss_term_is_one_table_entry(tmp_path, monkeypatch):
    """An entry added to LOSS_TERMS is a --loss term with its --lambda_ flag, computed and logged each step and recorded
    on the card; nothing else is touched. The feat and texture terms read one forward of their shared network."""
    from asym.sr import losses

    def total_variation(loss, x):
        return (x.sr[..., 1:, :] - x.sr[..., :-1, :]).abs().mean() + (x.sr[..., 1:] - x.sr[..., :-1]).abs().mean()

    tv = losses.LossTerm("total variation", 0.1, "weight of tv", total_variation)
    monkeypatch.setitem(losses.LOSS_TERMS, "tv", tv)
    args, history = run(tmp_path, "--loss", "rec+tv", "--lambda_tv", "0.5", "--max_train_steps", "2")
    assert args.terms == ["rec", "tv"] and all(h["loss/tv"] > 0 for h in history)
    assert SRModel.from_pretrained(args.output_dir).card["--lambda_tv"] == 0.5

    from types import SimpleNamespace

    flags = SimpleNamespace(terms=["feat", "texture"], lambda_feat=1.0, lambda_texture=1.0, lambda_kl=0.0,
                            feat_backbone="vgg16", feat_weights="random", no_feat_normalisation=True,
                            **{f"lambda_{t}": 1.0 for t in ("rec", "per", "mse", "adv", "tv")})  # fmt: skip
    loss = losses.GeneratorLoss(flags, train_images=None)
    forward = loss.features.forward
    calls = []
    monkeypatch.setattr(loss.features, "forward", lambda *a: calls.append(1) or forward(*a))
    sr, hr = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    values = loss(sr, hr, generator=None)
    assert list(values) == ["feat", "texture"] and len(calls) == 1
    assert torch.allclose(loss.total(values), sum(v.mean() for v in forward(sr, hr).values()))


def _losses(history):
    return [{k: v for k, v in step.items() if k.startswith("loss/")} for step in history]


def test_channels_last_trains_as_contiguous(tmp_path, monkeypatch):
    """--channels_last puts the generator, the loss networks and the discriminator in channels-last memory format;
    the run's losses are the contiguous run's within float32 rounding."""
    formats = []

    def spy(args, *modules):
        real(args, *modules)
        formats.extend((type(m).__name__, p.is_contiguous(memory_format=torch.channels_last)) for m in modules
                       for p in m.parameters() if p.dim() == 4 and p.shape[-1] > 1)  # 1x1: both formats  # fmt: skip

    real = train_sr.apply_channels_last
    monkeypatch.setattr(train_sr, "apply_channels_last", spy)
    common = ["--loss", "rec+per+adv", "--max_train_steps", "3"]
    _, contiguous = run(tmp_path, *common, name="contiguous")
    assert not any(last for name, last in formats if name == "SRModel")  # (asym's backbones are channels-last anyway)
    formats.clear()
    _, channels_last = run(tmp_path, *common, "--channels_last", name="channels_last")
    assert {name for name, _ in formats} == {"SRModel", "DISTS", "Discriminator"} and all(last for _, last in formats)
    for a, b in zip(_losses(contiguous), _losses(channels_last), strict=True):
        assert a.keys() == b.keys() and all(b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6) for k in a)


@pytest.mark.slow
def test_compiled_run_equals_eager_and_resumes_exactly(tmp_path, kill_after_checkpoint):
    """--compile (the generator and discriminator through Accelerate's dynamo plugin, the loss networks by
    GeneratorLoss.compile): the eager run's losses within float32 rounding; killed after its checkpoint and resumed, it
    ends with the uninterrupted compiled run's weights exactly. Slow: inductor compiles for about a minute on CPU."""
    common = ["--loss", "rec+per+adv", "--max_train_steps", "4", "--checkpointing_steps", "2"]
    _, eager = run(tmp_path, *common, name="eager")
    _, compiled = run(tmp_path, *common, "--compile", name="compiled")
    for a, b in zip(_losses(eager), _losses(compiled), strict=True):
        assert a.keys() == b.keys() and all(b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6) for k in a)
    args = train_sr.parse_args([*FAST, *common, "--compile", "--output_dir", str(tmp_path / "split")])
    kill_after_checkpoint(train_sr, 2, lambda: train_sr.main(args))
    _, resumed = run(tmp_path, *common, "--compile", "--resume_from_checkpoint", "latest", name="split")
    assert _losses(resumed) == _losses(compiled)[2:]
    for sub in ("", "discriminator"):
        a, b = _weights(tmp_path / "compiled" / sub), _weights(tmp_path / "split" / sub)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), sub
    card = SRModel.from_pretrained(tmp_path / "compiled").card  # the plain module was saved, with its card
    assert card["--loss"] == "rec+per+adv"


def test_attention_sdpa_trains_swinir_as_eager_and_saves_the_plain_layout(tmp_path, monkeypatch):
    """train_sr.py --attention sdpa on a SwinIR: the fused attention runs, the eager run's losses within float32
    rounding, and the saved model is spandrel's SwinIR with its own attention class (how, not what, is computed)."""
    from asym.sr import window_attention

    calls = []
    fused = window_attention.F.scaled_dot_product_attention
    monkeypatch.setattr(
        window_attention.F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or fused(*a, **k)
    )
    common = ["--model", "swinir-light", "--loss", "rec+per", "--max_train_steps", "2", "--validation_tile", "0"]
    _, eager = run(tmp_path, *common, name="eager")
    assert not calls
    args, sdpa = run(tmp_path, *common, "--attention", "sdpa", name="sdpa")
    assert len(calls) >= 2 * 24  # every block of both steps (swinir-light: 4 groups of 6)
    for a, b in zip(_losses(eager), _losses(sdpa), strict=True):
        assert a.keys() == b.keys() and all(b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6) for k in a)
    saved = SRModel.from_pretrained(args.output_dir)
    assert {type(m).__name__ for m in saved.modules() if "Attention" in type(m).__name__} == {"WindowAttention"}
