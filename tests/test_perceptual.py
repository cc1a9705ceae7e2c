import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from peers import dists_pytorch_like, lpips_like, pyiqa_dists_like

from asym import DISTS, LPIPS, FeatureLoss, GramTextureLoss
from asym.nets.perceptual import TextureStructure


@pytest.fixture(scope="module")
def dists():
    return DISTS("vgg16", weights="random")  # official alpha/beta, random VGG-16 (no download here)


@pytest.fixture(scope="module")
def lpips_metric():
    return LPIPS("vgg16", weights="random")


def distorted_pairs():
    """Reference images with distortions of very different strength, so the parity check spans a range."""
    torch.manual_seed(1)
    y = torch.rand(4, 3, 64, 80)
    y = F.avg_pool2d(y, 3, 1, 1)  # some spatial correlation, like a photograph
    noisy = (y + 0.2 * torch.randn_like(y)).clamp(0, 1)
    blurred = F.avg_pool2d(y, 5, 1, 2)
    other = torch.rand_like(y)
    dark = y * 0.5
    return torch.cat([noisy, blurred, other, dark]), torch.cat([y] * 4)


def test_dists_matches_dists_pytorch_and_pyiqa(dists):
    x, y = distorted_pairs()
    ours = dists(x, y)
    assert ours.shape == (16,)
    assert ours.max() - ours.min() > 1e-3  # the pairs really differ in distance
    reference = dists_pytorch_like(dists)(x, y, batch_average=False)
    pyiqa = pyiqa_dists_like(dists)(x, y).flatten()
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours, pyiqa, atol=1e-5, rtol=0)


def test_dists_alpha_beta_are_the_official_release(dists):
    import DISTS_pytorch

    official = torch.load(DISTS_pytorch.__path__[0] + "/weights.pt", map_location="cpu", weights_only=True)
    total = official["alpha"].sum() + official["beta"].sum()
    assert dists.alpha.shape == dists.beta.shape == (1475,)
    torch.testing.assert_close(dists.alpha, official["alpha"].flatten() / total)
    torch.testing.assert_close(dists.alpha.sum() + dists.beta.sum(), torch.tensor(1.0))


def test_dists_gradient_matches_reference_autograd(dists):
    """Our fused backward (TextureStructure) against the reference run through plain autograd.

    Compared in float64: in float32 both implementations carry ~5e-7 rounding noise on gradients of
    ~1e-3 (tiny feature variances next to c2 = 1e-6), so only double precision shows they are the same.
    """
    import copy

    x, y = (t.double() for t in distorted_pairs())
    x1 = x.clone().requires_grad_(True)
    copy.deepcopy(dists).double()(x1, y).sum().backward()
    x2 = x.clone().requires_grad_(True)
    dists_pytorch_like(dists).double()(x2, y, require_grad=True).sum().backward()
    assert x1.grad.abs().max() > 1e-5
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-12, rtol=1e-9)


def test_texture_structure_gradcheck():
    f0 = torch.rand(2, 3, 5, 4, dtype=torch.double, requires_grad=True)
    f1 = torch.rand(2, 3, 5, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: TextureStructure.apply(a, b, 1e-6, 1e-6), (f0, f1))


def test_lpips_matches_lpips_package(lpips_metric):
    assert [w.numel() for w in lpips_metric.lins] == [64, 128, 256, 512, 512]
    x, y = distorted_pairs()
    reference = lpips_like(lpips_metric)(x, y, normalize=True).flatten()
    torch.testing.assert_close(lpips_metric(x, y), reference, atol=1e-5, rtol=0)


def test_lpips_weights_are_the_official_release(lpips_metric):
    import lpips

    state = torch.load(lpips.__path__[0] + "/weights/v0.1/vgg.pth", map_location="cpu", weights_only=True)
    torch.testing.assert_close(lpips_metric.lins[2], state["lin2.model.1.weight"].flatten())


