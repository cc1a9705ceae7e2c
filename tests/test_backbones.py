import os
import warnings

import pytest
import torch
from safetensors.torch import save_file

from asym import DISTS, create_backbone, list_backbones
from asym.backbones import TransformersBackbone


@pytest.fixture(scope="module", params=list_backbones())
def backbone(request):
    return create_backbone(request.param, weights="random")


def test_every_backbone_forward_backward_odd_size(backbone):
    x = torch.rand(2, 3, 97, 131, requires_grad=True)
    feats = backbone(x)
    assert feats[0] is x  # stage 0 is the raw input image
    assert [f.shape[1] for f in feats] == backbone.channels
    assert all(f.dim() == 4 and f.shape[0] == 2 for f in feats)
    sum(f.square().mean() for f in feats[1:]).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert backbone.weights_source == "random"


def test_every_backbone_rejects_too_small_input(backbone):
    s = backbone.min_size
    backbone(torch.rand(1, 3, s, s + 3))  # the minimum itself works
    with pytest.raises(ValueError, match=rf"too small.*at least {s}x{s}"):
        backbone(torch.rand(1, 3, s - 1, s + 3))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 4, 32, 32), (1, 1, 32, 32)])
def test_bad_shape_is_a_clear_error(shape):
    backbone = create_backbone("resnet50", weights="random")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) image tensor|3 \(RGB\) channels"):
        backbone(torch.rand(*shape))


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="unknown backbone 'vgg17'.*vgg16, vgg16-r, vgg19.*timm:"):
        create_backbone("vgg17")


def test_vgg16_uses_l2_pooling_and_vgg19_max_pooling():
    from asym.backbones import L2Pool

    assert sum(isinstance(m, L2Pool) for m in create_backbone("vgg16", "random").modules()) == 4
    vgg19 = create_backbone("vgg19", "random")
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in vgg19.modules()) == 4
    assert vgg19.channels == [3, 64, 128, 256, 512, 512]
    assert sum(isinstance(m, torch.nn.Conv2d) for m in vgg19.modules()) == 16


def test_timm_passthrough():
    backbone = create_backbone("timm:resnet18", weights="random")
    feats = backbone(torch.rand(1, 3, 70, 90))
    assert backbone.channels == [3, 64, 64, 128, 256, 512] == [f.shape[1] for f in feats]


def test_hf_passthrough_with_a_tiny_local_model(tmp_path):
    from transformers import ViTConfig

    ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=8,
              image_size=32).save_pretrained(tmp_path)  # fmt: skip
    backbone = create_backbone(f"hf:{tmp_path}", weights="random")
    assert isinstance(backbone, TransformersBackbone)
    feats = backbone(torch.rand(2, 3, 40, 57))  # 5x7 patches, position embeddings interpolated
    assert backbone.channels == [3, 32, 32] == [f.shape[1] for f in feats]
    assert feats[1].shape[-2:] == (5, 7)


def test_weights_file_roundtrip_and_prefix_stripping(tmp_path):
    source = create_backbone("vgg19", weights="random")
    # a checkpoint as a robustness-library / DDP wrapper would write it
    state = {f"module.model.{k}": v.contiguous() for k, v in source.model.state_dict().items()}
    state["module.model.classifier.0.weight"] = torch.zeros(1)  # extra keys are ignored
    save_file(state, tmp_path / "robust_vgg19.safetensors")
    loaded = create_backbone("vgg19", weights=str(tmp_path / "robust_vgg19.safetensors"))
    assert loaded.weights_source.endswith("robust_vgg19.safetensors")
    for (k, a), b in zip(source.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(source(x)[-1], loaded(x)[-1])
    # a folder holding the file works too
    assert create_backbone("vgg19", weights=str(tmp_path)).weights_source == str(tmp_path)


def test_weights_file_that_does_not_fit_is_a_clear_error(tmp_path):
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.safetensors")
    with pytest.raises(ValueError, match="do not fit.*missing keys"):
        create_backbone("vgg19", weights=str(tmp_path / "partial.safetensors"))
    with pytest.raises(ValueError, match="not found"):
        create_backbone("vgg19", weights=str(tmp_path / "nothing.safetensors"))


def _offline_torchvision(monkeypatch):
    import torchvision.models._api as api

    def refuse(self, *args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(api.WeightsEnum, "get_state_dict", refuse)


def test_auto_falls_back_to_random_with_one_warning(monkeypatch):
    _offline_torchvision(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backbone = create_backbone("resnet50", weights="auto")
    messages = [str(w.message) for w in caught if "RANDOM" in str(w.message)]
    assert len(messages) == 1 and "resnet50" in messages[0]
    assert backbone.weights_source == "random (pretrained unavailable)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DISTS("resnet50", weights="auto")  # built inside a metric: the warning still points here
    assert [w.filename for w in caught if "RANDOM" in str(w.message)] == [__file__]


def test_pretrained_that_cannot_be_obtained_fails_clearly(monkeypatch):
    _offline_torchvision(monkeypatch)
    with pytest.raises(RuntimeError, match="pretrained weights for backbone 'vgg16' could not be obtained"):
        create_backbone("vgg16", weights="pretrained")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(RuntimeError, match="'dinov2' could not be obtained"):
        create_backbone("dinov2", weights="pretrained")
