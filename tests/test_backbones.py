import argparse
import os
import re
import warnings

import pytest
import torch
from safetensors.torch import save_file

from asym import DISTS, create_backbone, list_backbones
from asym.backbones.transformers_nets import TransformersBackbone, TransformersStagesBackbone
from asym.core.errors import UserError


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
    with pytest.raises(UserError, match=rf"too small.*at least {s}x{s}"):  # the user's data: one-line error
        backbone(torch.rand(1, 3, s - 1, s + 3))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 4, 32, 32), (1, 1, 32, 32)])
def test_bad_shape_is_a_clear_error(shape):
    backbone = create_backbone("resnet50", weights="random")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) image tensor|3 \(RGB\) channels"):
        backbone(torch.rand(*shape))


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(UserError, match="unknown backbone 'vgg17'.*vgg16, vgg16-r, vgg19.*timm:"):
        create_backbone("vgg17")


def test_vgg16_uses_l2_pooling_and_vgg19_max_pooling():
    from asym.backbones.base import L2Pool

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


def _tiny_hf_model(arch: str):
    """A random 2-stage / 2-layer transformers model, as a Hub checkpoint holds it (the base model)."""
    import transformers as tf

    if arch == "swin":
        return tf.SwinModel(tf.SwinConfig(embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4, image_size=32))
    if arch == "convnext":
        return tf.ConvNextModel(tf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=32))
    return tf.ViTModel(tf.ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                    patch_size=8, image_size=32))  # fmt: skip


@pytest.mark.parametrize(
    "arch, kind, channels, min_size",
    [
        ("swin", TransformersStagesBackbone, [3, 8, 16], 8),  # patch 4, one patch merging
        ("convnext", TransformersStagesBackbone, [3, 8, 16], 8),  # stride-4 stem, one downsampling
        ("vit", TransformersBackbone, [3, 16, 16], 8),  # patch size
    ],
)
def test_hf_model_folder_loads_its_weights(tmp_path, arch, kind, channels, min_size):
    source = _tiny_hf_model(arch)
    source.save_pretrained(tmp_path / "model")
    backbone = create_backbone(f"hf:{tmp_path / 'model'}", weights="pretrained")
    assert isinstance(backbone, kind) and backbone.weights_source == "pretrained"
    assert backbone.channels == channels and backbone.min_size == min_size
    # every weight the backbone uses comes from the checkpoint, except a backbone class's per-stage output norms
    reference, loaded = source.state_dict(), backbone.model.state_dict()
    matched = 0
    for key, value in loaded.items():
        ref = reference.get(key, reference.get(key.partition(".")[2]))  # SwinBackbone nests the model as `swin.`
        if ref is not None:
            assert torch.equal(ref, value), key
            matched += 1
    assert matched == sum(not k.startswith("hidden_states_norms.") for k in loaded)

    x = torch.rand(2, 3, 97, 131, requires_grad=True)  # odd size: Swin pads, ConvNeXt/ViT drop the remainder
    feats = backbone(x)
    assert [f.shape[1] for f in feats] == backbone.channels
    assert all(f.dim() == 4 and f.shape[0] == 2 for f in feats)
    sum(f.square().mean() for f in feats[1:]).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    backbone(torch.rand(1, 3, min_size, min_size + 1))  # the minimum itself works
    with pytest.raises(UserError, match="too small"):
        backbone(torch.rand(1, 3, min_size - 1, min_size + 1))

    # a folder written from the backbone's own model gives identical outputs ("pretrained" and "auto");
    # "random" builds the architecture from its config alone
    backbone.model.save_pretrained(tmp_path / "again")
    again = create_backbone(f"hf:{tmp_path / 'again'}", weights="pretrained")
    auto = create_backbone(f"hf:{tmp_path / 'again'}", weights="auto")
    random = create_backbone(f"hf:{tmp_path / 'again'}", weights="random")
    assert auto.weights_source == "pretrained" and random.weights_source == "random"
    with torch.no_grad():
        x = torch.rand(1, 3, 40, 57)
        expected = backbone(x)
        for other in (again, auto):
            assert all(torch.equal(a, b) for a, b in zip(expected, other(x)))
        assert [f.shape for f in random(x)] == [f.shape for f in expected]
        assert not torch.allclose(random(x)[-1], expected[-1])