@pytest.fixture(scope="module")
def all_metrics(dists, lpips_metric):
    return {
        "dists": dists,
        "lpips": lpips_metric,
        "feature": FeatureLoss("vgg19", weights="random"),
        "gram": GramTextureLoss("vgg19", weights="random"),
        "dists-resnet": DISTS("resnet50", weights="random"),
    }


@pytest.mark.parametrize("name", ["dists", "lpips", "feature", "gram", "dists-resnet"])
def test_identical_inputs_give_zero_and_batch_equals_singles(all_metrics, name, pair):
    metric = all_metrics[name]
    x, y = pair
    assert torch.equal(metric(y, y), torch.zeros(2))  # exactly, by construction: on any CPU
    batch = metric(x, y)
    assert batch.shape == (2,) and (batch > 0).all()
    singles = torch.cat([metric(x[i : i + 1], y[i : i + 1]) for i in range(2)])
    # A batch of 1 and of 2 may run different convolution kernels, so features differ by rounding alone: each of the
    # L <= 53 layers (ResNet-50) sums K <= 4608 products, about sqrt(K) * eps relative per layer, compounding to
    # 53 * 68 * 1.2e-7 ~ 4e-4 relative at worst; the metrics average such features, which cannot add error.
    torch.testing.assert_close(batch, singles, atol=0, rtol=4e-4)


def test_flat_identical_images_give_zero(dists):
    """Zero variance everywhere: the structure term must still be exactly 1 (no cancellation error)."""
    flat = torch.full((1, 3, 48, 48), 0.7)
    assert torch.equal(dists(flat, flat), torch.zeros(1))


@pytest.mark.parametrize(
    "x_shape, y_shape, scale, match",
    [
        ((1, 3, 32, 32), (1, 3, 32, 40), 1, "same shape"),
        ((1, 1, 32, 32), (1, 1, 32, 32), 1, "3 \\(RGB\\) channels"),
        ((1, 3, 8, 8), (1, 3, 8, 8), 1, "too small.*at least 16x16"),
        ((1, 3, 32, 32), (1, 3, 32, 32), 255, "must lie in \\[0, 1\\].*x / 255"),
        ((3, 32, 32), (3, 32, 32), 1, "\\(B, 3, H, W\\)"),
    ],
)
def test_bad_inputs_are_clear_errors(dists, x_shape, y_shape, scale, match):
    with pytest.raises(ValueError, match=match):
        dists(torch.rand(x_shape) * scale, torch.rand(y_shape) * scale)


def test_minus_one_to_one_input_is_rejected(lpips_metric):
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        lpips_metric(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32))


def test_loss_gradients_reach_only_the_output(dists, pair):
    x, y = pair
    x = x.clone().requires_grad_(True)
    y = y.clone()
    dists(x, y).mean().backward()
    assert x.grad.abs().sum() > 0 and y.grad is None
    assert all(p.grad is None for p in dists.backbone.parameters())


