"""UQI and IFC (asym.fidelity) against their published definitions, computed here independently in numpy.

UQI: Wang & Bovik (2002), Q = 4 sxy mx my / ((sx² + sy²)(mx² + my²)) over every 8x8 window, flat windows as the
authors' img_qi.m. IFC: Sheikh, Bovik & de Veciana (2005), ifcvec.m, ported below line by line (scipy's "mirror"
correlation is matlabPyrTools' reflect1) and run on the same steerable-pyramid coefficients.
"""

import math

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from asym.data import load_sr_images
from asym.errors import UserError
from asym.fidelity import IFC_MIN_SIZE, IFC_SUBBANDS, ifc, ifc_information, steerable_pyramid, uqi
from asym.images import to_tensor
from asym.metrics import rgb_to_y

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (conftest)


def as_batch(*arrays) -> list[torch.Tensor]:
    """(H, W) arrays as (1, 1, H, W) float64 tensors."""
    return [torch.from_numpy(np.asarray(a, dtype=np.float64))[None, None] for a in arrays]


# --- UQI ----------------------------------------------------------------------------------------------------------


def uqi_reference(x: np.ndarray, y: np.ndarray, w: int = 8) -> float:
    """The paper's Q per window from window means / population variances, img_qi.m's rule for flat windows."""
    a, b = sliding_window_view(x, (w, w)), sliding_window_view(y, (w, w))
    mx, my = a.mean((-1, -2)), b.mean((-1, -2))
    vx, vy = a.var((-1, -2)), b.var((-1, -2))
    cov = ((a - mx[..., None, None]) * (b - my[..., None, None])).mean((-1, -2))
    flat_x, flat_y = np.ptp(a, (-1, -2)) == 0, np.ptp(b, (-1, -2)) == 0
    vx[flat_x], vy[flat_y], cov[flat_x | flat_y] = 0, 0, 0
    q = np.ones_like(mx)
    for idx in np.ndindex(q.shape):
        spread, squares = vx[idx] + vy[idx], mx[idx] ** 2 + my[idx] ** 2
        if spread == 0 and squares != 0:
            q[idx] = 2 * mx[idx] * my[idx] / squares
        elif spread * squares != 0:
            q[idx] = 4 * cov[idx] * mx[idx] * my[idx] / (spread * squares)
    return float(q.mean())


def test_uqi_of_identical_images_is_one():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((2, 3, 20, 17)))
    assert torch.allclose(uqi(x, x), torch.ones(2))
    flat = torch.full((1, 3, 12, 12), 0.3, dtype=torch.float64)
    assert uqi(flat, flat).item() == 1.0  # flat windows: luminance term 2 m m / (m² + m²) = 1
    assert uqi(flat * 0, flat * 0).item() == 1.0  # black ones: img_qi.m leaves them at 1


@pytest.mark.parametrize("a, b", [(0.5, 0.1), (2.0, -0.3), (-0.7, 0.9), (1.0, 0.0)])
def test_uqi_of_an_affine_window_is_the_product_of_its_terms(a, b):
    """One 8x8 window, y = a x + b: sxy = a sx², sy = |a| sx, so Q = (2a / (1 + a²)) (2 mx my / (mx² + my²))."""
    x = 0.1 + 0.8 * np.random.default_rng(1).random((8, 8))  # the output is clamped to [0, 1]; keep it inside
    y = a * x + b
    mx, my = x.mean(), y.mean()
    expected = (2 * a / (1 + a * a)) * (2 * mx * my / (mx * mx + my * my))
    assert uqi(*as_batch(x, y)).item() == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_uqi_matches_the_published_formula_with_flat_windows():
    rng = np.random.default_rng(2)
    x, y = rng.random((30, 27)), rng.random((30, 27))
    y[:5] = 0.5 * x[:5] + 0.2  # correlated rows
    x[10:22, :12], y[10:22, :12] = 0.25, 0.75  # both flat, different constants: 2 mx my / (mx² + my²)
    x[:12, 15:], y[:12, 15:] = 0.0, 0.0  # both black
    x[18:, 16:] = 0.6  # flat against texture: Q = 0 there
    expected = uqi_reference(x, y)
    assert uqi(*as_batch(x, y)).item() == pytest.approx(expected, abs=1e-6)  # float32 result
    windows = sliding_window_view(np.zeros((30, 27)), (8, 8)).shape[:2]
    assert expected != pytest.approx(1.0) and windows == (23, 20)


