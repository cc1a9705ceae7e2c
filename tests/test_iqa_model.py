"""asym.IQAModel: shapes, the FR design's fixed point, the score scale, parameter groups, and the Hub round trip."""

import json

import pytest
import torch

from asym import IQAModel
from asym.core.errors import UserError


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 3, 48, 48, generator=g), torch.rand(3, 3, 48, 48, generator=g)


def test_nr_scores_one_value_per_image_on_the_training_scale(images):
    x, _ = images
    torch.manual_seed(0)
    model = IQAModel("vgg16", "nr", weights="random", score_mean=60.0, score_std=12.0).eval()
    with torch.no_grad():
        scores, z = model(x), model.standardised(x)
    assert scores.shape == (3,)
    torch.testing.assert_close(scores, z * 12.0 + 60.0)
    # pooled statistics: each channel's mean and (population) standard deviation over space, input included
    with torch.no_grad():
        feats = model.backbone(x)
        expected = torch.cat([torch.cat([f.mean((2, 3)), f.std((2, 3), unbiased=False)], 1) for f in feats], 1)
        torch.testing.assert_close(model.pooled_features(x), expected, rtol=1e-4, atol=1e-5)


def test_fr_gives_every_identical_pair_the_same_score(images):
    """The FR model sees only feature differences: x vs x and y vs y are the same (zero) input to the head."""
    x, y = images
    model = IQAModel("vgg16", "fr", weights="random").eval()
    with torch.no_grad():
        same = torch.cat([model(x, x), model(y, y)])
        other = model(x, y)
    torch.testing.assert_close(same, same[:1].expand(6), rtol=0, atol=1e-6)
    assert (other - same[:3]).abs().min() > 1e-6  # a distorted pair differs from the fixed point


def test_mode_mistakes_are_errors(images):
    x, y = images
    with pytest.raises(ValueError, match="unknown mode"):
        IQAModel("vgg16", "xx", weights="random")
    with pytest.raises(ValueError, match="needs the reference"):
        IQAModel("vgg16", "fr", weights="random")(x)
    with pytest.raises(ValueError, match="single images"):
        IQAModel("vgg16", "nr", weights="random")(x, y)
    with pytest.raises(UserError, match="unknown backbone"):
        IQAModel("vgg17", "nr", weights="random")


def test_parameter_groups_split_backbone_and_head_without_overlap():
    model = IQAModel("resnet50", "nr", weights="random")
    groups = model.parameter_groups(1e-5, 1e-3)
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert not ids[0] & ids[1]
    assert ids[0] | ids[1] == {id(p) for p in model.parameters()}
    assert [g["lr"] for g in groups] == [1e-5, 1e-3]


@pytest.mark.parametrize("mode", ["nr", "fr"])
def test_round_trip_gives_identical_scores(tmp_path, images, mode):
    x, y = images
    torch.manual_seed(1)
    model = IQAModel("resnet50", mode, weights="random", score_mean=3.0, score_std=0.5)
    with torch.no_grad():  # change the BatchNorm statistics too: they must be stored
        model.train()(x, y) if mode == "fr" else model.train()(x)
    model.eval()
    model.card = {"test": "SRCC 0.5"}
    model.save_pretrained(tmp_path / "m")
    again = IQAModel.from_pretrained(tmp_path / "m")
    args = (x, y) if mode == "fr" else (x,)
    with torch.no_grad():
        assert torch.equal(model(*args), again(*args))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["mode"] == mode and config["score_mean"] == 3.0 and config["asym_class"] == "IQAModel"
    assert "SRCC 0.5" in (tmp_path / "m" / "README.md").read_text()
