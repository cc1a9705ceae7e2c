import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from asym.backbones.base import L2Pool
from asym.nets.discriminator import (
    DISC_TYPES,
    Discriminator,
    discriminator_stats,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
)


def naive_losses(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's formulas written out with sigmoid and log (fine for moderate logits), halved as BasicSR's
    ESRGANModel does (l_g_gan = (l_g_real + l_g_fake) / 2; the discriminator's real and fake halves weighed 0.5),
    the code the paper's lambda_adv = 5e-3 comes from."""

    def d_ra(a, b):
        return torch.sigmoid(a - b.mean())

    generator = -torch.log(1 - d_ra(real, fake)).mean() - torch.log(d_ra(fake, real)).mean()
    discriminator = -torch.log(d_ra(real, fake)).mean() - torch.log(1 - d_ra(fake, real)).mean()
    return generator / 2, discriminator / 2


@pytest.mark.parametrize("disc_type", DISC_TYPES)
@pytest.mark.parametrize("backbone", ["vgg16", "resnet50", "dinov2"])
def test_discriminator_shapes_and_gradients(backbone, disc_type):
    d = Discriminator(backbone, disc_type, weights="random").train()
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    logits = d(x)
    if disc_type == "vanilla":
        assert logits.shape == (2,)
    else:
        assert logits.dim() == 4 and logits.shape[:2] == (2, 1) and min(logits.shape[2:]) > 1
    logits.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    backbone_grads = [p.grad for p in d.backbone.parameters()]
    assert all(p.requires_grad for p in d.parameters())  # the backbone is trained, not frozen
    assert any(g is not None and g.abs().sum() > 0 for g in backbone_grads)
    assert all(torch.isfinite(g).all() for g in backbone_grads if g is not None)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.head.parameters())


def test_discriminator_odd_size():
    d = Discriminator("vgg16", "patch", weights="random")
    assert d(torch.rand(1, 3, 97, 131)).shape == (1, 1, 6, 8)  # relu5_3 at stride 16
    with pytest.raises(ValueError, match="too small"):
        d(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("shape", [(5,), (3, 1, 4, 6)])
def test_losses_match_naive_formula(shape):
    real, fake = torch.randn(shape, dtype=torch.float64) * 2, torch.randn(shape, dtype=torch.float64) * 2
    generator, discriminator = naive_losses(real, fake)
    torch.testing.assert_close(relativistic_generator_loss(real, fake), generator, atol=1e-6, rtol=0)
    torch.testing.assert_close(relativistic_discriminator_loss(real, fake), discriminator, atol=1e-6, rtol=0)
    # swapping the roles of real and fake swaps the two losses
    torch.testing.assert_close(relativistic_generator_loss(real, fake), relativistic_discriminator_loss(fake, real))


def test_values_and_generator_gradient_are_basicsrs_the_discriminator_gradient_is_the_formulas():
    """What the docstrings claim against today's BasicSR ``ESRGANModel.optimize_parameters`` (written out here): the
    generator step (real logits detached) is BasicSR's in value and gradient; the discriminator step is BasicSR's in
    value, but its gradient is the formula's full derivative (naive_losses under autograd), where BasicSR detaches
    the other side's mean in each half."""
    real = (torch.randn(2, 1, 3, 3, dtype=torch.float64) * 2).requires_grad_()
    fake = (torch.randn(2, 1, 3, 3, dtype=torch.float64) * 2).requires_grad_()

    def gan(logits, target):  # BasicSR's GANLoss('vanilla'): BCE with logits against a constant label
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(target)))

    def grads(loss):
        return torch.autograd.grad(loss, [real, fake], retain_graph=True, allow_unused=True, materialize_grads=True)

    # generator step: real_d_pred = net_d(gt).detach(); l_g_gan = (l_g_real + l_g_fake) / 2
    real_d = real.detach()
    basicsr_g = (gan(real_d - fake.mean(), False) + gan(fake - real_d.mean(), True)) / 2
    ours_g = relativistic_generator_loss(real_d, fake)
    torch.testing.assert_close(ours_g, basicsr_g)
    torch.testing.assert_close(grads(ours_g), grads(basicsr_g))
    # discriminator step: each half against the other side's detached mean, weighted 0.5
    basicsr_d = gan(real - fake.detach().mean(), True) * 0.5 + gan(fake - real.detach().mean(), False) * 0.5
    ours_d = relativistic_discriminator_loss(real, fake)
    torch.testing.assert_close(ours_d, basicsr_d)
    torch.testing.assert_close(grads(ours_d), grads(naive_losses(real, fake)[1]))  # the formula's derivative
    assert not torch.allclose(grads(ours_d)[0], grads(basicsr_d)[0])  # not BasicSR's since v1.1.0


