"""Normalised VGG feature maps: every ReLU map has mean 1 on the calibration images, a classifier's logits (and so
its ranking) do not change, and the study's P + T loss on one shared network equals the separate losses."""

import pytest
import torch
import torchvision

from asym import create_backbone
from asym.core.errors import UserError
from asym.nets.feature_losses import FeatureLoss, FeatureTextureLoss, GramTextureLoss
from asym.nets.feature_normalisation import normalise_backbone_feature_maps, normalise_feature_maps


def relu_means(model, images):
    means = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: means.append(out.double().mean((0, 2, 3))))
             for m in model.features if isinstance(m, torch.nn.ReLU)]  # fmt: skip
    with torch.no_grad():
        model(images)
    for h in hooks:
        h.remove()
    return means


def test_vgg19_logits_unchanged_and_maps_at_mean_one():
    torch.manual_seed(0)
    vgg = torchvision.models.vgg19().eval()
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    other = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before, before_other = vgg(images), vgg(other)
    raw = relu_means(vgg, images)
    normalise_feature_maps(vgg, vgg.features, images, head=vgg.classifier[0])
    with torch.no_grad():
        after, after_other = vgg(images), vgg(other)
    # the logits are the same function of the input: on the calibration images and on others
    scale = before.abs().max()
    assert (after - before).abs().max() <= 1e-4 * scale and (after_other - before_other).abs().max() <= 1e-4 * scale
    # the classifier's ranking: ordered by the new logits, the old ones never fall by more than the tolerance (logits
    # closer than that, 5e-8 apart among 1000 random ones, may swap: float32 rounding, not normalisation)
    for old_logits, new_logits in ((before, after), (before_other, after_other)):
        assert torch.equal(new_logits.argmax(dim=1), old_logits.argmax(dim=1))
        assert old_logits.gather(1, new_logits.argsort(dim=1)).diff(dim=1).min() >= -2e-4 * scale
    for old, new in zip(raw, relu_means(vgg, images)):
        alive = old > 1e-3 * old.median()
        # float32 sums over 3 x 64 x 64 positions: relative error well under 1e-3
        assert torch.allclose(new[alive], torch.ones_like(new[alive]), rtol=1e-3)
        assert torch.allclose(new[~alive], old[~alive], rtol=1e-3, atol=1e-12)  # (nearly) dead: untouched
    assert any(not torch.allclose(m, torch.ones_like(m)) for m in raw)  # it did have something to do


def test_backbone_normalisation_and_its_refusal():
    torch.manual_seed(0)
    backbone = create_backbone("vgg19", weights="random")
    images = torch.rand(2, 3, 48, 48)
    normalise_backbone_feature_maps(backbone, images)
    with torch.no_grad():
        stages = backbone(images)
    for stage in stages[1:]:  # the stage outputs are ReLU maps: the median channel now has mean 1
        assert stage.mean((0, 2, 3)).median() == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(UserError, match="defined for VGG backbones"):
        normalise_backbone_feature_maps(create_backbone("resnet50", weights="random"), images)


def test_feature_texture_loss_on_one_network_equals_the_separate_losses():
    torch.manual_seed(0)
    shared = FeatureTextureLoss("vgg19", weights="random")
    feat = FeatureLoss(shared.backbone, weights="random")  # the same network object, no copy
    texture = GramTextureLoss(shared.backbone, weights="random")
    x, y = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 48, 48)
    terms = shared(x, y)
    assert torch.allclose(terms["feat"], feat(x, y), rtol=1e-6) and torch.allclose(
        terms["texture"], texture(x, y), rtol=1e-6
    )
    # P by hand: 0.2 x MSE of block 2 + 0.02 x MSE of block 5
    fx, fy = shared.backbone(x), shared.backbone(y)
    expected = 0.2 * (fx[2] - fy[2]).square().mean((1, 2, 3)) + 0.02 * (fx[5] - fy[5]).square().mean((1, 2, 3))
    assert torch.allclose(terms["feat"], expected, rtol=1e-6)
    assert set(FeatureTextureLoss(shared.backbone, weights="random", texture_layers=None)(x, y)) == {"feat"}
