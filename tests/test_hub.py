"""Hub persistence: a saved model reloads exactly as saved, or fails with one UserError; never on substitute weights."""

import json

import pytest
import torch
import torchvision

from asym import DISTS, SRModel
from asym.errors import UserError


def _save_as_pretrained(metric, folder):
    """Save ``metric`` as if its backbone held the downloadable ImageNet weights (then they are not stored)."""
    metric.backbone.weights_source = "pretrained"
    metric.save_pretrained(folder)


def test_a_pretrained_backbone_is_not_replaced_by_random_weights_on_reload(tmp_path):
    """Offline, the ImageNet VGG-16 a metric was saved with cannot be had: reloading must fail, not go random."""
    metric = DISTS("vgg16", weights="random", alpha_beta="random")
    _save_as_pretrained(metric, tmp_path / "metric")
    config = json.loads((tmp_path / "metric" / "config.json").read_text())
    assert config["weights"] == "pretrained" and config["asym_class"] == "DISTS"
    with pytest.raises(UserError, match="relies on pretrained backbone weights it does not store"):
        DISTS.from_pretrained(tmp_path / "metric")
    # a folder written before this rule (weights "auto" in its config) is held to the same standard
    config["weights"] = "auto"
    (tmp_path / "metric" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="could not be obtained"):
        DISTS.from_pretrained(tmp_path / "metric")


def test_a_pretrained_backbone_is_reloaded_when_obtainable(tmp_path, monkeypatch):
    """With the ImageNet weights obtainable (simulated: a seeded VGG-16 stands in for the download), the reload uses
    them and scores exactly as the saved metric."""

    def vgg16(weights=None, **kwargs):
        torch.manual_seed(123)  # the same "downloaded" weights every time
        return torchvision.models.vgg.VGG(torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"]))

    monkeypatch.setattr(torchvision.models, "vgg16", vgg16)
    metric = DISTS("vgg16", weights="pretrained", alpha_beta="random")
    assert metric.backbone.weights_source == "pretrained"
    metric.save_pretrained(tmp_path / "metric")
    from safetensors.torch import load_file

    assert not any(k.startswith("backbone.") for k in load_file(tmp_path / "metric" / "model.safetensors"))
    again = DISTS.from_pretrained(tmp_path / "metric")
    assert again.backbone.weights_source == "pretrained"
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(again(x, y), metric(x, y), atol=0, rtol=0)


def test_a_stored_backbone_reloads_bit_identically_with_its_provenance(tmp_path):
    metric = DISTS("resnet50", weights="random", alpha_beta="random", seed=3)
    metric.save_pretrained(tmp_path / "metric")
    again = DISTS.from_pretrained(tmp_path / "metric")
    assert again.backbone.weights_source == f"stored in {tmp_path / 'metric'}, from random"
    assert again.alpha_beta_source == f"as saved in {tmp_path / 'metric'}"
    for a, b in zip(metric.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def saved_metric(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metric")
    DISTS("vgg16", weights="random").save_pretrained(folder)
    return folder


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "copy")


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no-config", "holds no config.json"),
        ("garbage-config", "model config .*config.json cannot be read"),
        ("list-config", "is not a JSON object"),
        ("other-class", "holds an asym SRModel, not a DISTS: load it with SRModel.from_pretrained"),
        ("legacy-other-class", "describes another kind of model"),
        ("no-weights", "holds no model.safetensors"),
        ("truncated-weights", "model weights .*model.safetensors cannot be read"),
        ("garbage-weights", "model weights .*model.safetensors cannot be read"),
        ("foreign-weights", "does not fit DISTS"),
        ("missing", "is not a folder saved by asym"),
        ("offline-hub-id", "no local folder and could not be downloaded"),
    ],
)
def test_broken_folders_are_one_user_error(saved_metric, tmp_path, damage, message):
    from safetensors.torch import save_file

    folder = _copy(saved_metric, tmp_path)
    config, weights = folder / "config.json", folder / "model.safetensors"
    if damage == "no-config":
        config.unlink()
    elif damage == "garbage-config":
        config.write_text("{not json")
    elif damage == "list-config":
        config.write_text("[1, 2]")
    elif damage == "other-class":
        SRModel("tiny", 2).save_pretrained(folder)
    elif damage == "legacy-other-class":
        config.write_text(json.dumps({"model": "tiny", "scale": 2}))
    elif damage == "no-weights":
        weights.unlink()
    elif damage == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "garbage-weights":
        weights.write_bytes(b"\x00garbage" * 100)
    elif damage == "foreign-weights":  # another metric's weights file copied into this folder
        save_file({"alpha": torch.zeros(7), "beta": torch.zeros(7), "backbone.model.fc.weight": torch.zeros(2)},
                  str(weights))  # fmt: skip
    elif damage == "missing":
        folder = tmp_path / "nowhere" / "metric"
    elif damage == "offline-hub-id":
        folder = "nobody/no-such-metric"
    with pytest.raises(UserError, match=message):
        DISTS.from_pretrained(folder)
