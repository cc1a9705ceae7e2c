"""train_sr.py with a diffusers AutoencoderKL generator at --scale 1 (the asymmetry paper's App. F, Fig. 16)."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

import train_sr  # noqa: E402
from asym import SRModel, SRPairDataset, load_sr_images  # noqa: E402
from asym.core.errors import UserError  # noqa: E402
from asym.core.training import run_cli  # noqa: E402
from asym.sr.models import load_generator  # noqa: E402

FAST = ["--model", "autoencoder-kl-tiny", "--scale", "1", "--crop_size", "32", "--train_batch_size", "2",
        "--weights", "random", "--per_backbone", "vgg16", "--disc_backbone", "vgg16", "--validation_steps", "1000",
        "--report_to", "none", "--num_validation_images", "1"]  # fmt: skip

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def run(tmp_path, *extra, name="out"):
    args = train_sr.parse_args([*FAST, "--output_dir", str(tmp_path / name), *extra])
    return args, train_sr.main(args)


def reconstruct(model, x):
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("loss", ["rec", "per+adv", "rec+per+adv"])  # each term with and without the others
def test_every_loss_setting_trains_the_autoencoder(tmp_path, loss):
    args, history = run(tmp_path, "--loss", loss, "--max_train_steps", "2")
    assert len(history) == 2 and set(history[-1]) >= {f"loss/{t}" for t in loss.split("+")} | {"loss/kl"}
    card = SRModel.from_pretrained(args.output_dir).card
    assert card["--loss"] == loss and card["--lambda_kl"] == 1e-6  # latent diffusion's kl_weight by default
    assert (Path(args.output_dir) / "validation" / "final.png").exists()


def test_saved_autoencoder_reloads_identically_through_both_loaders(tmp_path):
    from diffusers import AutoencoderKL

    args, _ = run(tmp_path, "--loss", "rec+per", "--max_train_steps", "2")
    model = SRModel.from_pretrained(args.output_dir)
    x = torch.rand(2, 3, 32, 48)
    expected = reconstruct(model, x)
    vae = AutoencoderKL.from_pretrained(Path(args.output_dir) / "vae")
    with torch.no_grad():  # diffusers' own calls, in its [-1, 1] convention: the posterior's mode, decoded
        theirs = (vae.decode(vae.encode(2 * x - 1).latent_dist.mode()).sample + 1) / 2
    assert torch.equal(theirs, expected)
    # and back: the diffusers folder as --init_generator gives the same model
    assert torch.equal(reconstruct(load_generator(str(Path(args.output_dir) / "vae"), "autoencoder-kl-tiny", 1), x),
                       expected)  # fmt: skip


@pytest.mark.slow  # a long end-to-end chain: the slow lane, which CI runs too
def test_resumed_autoencoder_run_equals_uninterrupted_run(tmp_path):
    """Posterior samples, the KL term and the discriminator included: 2 + resume + 2 == 4 steps."""
    from safetensors.torch import load_file

    common = ["--loss", "rec+per+adv", "--checkpointing_steps", "2"]
    run(tmp_path, *common, "--max_train_steps", "4", name="straight")
    run(tmp_path, *common, "--max_train_steps", "2", name="split")
    run(tmp_path, *common, "--max_train_steps", "4", "--resume_from_checkpoint", "latest", name="split")
    for sub in ("", "discriminator"):
        a = load_file(str(tmp_path / "straight" / sub / "model.safetensors"))
        b = load_file(str(tmp_path / "split" / sub / "model.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=f"{sub}/{key}")


def test_init_from_a_diffusers_vae_keeps_its_layout(tmp_path):
    """--init_generator takes a diffusers AutoencoderKL folder (here with another layout than the named one) or a
    pipeline folder holding vae/; the trained model reloads with that layout."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
                        block_out_channels=[8, 16, 16], norm_num_groups=8, latent_channels=4)  # fmt: skip
    vae.save_pretrained(tmp_path / "pipeline" / "vae")
    start = load_generator(str(tmp_path / "pipeline"), "autoencoder-kl-tiny", 1)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        expected = (vae.decode(vae.encode(2 * x - 1).latent_dist.mode()).sample + 1) / 2
    assert torch.equal(reconstruct(start, x), expected)
    args, _ = run(tmp_path, "--loss", "rec", "--init_generator", str(tmp_path / "pipeline"), "--max_train_steps", "1")
    trained = SRModel.from_pretrained(args.output_dir)
    assert list(trained.net.vae.config.block_out_channels) == [8, 16, 16]
    # stage 2 from our own output (loaded in eval mode) trains on posterior samples with the KL term
    _, history = run(tmp_path, "--loss", "rec+per", "--init_generator", args.output_dir, "--max_train_steps", "1",
                     name="stage2")  # fmt: skip
    assert history[-1]["loss/kl"] > 0