def test_dists_loss_goes_down_when_optimised(dists):
    torch.manual_seed(3)
    y = F.avg_pool2d(torch.rand(1, 3, 48, 48), 3, 1, 1)
    x = torch.rand_like(y).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.02)
    losses = []
    for _ in range(15):
        loss = dists(x.clamp(0, 1), y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_vgg16_r_alpha_beta_are_seeded_random_and_fixed():
    a = DISTS("vgg16-r", seed=7)
    b = DISTS("vgg16-r", seed=7, weights="random")
    c = DISTS("vgg16-r", seed=8)
    assert a.backbone.weights_source == "random"  # VGG-16-R never loads pretrained weights
    assert torch.equal(a.alpha, b.alpha) and torch.equal(a.beta, b.beta)
    assert not torch.equal(a.alpha, c.alpha)
    assert not a.alpha.requires_grad and not a.beta.requires_grad
    torch.testing.assert_close(a.alpha.sum() + a.beta.sum(), torch.tensor(1.0))
    assert a.alpha.std() > 0.1 * a.alpha.mean()  # not uniform


def _assert_is_projection(w, v, lower, upper):
    """KKT conditions of min ||w - v|| s.t. sum(w) = 1, lower <= w <= upper: w feasible, and w = clip(v - tau) for
    one tau. Checked from the theory, independently of how project_ finds tau. float32 weights: sums of n terms
    are exact to about n * eps = 2950 * 1.2e-7 = 4e-4 relative at worst, single entries to eps."""
    w, v, lower, upper = (t.double() for t in (w, v, lower, upper))
    assert (w >= lower - 1e-7).all() and (w <= upper + 1e-7).all()
    assert abs(w.sum().item() - 1) < 4e-6  # 2950 float32 entries of about 3e-4 each: rounding well below this
    free = (w > lower + 1e-6) & (w < upper - 1e-6)
    assert free.any()
    taus = v[free] - w[free]
    tau = taus.median()
    torch.testing.assert_close(taus, torch.full_like(taus, tau.item()), atol=1e-6, rtol=0)
    torch.testing.assert_close(w, (v - tau).clamp(lower, upper), atol=1e-6, rtol=0)


def _stage0_bounds(n, c0=3, box=(0.02, 1.0)):
    lower, upper = torch.zeros(2 * n), torch.ones(2 * n)
    for start in (0, n):
        lower[start : start + c0], upper[start : start + c0] = box
    return lower, upper


@pytest.mark.parametrize(
    "start",
    ["noisy", "huge-stage0", "one-dominant-stage0", "all-negative", "tiny-stage0", "zeros", "one-hot-deep"],
)
def test_project_is_the_euclidean_projection_from_adversarial_starts(start):
    metric = DISTS("vgg16", weights="random", alpha_beta="uniform")
    n = metric.alpha.numel()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if start == "noisy":
            metric.alpha.add_(torch.randn(n, generator=g) * 0.01)
            metric.beta.add_(torch.randn(n, generator=g) * 0.01)
        elif start == "huge-stage0":
            metric.alpha[:3] = 5.0
        elif start == "one-dominant-stage0":  # the old clamp-and-rescale gave negative weights here
            metric.alpha.fill_(1e-6)
            metric.beta.fill_(1e-6)
            metric.alpha[0] = 100.0
        elif start == "all-negative":
            metric.alpha.copy_(-torch.rand(n, generator=g))
            metric.beta.copy_(-torch.rand(n, generator=g))
        elif start == "tiny-stage0":
            metric.alpha[:3] = metric.beta[:3] = -3.0
        elif start == "zeros":
            metric.alpha.zero_()
            metric.beta.zero_()
        elif start == "one-hot-deep":
            metric.alpha.zero_()
            metric.beta.zero_()
            metric.beta[-1] = 1e3
    v = torch.cat([metric.alpha, metric.beta]).clone()
    metric.project_()
    w = torch.cat([metric.alpha, metric.beta])
    _assert_is_projection(w, v, *_stage0_bounds(n))
    assert (w >= 0).all()
    stage0 = torch.cat([metric.alpha[:3], metric.beta[:3]])
    assert ((stage0 >= 0.02) & (stage0 <= 1.0)).all()
    # idempotent: a feasible point is its own projection
    metric.project_()
    torch.testing.assert_close(torch.cat([metric.alpha, metric.beta]), w, atol=1e-7, rtol=0)


def test_projection_equals_a_generic_solver():
    """Small random instances against scipy's SLSQP on the same quadratic program."""
    from scipy.optimize import minimize

    from asym.nets.perceptual import project_onto_capped_simplex

    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.normal(0, 0.5, 12)
        lower, upper = np.zeros(12), np.ones(12)
        lower[:2], upper[:2] = 0.05, 0.3
        solution = minimize(lambda w, v=v: np.sum((w - v) ** 2), np.full(12, 1 / 12), jac=lambda w, v=v: 2 * (w - v),
                            bounds=list(zip(lower, upper)), constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                            method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})  # fmt: skip
        ours = project_onto_capped_simplex(*(torch.from_numpy(a) for a in (v, lower, upper))).numpy()
        np.testing.assert_allclose(ours, solution.x, atol=1e-6)  # SLSQP's own accuracy is the limit here
        assert abs(ours.sum() - 1) < 1e-12


