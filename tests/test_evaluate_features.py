"""evaluate.py features: per-stage feature maps of a saved model's or a registry backbone (Fig. 14)."""

from pathlib import Path

import pytest
import torch
from conftest import run_evaluate
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

from asym import Discriminator, IQAModel  # noqa: E402
from asym.core.errors import UserError  # noqa: E402
from asym.core.images import load_image  # noqa: E402


def run(argv):
    return run_evaluate(argv)


def _independent_top(backbone, image, k):
    backbone.eval()
    with torch.no_grad():
        feats = backbone(image)[1:]
    return [torch.topk(f[0].square().mean((1, 2)), k).indices.tolist() for f in feats]


def test_features_of_a_discriminator_run_and_an_iqa_model(random_iqa_models, tmp_path, capsys):
    torch.manual_seed(1)
    Discriminator("vgg16", weights="random").save_pretrained(tmp_path / "sr_run" / "discriminator")
    out = tmp_path / "out"
    image = load_image("astronaut", 64)
    for model, name in ((tmp_path / "sr_run", "sr_run-discriminator"), (random_iqa_models / "iqa", "iqa")):
        stages = run(["features", "--model", str(model), "--image", "astronaut", "--size", "64", "--top_k", "3",
                      "--output_dir", str(out), "--device", "cpu"])  # fmt: skip
        if name.endswith("discriminator"):
            backbone = Discriminator.from_pretrained(model / "discriminator").backbone
        else:
            backbone = IQAModel.from_pretrained(model).backbone
        assert len(stages) == len(backbone.channels) - 1 == 5
        assert [s["channels"] for s in stages] == backbone.channels[1:]
        assert [s["top"] for s in stages] == _independent_top(backbone, image, 3)
        assert all(s["maps"].shape[0] == 3 and s["mean"].shape == s["size"] for s in stages)
        with Image.open(out / f"features-{name}-astronaut.png") as png:
            png.verify()
    assert "5 stages" in capsys.readouterr().out


def test_features_of_a_registry_backbone_one_row_per_stage(tmp_path):
    out = tmp_path / "out"
    heights = {}
    for backbone in ("vgg16", "convnext"):
        stages = run(["features", "--backbone", backbone, "--weights", "random", "--size", "64", "--top_k", "2",
                      "--output_dir", str(out), "--device", "cpu"])  # fmt: skip
        with Image.open(out / f"features-{backbone}-random-astronaut.png") as png:
            heights[backbone] = (len(stages), png.size[1])
    assert heights["vgg16"][0] == 5 and heights["convnext"][0] == 4
    assert heights["vgg16"][1] > heights["convnext"][1]  # one row per stage


def test_features_mistakes(random_iqa_models, tmp_path):
    out = tmp_path / "out"
    from asym import SRModel

    SRModel("tiny", scale=2).save_pretrained(tmp_path / "sr_only")
    cases = [
        (["--model", str(tmp_path / "sr_only")], "SRModel, which has no feature backbone"),
        (["--model", str(tmp_path / "nothing")], "neither a folder"),
        (["--model", "owner/discriminator"], "could not be downloaded"),  # tests run offline (conftest)
        (["--model", str(random_iqa_models / "iqa"), "--weights", "random"], "--weights goes with --backbone"),
        (["--backbone", "vgg99"], "unknown backbone"),
        (["--backbone", "vgg16", "--weights", "random", "--image", "nope"], "neither a file nor a builtin"),
    ]
    for extra, match in cases:
        with pytest.raises(UserError, match=match):
            run(["features", *extra, "--size", "64", "--output_dir", str(out), "--device", "cpu"])
    assert not out.exists()
