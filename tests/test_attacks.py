"""asym.nets.pgd: PGD stays in its ball and in the pixel range, and raises the loss of a fixed model."""

import pytest
import torch

from asym.nets.pgd import pgd_attack, project


def fixed_classifier():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(4))


@pytest.mark.parametrize("norm, eps", [("l2", 0.5), ("linf", 4 / 255)])
def test_pgd_stays_in_the_ball_and_raises_the_loss(norm, eps):
    model = fixed_classifier()
    x = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6) % 4
    model(x)  # materialise the lazy layer

    def loss(images):
        return torch.nn.functional.cross_entropy(model(images), y, reduction="none")

    before = [p.detach().clone() for p in model.parameters()]
    adv = pgd_attack(
        loss, x, eps=eps, steps=10, norm=norm, random_start=True, generator=torch.Generator().manual_seed(2)
    )
    delta = (adv - x).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
    assert (size <= eps * (1 + 1e-5)).all() and (size > 0).all()
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert (loss(adv) > loss(x)).all()  # every image's loss rises: they are attacked independently
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the model is untouched
    assert all(p.grad is None for p in model.parameters())


def test_pgd_zero_steps_and_projection():
    x = torch.rand(2, 3, 4, 4)
    assert torch.equal(pgd_attack(lambda t: t.sum(), x, eps=1.0, steps=0), x)
    d = torch.full((2, 3, 4, 4), 0.5)  # L2 norm sqrt(48) * 0.5 = 3.46 per image
    assert torch.allclose(project(d, 1.0, "l2").flatten(1).norm(dim=1), torch.ones(2))
    assert torch.equal(project(d, 0.1, "linf"), torch.full_like(d, 0.1))
    small = torch.full((1, 3, 4, 4), 0.01)
    assert torch.equal(project(small, 1.0, "l2"), small)  # inside the ball: unchanged
    with pytest.raises(ValueError, match="unknown attack norm"):
        pgd_attack(lambda t: t.sum(), x, eps=1.0, steps=1, norm="l1")


def test_pgd_on_a_linear_loss_moves_along_the_gradient():
    """For loss = <w, x> the L2 optimum in the ball is x + eps w / |w| (if it stays in range): PGD reaches it."""
    w = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    x = torch.full((1, 3, 8, 8), 0.5)
    adv = pgd_attack(lambda t: (t * w).sum([1, 2, 3]), x, eps=0.3, steps=5, norm="l2")
    assert torch.allclose(adv, x + 0.3 * w / w.norm(), atol=1e-6)