def test_hf_layers_choose_stages_or_hidden_states(tmp_path):
    _tiny_hf_model("swin").config.save_pretrained(tmp_path / "swin")
    swin = create_backbone(f"hf:{tmp_path / 'swin'}", weights="random", layers=[2])
    assert swin.channels == [3, 16] and swin.min_size == 8
    assert [f.shape[1] for f in swin(torch.rand(1, 3, 33, 35))] == [3, 16]
    with pytest.raises(UserError, match=r"layers=\[3\].*choose among 1\.\.2"):
        create_backbone(f"hf:{tmp_path / 'swin'}", weights="random", layers=[3])
    _tiny_hf_model("vit").config.save_pretrained(tmp_path / "vit")
    vit = create_backbone(f"hf:{tmp_path / 'vit'}", weights="random", layers=[0, 1])  # 0 = patch embeddings
    assert vit.channels == [3, 16, 16] and vit.layers == [0, 1]


def test_hf_hierarchical_model_without_backbone_class_suggests_timm(tmp_path):
    from transformers import RegNetConfig

    RegNetConfig(hidden_sizes=[8, 16], depths=[1, 1], embedding_size=8).save_pretrained(tmp_path)
    for weights in ("random", "auto"):  # "auto" does not fall back: the architecture is the problem, not the weights
        with pytest.raises(UserError, match=r"hierarchical regnet model.*use timm:<name>"):
            create_backbone(f"hf:{tmp_path}", weights=weights)
    with pytest.raises(UserError, match=r"config cannot be obtained"):
        create_backbone(f"hf:{tmp_path / 'missing'}", weights="random")


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
    with pytest.raises(UserError, match="partial.safetensors do not fit.*missing keys"):
        create_backbone("vgg19", weights=str(tmp_path / "partial.safetensors"))
    with pytest.raises(UserError, match="nothing.safetensors not found"):
        create_backbone("vgg19", weights=str(tmp_path / "nothing.safetensors"))


def _bad_weights(kind: str, tmp_path) -> str:
    """A weights file or folder a user might pass by mistake."""
    path = tmp_path / kind
    if kind == "garbage.safetensors":
        path.write_bytes(b"<html>404 Not Found</html>")  # what a failed download often leaves
    elif kind == "truncated.safetensors":
        save_file({"features.0.weight": torch.rand(64, 3, 3, 3)}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "pickle.pt":  # arbitrary objects: refused by weights_only, never unpickled
        torch.save({"args": argparse.Namespace(lr=1e-4), "features.0.weight": torch.zeros(1)}, path)
    elif kind == "tensor.pt":
        torch.save(torch.zeros(3), path)
    elif kind == "empty_folder":
        path.mkdir()
        (path / "README.md").write_text("weights to come")
    elif kind == "resnet.safetensors":  # another architecture
        save_file({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 2048)}, path)
    elif kind == "wrong_shape.safetensors":  # the right keys, a tensor of another width
        state = {k: v.contiguous() for k, v in create_backbone("vgg19", weights="random").model.state_dict().items()}
        state["features.0.weight"] = torch.zeros(32, 3, 3, 3)
        save_file(state, path)
    return str(path)


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("garbage.safetensors", "cannot be read.*truncated or not the right file"),
        ("truncated.safetensors", "cannot be read.*truncated or not the right file"),
        ("pickle.pt", "cannot be read.*not a tensors-only torch file"),
        ("tensor.pt", "hold no state dict of tensors"),
        ("empty_folder", "holds no .safetensors"),
        ("resnet.safetensors", "do not fit backbone.*missing keys, e.g. features.0"),
        ("wrong_shape.safetensors", "do not fit the backbone:.*features.0.weight"),
    ],
)
def test_bad_weights_file_is_one_user_error_naming_it(tmp_path, kind, problem):
    path = _bad_weights(kind, tmp_path)
    with pytest.raises(UserError, match=f"{re.escape(path)}.*{problem}") as caught:
        create_backbone("vgg19", weights=path)
    assert "\n" not in str(caught.value)


def test_weights_hub_id_that_cannot_be_downloaded_is_a_user_error():
    with pytest.raises(UserError, match="someone/robust-vgg19 .*cannot be downloaded"):
        create_backbone("vgg19", weights="someone/robust-vgg19")  # tests run with HF_HUB_OFFLINE=1


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
    with pytest.raises(UserError, match="pretrained weights for backbone 'vgg16' could not be obtained.*'random'"):
        create_backbone("vgg16", weights="pretrained")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(UserError, match="'dinov2' could not be obtained"):
        create_backbone("dinov2", weights="pretrained")


def test_auto_does_not_fall_back_in_a_multi_process_run(monkeypatch):
    _offline_torchvision(monkeypatch)
    monkeypatch.setenv("WORLD_SIZE", "2")  # as set by accelerate launch / torchrun
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, not a warning followed by per-process weights
        with pytest.raises(UserError, match=r"'resnet50'.*every process must use the same weights.*--weights random"):
            create_backbone("resnet50", weights="auto")
        assert create_backbone("resnet50", weights="random").weights_source == "random"