def test_uqi_y_channel_border_and_channel_mean():
    rng = np.random.default_rng(3)
    x, y = torch.from_numpy(rng.random((2, 3, 24, 26))), torch.from_numpy(rng.random((2, 3, 24, 26)))
    got = uqi(x, y, border=3, y_channel=True)
    luma_x, luma_y = rgb_to_y(x)[..., 3:-3, 3:-3], rgb_to_y(y)[..., 3:-3, 3:-3]
    for i in range(2):
        assert got[i].item() == pytest.approx(uqi_reference(luma_x[i, 0].numpy(), luma_y[i, 0].numpy()), abs=1e-6)
    per_channel = [uqi_reference(x[0, c].numpy(), y[0, c].numpy()) for c in range(3)]
    assert uqi(x, y)[0].item() == pytest.approx(np.mean(per_channel), abs=1e-6)


def test_uqi_rejects_bad_inputs():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(UserError, match="one shape"):
        uqi(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(UserError, match="8x8"):
        uqi(x, x, border=5)  # 6x6 left


# --- IFC ----------------------------------------------------------------------------------------------------------


def photo(size: int = 96, seed: int = 0) -> torch.Tensor:
    """The luma of a builtin photograph's centre crop, (1, 1, size, size) float64 in [0, 1]."""
    image = to_tensor(load_sr_images("builtin")[seed])[None].double()
    h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return ((rgb_to_y(image) - 16 / 255) * 255 / 219)[..., top : top + size, left : left + size]


def ifcvec_port(ref: list[np.ndarray], dist: list[np.ndarray], pixels: int, m: int = 3) -> float:
    """ifcvec.m / distsub_est_m.m / refparams_vecgsm.m (LIVE release), line by line, on ind2wtree-ordered subbands."""
    tol = 1e-15
    num = 0.0
    for sub in IFC_SUBBANDS:
        y, yn = ref[sub - 1], dist[sub - 1]
        h, w = (np.array(y.shape) // m) * m
        y, yn = y[:h, :w], yn[:h, :w]
        # distsub_est_m: corrDn(..., 'reflect1', [M M], [2 2], size - ceil(M/2) + 1), 1-based
        winsize = 2 ** math.ceil((sub - 1) / 6) + 1
        win = np.ones((winsize, winsize))

        def corr(img, f, h=h, w=w):
            return ndimage.correlate(img, f, mode="mirror")[1 : h - 1 : m, 1 : w - 1 : m]

        mean_x, mean_y = corr(y, win / win.sum()), corr(yn, win / win.sum())
        cov_xy = corr(y * yn, win) - win.sum() * mean_x * mean_y
        ss_x = np.maximum(corr(y**2, win) - win.sum() * mean_x**2, 0)
        ss_y = np.maximum(corr(yn**2, win) - win.sum() * mean_y**2, 0)
        g = cov_xy / (ss_x + tol)
        vv = (ss_y - g * cov_xy) / win.sum()
        g[ss_x < tol], vv[ss_x < tol] = 0, ss_y[ss_x < tol]
        g[ss_y < tol], vv[ss_y < tol] = 0, 0
        vv[g < 0] = ss_y[g < 0]
        g[g < 0] = 0
        vv[vv <= tol] = tol
        # refparams_vecgsm: covariance of all overlapping MxM blocks, the s field on the non-overlapping ones
        blocks = np.stack([y[k : h - (m - k - 1), j : w - (m - j - 1)].ravel() for j in range(m) for k in range(m)])
        centred = blocks - blocks.mean(1, keepdims=True)
        cu = centred @ centred.T / blocks.shape[1]
        tiles = np.stack([y[k::m, j::m].ravel() for j in range(m) for k in range(m)])
        ss = ((np.linalg.inv(cu) @ tiles) * tiles).sum(0).reshape(h // m, w // m) / (m * m)
        offset = math.ceil((winsize - 1) / 2 / m)
        g, vv, ss = (a[offset : a.shape[0] - offset, offset : a.shape[1] - offset] for a in (g, vv, ss))
        num += sum(np.log2(1 + g * g * ss * lam / (vv + 1e-10)).sum() for lam in np.linalg.eigvalsh(cu))
    return num / pixels


def test_pyramid_is_pyiqas_in_float64():
    from pyiqa.archs.vif_arch import SteerablePyramidSpace

    image = 255 * torch.cat([photo(97, 0), photo(97, 2)])  # odd size: the subsampled levels round up
    ours = steerable_pyramid(image)
    theirs = SteerablePyramidSpace(image.float(), height=4, order=5, channels=1)[::-1]  # ind2wtree order
    assert len(ours) == len(theirs) == 26 and ours[1].shape[-1] == 13 and all(t.dtype == torch.float64 for t in ours)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and torch.allclose(a, b.double(), atol=5e-3)  # float32 rounding on 0..255


@pytest.mark.parametrize("distortion", ["noise", "blur", "flat patch"])
def test_ifc_matches_a_numpy_port_of_ifcvec(distortion):
    ref = photo(96)
    rng = np.random.default_rng(4)
    if distortion == "noise":
        dist = (ref + 0.05 * torch.from_numpy(rng.standard_normal(ref.shape))).clamp(0, 1)
    elif distortion == "blur":
        dist = torch.from_numpy(ndimage.gaussian_filter(ref[0, 0].numpy(), 1.5))[None, None]
    else:  # flat regions in both: zero-variance windows go through every tolerance branch
        ref, dist = ref.clone(), (ref + 0.02 * torch.from_numpy(rng.standard_normal(ref.shape))).clamp(0, 1)
        ref[..., 20:70, 10:60], dist[..., 30:90, 40:90] = 0.4, 0.7
    pyramids = [[band[0, 0].numpy() for band in steerable_pyramid(255 * t)] for t in (ref, dist)]
    expected = ifcvec_port(*pyramids, pixels=96 * 96)
    assert ifc(dist, ref).item() == pytest.approx(expected, rel=1e-5)
    info = ifc_information(steerable_pyramid(255 * ref), steerable_pyramid(255 * dist))
    assert info.item() / 96**2 == pytest.approx(expected, rel=1e-9)


def test_ifc_falls_with_noise_and_ignores_a_brightness_offset():
    ref = photo(96, 2) * 0.8 + 0.1
    noise = torch.from_numpy(np.random.default_rng(5).standard_normal(ref.shape))
    values = [ifc((ref + s * noise).clamp(0, 1), ref).item() for s in (0.0, 0.01, 0.03, 0.1, 0.3)]
    assert all(a > b for a, b in zip(values, values[1:])) and values[-1] > 0
    noisy = ref + 0.03 * noise.clamp(-2, 2)
    # a constant moves no band-pass coefficient's variance or covariance: the channel estimate is unchanged
    assert ifc(noisy + 0.05, ref).item() == pytest.approx(ifc(noisy, ref).item(), rel=1e-6)


def test_ifc_of_a_flat_image_is_zero_and_batches_are_per_image():
    ref, flat = photo(80), torch.full((1, 1, 80, 80), 0.5, dtype=torch.float64)
    assert ifc(flat, ref).item() == 0.0  # no output variance: no gain, no information passes
    assert ifc(ref, flat).item() == 0.0  # nothing to pass: the reference's s field is 0
    rgb = torch.cat([photo(80, 0), photo(80, 2)]).expand(-1, 3, -1, -1)
    noisy = (rgb + 0.05 * torch.randn_like(rgb)).clamp(0, 1)
    both = ifc(noisy, rgb, border=4, y_channel=True)
    one = ifc(noisy[1:], rgb[1:], border=4, y_channel=True)
    luma = ifc(rgb_to_y(noisy[1:])[..., 4:-4, 4:-4], rgb_to_y(rgb[1:])[..., 4:-4, 4:-4])
    assert both.shape == (2,) and both[1].item() == pytest.approx(one.item(), rel=1e-6)
    assert luma.item() == pytest.approx(one.item(), rel=1e-6)


def test_ifc_accepts_the_sides_the_release_accepts():
    """72 px: ifcvec.m's buildSpyr(im, 4, 'sp5Filters') needs maxPyrHt(size, 9) >= 4, floor(side / 8) >= 9."""
    assert IFC_MIN_SIZE == 72
    x = torch.rand(1, 1, 72, 75)
    assert ifc(x, x).item() > 0
    for shape in ((71, 75), (72, 71), (65, 65)):
        with pytest.raises(UserError, match="at least 72x72"):
            ifc(x[..., : shape[0], : shape[1]], x[..., : shape[0], : shape[1]])
    with pytest.raises(UserError, match="at least 72x72"):
        ifc(x, x, border=1)
    with pytest.raises(UserError, match="one shape"):
        ifc(x, x[..., :-1])