def test_projection_of_an_empty_set_is_an_error():
    from asym.nets.perceptual import project_onto_capped_simplex

    with pytest.raises(ValueError, match="bounds too tight"):
        project_onto_capped_simplex(torch.zeros(3, dtype=torch.float64), torch.full((3,), 0.5, dtype=torch.float64),
                                    torch.ones(3, dtype=torch.float64))  # fmt: skip


def test_save_and_load_roundtrip(tmp_path, pair):
    metric = DISTS("resnet50", weights="random", alpha_beta="random", seed=3)
    metric.save_pretrained(tmp_path / "metric")
    files = sorted(p.name for p in (tmp_path / "metric").iterdir())
    assert files == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((tmp_path / "metric" / "config.json").read_text())
    assert config["backbone"] == "resnet50" and config["weights"] == "random"
    assert config["weights_source"] == "random"
    assert "resnet50" in (tmp_path / "metric" / "README.md").read_text()
    loaded = DISTS.from_pretrained(tmp_path / "metric")
    x, y = pair
    torch.testing.assert_close(loaded(x, y), metric(x, y), atol=0, rtol=0)
    # overwriting an existing checkpoint is atomic and leaves no temp folders behind
    metric.save_pretrained(tmp_path / "metric")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metric"]


def test_pretrained_backbone_is_not_duplicated_in_checkpoint(tmp_path):
    from safetensors.torch import load_file

    metric = DISTS("vgg16", weights="random")
    metric.backbone.weights_source = "pretrained"  # as if ImageNet weights had been downloaded
    metric.save_pretrained(tmp_path)
    assert sorted(load_file(tmp_path / "model.safetensors")) == ["alpha", "beta"]


def test_feature_loss_is_weighted_mse_of_vgg19_blocks(all_metrics, pair):
    loss = all_metrics["feature"]
    assert loss.layers == {2: 0.2, 5: 0.02}
    x, y = pair
    fx, fy = loss.backbone(x), loss.backbone(y)
    expected = 0.2 * (fx[2] - fy[2]).square().mean([1, 2, 3]) + 0.02 * (fx[5] - fy[5]).square().mean([1, 2, 3])
    torch.testing.assert_close(loss(x, y), expected)


def test_gram_loss_on_16px_patches(all_metrics):
    loss = all_metrics["gram"]
    assert loss.layers == {1: 3e-7, 3: 1e-6, 5: 1e-6}
    y = torch.rand(1, 3, 32, 48)
    x = torch.rand(1, 3, 32, 48)
    fx, fy = loss.backbone(x), loss.backbone(y)
    expected = 0.0
    for k, w in loss.layers.items():
        cell = 16 * fx[k].shape[-1] // 48  # 16, 4, 1 positions per side for stages 1, 3, 5
        grams = []
        for f in (fx[k], fy[k]):
            patches = [f[0, :, i : i + cell, j : j + cell].reshape(f.shape[1], -1)
                       for i in range(0, 2 * cell, cell) for j in range(0, 3 * cell, cell)]  # fmt: skip
            grams.append(torch.stack([p @ p.T for p in patches]))
        expected = expected + w * (grams[0] - grams[1]).square().sum([1, 2]).mean()
    torch.testing.assert_close(loss(x, y), expected.reshape(1), rtol=1e-4, atol=0)
    with pytest.raises(ValueError, match="smaller than one 16px texture patch"):
        GramTextureLoss("vgg19", weights="random")(torch.rand(1, 3, 12, 40), torch.rand(1, 3, 12, 40))


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(ValueError, match=r"layers \[9\] do not exist.*stages 0..5"):
        FeatureLoss("vgg19", weights="random", layers={9: 1.0})