def test_losses_are_stable_for_large_logits():
    real, fake = torch.tensor([200.0, 300.0]), torch.tensor([-200.0, -300.0])
    assert relativistic_discriminator_loss(real, fake) == 0  # sure and right
    torch.testing.assert_close(relativistic_generator_loss(real, fake), torch.tensor(500.0))  # sure and wrong


def test_discriminator_stats_count_by_hand():
    real, fake = torch.tensor([2.0, 0.5, -1.0, 3.0]), torch.tensor([0.0, 1.0, 2.0, -1.0])
    # mean(fake) = 0.5: real - 0.5 > 0 for 2.0 and 3.0 only; mean(real) = 1.125: fake - 1.125 < 0 for 0.0, 1.0, -1.0
    assert discriminator_stats(real, fake) == {"acc_real": 0.5, "acc_fake": 0.75, "logit_gap": 0.625}


def test_losses_move_the_right_way():
    base = torch.randn(8)
    real = torch.randn(8)
    assert relativistic_generator_loss(real, base + 1) < relativistic_generator_loss(real, base)
    assert relativistic_discriminator_loss(base + 2, base) < relativistic_discriminator_loss(base, base + 2)


def test_losses_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        relativistic_generator_loss(torch.randn(4), torch.randn(4, 1, 2, 2))


def test_discriminator_learns_to_separate_smooth_images_from_noise():
    d = Discriminator("vgg16", "vanilla", weights="random")
    real = F.interpolate(torch.rand(4, 3, 4, 4), size=32, mode="bilinear", align_corners=False)  # smooth
    fake = torch.rand(4, 3, 32, 32)  # noise
    optimizer = torch.optim.Adam(d.parameters(), lr=1e-4)

    def loss():
        return relativistic_discriminator_loss(d(real), d(fake))

    with torch.no_grad():
        before = loss()
    for _ in range(8):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after < 0.5 * before
    with torch.no_grad():
        assert d(real).mean() > d(fake).mean()


def test_unknown_disc_type_and_backbone():
    with pytest.raises(ValueError, match="'vanilla', 'patch'"):
        Discriminator("vgg16", "pixel")
    with pytest.raises(ValueError, match="unknown backbone"):
        Discriminator("lenet5", "vanilla")


def test_vgg_discriminator_uses_max_pooling():
    d = Discriminator("vgg16", weights="random")
    assert not any(isinstance(m, L2Pool) for m in d.modules())
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in d.modules()) == 4
    l2 = Discriminator("vgg16", weights="random", backbone_kwargs={"pooling": "l2"})
    assert sum(isinstance(m, L2Pool) for m in l2.modules()) == 4


def test_save_and_load_round_trip(tmp_path):
    d = Discriminator("timm:resnet18", "patch", weights="random").eval()
    d.backbone.weights_source = "pretrained"  # as if it had started from ImageNet: still stored, it is trained
    d.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["backbone"] == "timm:resnet18" and config["disc_type"] == "patch"
    assert config["weights"] == "random" and config["weights_source"] == "pretrained"
    assert any(k.startswith("backbone.") for k in load_file(tmp_path / "model.safetensors"))
    assert "patch" in (tmp_path / "README.md").read_text().lower()

    loaded = Discriminator.from_pretrained(tmp_path)
    assert (loaded.backbone_name, loaded.disc_type) == ("timm:resnet18", "patch")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), d(x), atol=0, rtol=0)