def test_scale_one_input_is_the_hr_crop_and_misuse_is_refused(tmp_path, capsys):
    crops = SRPairDataset(load_sr_images("builtin"), 1, 32, train=False)
    assert torch.equal(crops[0]["lr"], crops[0]["hr"])  # no down-sampling at scale 1
    with pytest.raises(UserError, match="pass --scale 1"):
        SRModel("autoencoder-kl-tiny", 4)
    with pytest.raises(UserError, match="x1 is for the autoencoders"):
        SRModel("tiny", 1)
    for argv, message in ((["--model", "tiny", "--lambda_kl", "1e-6"], "--lambda_kl is the VAE's KL term"),):
        with pytest.raises(SystemExit):
            train_sr.parse_args([*argv, "--output_dir", str(tmp_path / "x")])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        run_cli(train_sr.main, train_sr.parse_args([*FAST, "--scale", "4", "--output_dir", str(tmp_path / "y")]))
    assert info.value.code == 2 and "pass --scale 1" in capsys.readouterr().err
    args, history = run(tmp_path, "--loss", "rec", "--lambda_kl", "0", "--max_train_steps", "1", name="nokl")
    assert "loss/kl" not in history[-1] and "--lambda_kl" not in SRModel.from_pretrained(args.output_dir).card


def test_grid_shows_input_models_and_reference(tmp_path, capsys):
    """evaluate.py grid: a row per image, input | each model | reference, each model's output as the model gives it."""
    import numpy as np
    from PIL import Image

    import evaluate

    torch.manual_seed(0)
    SRModel("autoencoder-kl-tiny", 1).save_pretrained(tmp_path / "ae")
    argv = ["grid", "--models", f"{tmp_path / 'ae'},bicubic", "--scale", "1", "--size", "32", "--images",
            "astronaut,coffee,chelsea", "--output_dir", str(tmp_path / "g")]  # fmt: skip
    args = evaluate.parse_args(argv)
    path = evaluate.main(args)
    from asym.core.images import load_image
    from asym.reporting.grids import LABEL_HEIGHT, label_strip

    image = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"))).permute(2, 0, 1) / 255
    assert image.shape == (3, LABEL_HEIGHT + 3 * 34 + 2, 4 * 34 + 2)  # labels; 3 rows, 4 columns of 32 px, padding 2
    assert torch.equal(image[:, :LABEL_HEIGHT], label_strip(["input", "ae", "bicubic", "reference"], 32, 2))
    expected = reconstruct(SRModel.from_pretrained(tmp_path / "ae"), load_image("coffee", 32)).clamp(0, 1)
    top = LABEL_HEIGHT + 34 + 2
    cell = image[:, top : top + 32, 34 + 2 : 34 + 34]  # row 2 (coffee), column 2 (the autoencoder)
    assert (cell - expected[0]).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit PNG rounding
    assert "columns: input | ae | bicubic | reference" in capsys.readouterr().out
