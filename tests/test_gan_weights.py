"""``gan:`` weight sources: a discriminator saved by train_sr.py initialises any model built on its backbone."""

import json

import pytest
import torch

from asym import DISTS, Discriminator, IQAModel, create_backbone
from asym.backbones.base import L2Pool
from asym.core.errors import UserError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A train_sr.py-like run folder: ``discriminator/`` holding a trained-looking (perturbed) vanilla VGG-16 one."""
    folder = tmp_path_factory.mktemp("run")
    torch.manual_seed(3)
    disc = Discriminator("vgg16", "vanilla", weights="random")
    with torch.no_grad():
        for p in disc.parameters():
            p.add_(0.01 * torch.randn_like(p))  # not any fresh random init
    disc.card = {"steps trained": 7}
    disc.save_pretrained(folder / "discriminator")
    return folder, disc


def test_gan_loads_the_backbone_tensors_one_by_one(run):
    folder, disc = run
    expected = {k[len("backbone.") :]: v for k, v in disc.state_dict().items() if k.startswith("backbone.")}
    for source in (folder, folder / "discriminator"):  # the run folder, or the discriminator folder itself
        backbone = create_backbone("vgg16", weights=f"gan:{source}")
        state = backbone.state_dict()
        assert set(state) == set(expected) and len(state) == 26  # 13 convolutions, weight + bias; no head
        for key, tensor in expected.items():
            assert torch.equal(state[key], tensor), key
        assert backbone.weights_source.startswith(f"gan:{folder / 'discriminator'}")
        assert "vanilla discriminator on vgg16, 7 steps" in backbone.weights_source


def test_an_iqa_model_from_gan_weights_computes_the_discriminator_features(run):
    """Same architecture (max pooling, as discriminators are built) and same tensors: identical feature maps."""
    folder, disc = run
    model = IQAModel("vgg16", "nr", weights=f"gan:{folder}").eval()
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        for ours, theirs in zip(model.backbone(x), disc.eval().backbone(x)):
            assert torch.equal(ours, theirs)
    assert "max pooling" in model.backbone.weights_source


def test_a_gan_initialised_metric_keeps_dists_pooling_and_its_provenance(run, tmp_path):
    folder, disc = run
    metric = DISTS("vgg16", weights=f"gan:{folder}")
    assert any(isinstance(m, L2Pool) for m in metric.backbone.modules())  # L2 pooling, as with ImageNet weights
    assert "L2 pooling" in metric.backbone.weights_source
    conv = metric.backbone.model.features[0].weight
    assert torch.equal(conv, disc.backbone.model.features[0].weight)
    metric.save_pretrained(tmp_path / "metric")
    config = json.loads((tmp_path / "metric" / "config.json").read_text())
    assert config["weights_source"].startswith("gan:") and config["weights"] == "random"  # stored, rebuilt offline
    assert "7 steps" in (tmp_path / "metric" / "README.md").read_text()
    reloaded = DISTS.from_pretrained(tmp_path / "metric")
    assert torch.equal(reloaded.backbone.model.features[0].weight, conv)
    assert f"from gan:{folder / 'discriminator'}" in reloaded.backbone.weights_source


@pytest.mark.parametrize(
    "backbone, source, message",
    [
        ("resnet50", "{run}", "discriminator on backbone 'vgg16', but the backbone asked for is 'resnet50'"),
        ("vgg16", "{empty}", "holds no discriminator"),
        ("vgg16", "{empty}/nowhere", "not found"),
        ("vgg16", "someone/no-such-run", "could not be downloaded from the Hub"),  # HF_HUB_OFFLINE=1 (conftest)
    ],
)
def test_gan_mistakes_are_one_clear_error(run, tmp_path, backbone, source, message):
    source = source.format(run=run[0], empty=tmp_path)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_backbone(backbone, weights=f"gan:{source}")


def test_a_metric_folder_is_not_a_discriminator(tmp_path):
    DISTS("vgg16", weights="random").save_pretrained(tmp_path / "metric")
    with pytest.raises(UserError, match="holds no discriminator"):
        create_backbone("vgg16", weights=f"gan:{tmp_path / 'metric'}")


def test_a_resnet50_patch_discriminator_with_its_batchnorm_statistics(tmp_path):
    """BatchNorm running statistics are backbone tensors too: they must come along, or eval features differ."""
    disc = Discriminator("resnet50", "patch", weights="random")
    with torch.no_grad():
        disc.train()(torch.rand(4, 3, 64, 64))  # moves the running statistics away from their initial values
    disc.save_pretrained(tmp_path / "discriminator")
    model = IQAModel("resnet50", "fr", weights=f"gan:{tmp_path}").eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model.backbone(x), disc.eval().backbone(x)))
    assert "patch discriminator on resnet50, steps unknown" in model.backbone.weights_source
