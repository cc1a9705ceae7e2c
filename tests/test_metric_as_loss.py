"""Metric-as-loss diagnostics: recovery from noise, texture synthesis, image grids."""

import pytest
import torch
from PIL import Image

import asym
from asym.metrics.as_loss import recover_from_noise, save_images, synthesize_texture


def mse(x, y):
    return (x - y).square().mean([1, 2, 3])


def smooth_image(b=1, h=32, w=32):
    """A smooth colour image in [0.05, 0.95] (gradients plus a blob)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    blob = torch.exp(-((xx - 0.6) ** 2 + (yy - 0.4) ** 2) / 0.05)
    img = torch.stack([xx, yy, blob]) * 0.9 + 0.05
    return img.expand(b, 3, h, w).contiguous()


def test_mse_recovers_reference_from_noise():
    reference = torch.rand(2, 3, 32, 32)
    seen = []
    out = recover_from_noise(mse, reference, steps=200, lr=0.01, callback=lambda step, x: seen.append(step))
    assert out["image"].shape == reference.shape
    assert out["psnr"].shape == out["ssim"].shape == (2,)
    assert (out["psnr"] > 30).all(), out["psnr"]
    assert (out["ssim"] > 0.9).all()
    assert len(out["loss"]) == 200 and seen == list(range(200))
    assert out["loss"][0] > 0.05 and out["loss"][-1] < out["loss"][0] / 10  # a real start, not the optimum


def test_seed_and_init_options():
    reference = smooth_image()
    a = recover_from_noise(mse, reference, steps=0, seed=1)
    b = recover_from_noise(mse, reference, steps=0, seed=1)
    c = recover_from_noise(mse, reference, steps=0, seed=2)
    assert torch.equal(a["image"], b["image"]) and not torch.equal(a["image"], c["image"])
    assert a["loss"] == []
    gray = recover_from_noise(mse, reference, steps=0, init="gray")["image"]
    assert torch.all(gray == 0.5)
    blur = recover_from_noise(mse, reference, steps=0, init="blur")["image"]
    assert blur.shape == reference.shape and 0 <= blur.min() and blur.max() <= 1
    with pytest.raises(ValueError, match="init"):
        recover_from_noise(mse, reference, steps=1, init="zeros")


def test_dists_recovery_decreases_loss_and_leaves_metric_alone():
    metric = asym.DISTS("vgg16", weights="random", alpha_beta="uniform")
    reference = smooth_image(b=2)
    out = recover_from_noise(metric, reference, steps=30, lr=0.02)
    assert out["loss"][-1] < out["loss"][0]
    assert 0 <= out["image"].min() and out["image"].max() <= 1
    assert out["psnr"].shape == out["ssim"].shape == (2,)
    assert metric.alpha.grad is None and metric.beta.grad is None  # only x was optimised


def test_texture_synthesis_with_gram_loss():
    metric = asym.GramTextureLoss("vgg19", weights="random", patch_size=16)
    texture = torch.rand(1, 3, 32, 32)
    out = synthesize_texture(metric, texture, steps=10, lr=0.02, seed=0)
    assert out["image"].shape == (1, 3, 32, 32)
    assert out["loss"][-1] < out["loss"][0]
    # the seed alone decides the result: the same seed repeats it, another seed (same steps) gives another one
    again = synthesize_texture(metric, texture, steps=10, lr=0.02, seed=0)
    other = synthesize_texture(metric, texture, steps=10, lr=0.02, seed=1)
    assert torch.equal(out["image"], again["image"])
    assert not torch.allclose(out["image"], other["image"])


@pytest.mark.parametrize("size", [48, (16, 40)])
def test_texture_synthesis_other_sizes(size):
    texture = torch.rand(1, 3, 32, 32)
    out = synthesize_texture(mse, texture, size=size, steps=5)
    expected = (size, size) if isinstance(size, int) else size
    assert out["image"].shape == out["target"].shape == (1, 3, *expected)
    assert out["loss"][-1] < out["loss"][0]


def test_save_images_writes_side_by_side_grid(tmp_path):
    reference = smooth_image(b=2, h=32, w=24)
    images = {"init": torch.rand(2, 3, 32, 24), "recovered": reference * 0.9, "reference": reference}
    path = tmp_path / "grid.png"
    grid = save_images(str(path), images, padding=2)
    with Image.open(path) as png:
        width, height = png.size
    assert (width, height) == (3 * 24 + 4 * 2, 2 * 32 + 3 * 2)
    assert grid.shape == (3, height, width)
