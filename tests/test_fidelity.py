"""PSNR, SSIM, UQI and IFC (asym.metrics.fidelity) against references computed independently of asym.

PSNR / SSIM: BasicSR's Y written out by hand, scikit-image and pyiqa; asym's PSNR/SSIM are returned as float32, i.e.
rounded to 2**-24 relative (F32_ROUND).

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

from asym.core.errors import UserError
from asym.core.images import to_tensor
from asym.metrics import psnr, rgb_to_y, ssim
from asym.metrics.fidelity import IFC_MIN_SIZE, IFC_SUBBANDS, ifc, ifc_information, steerable_pyramid, uqi
from asym.sr.data import load_sr_images

EPS64 = np.finfo(np.float64).eps
F32_ROUND = 2.0**-24  # relative rounding of a float64 result to float32
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


# --- PSNR, SSIM ------------------------------------------------------------------------------------------------------


def image_pair(shape=(2, 3, 48, 40), seed=0, positive=False):
    """Reference and distorted float32 images in [0, 1], H != W so that a swapped crop would show. ``positive``:
    the distortion raises every channel of every pixel (R, G, B differences share a sign)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(shape, generator=g)
    noise = 0.05 * torch.rand(shape, generator=g) if positive else 0.05 * torch.randn(shape, generator=g)
    return (y + noise).clamp(0, 1), y


def hand_y(images: np.ndarray) -> np.ndarray:
    """BasicSR's rgb2ycbcr(y_only=True) luma for (..., 3, H, W) RGB in [0, 1], written out in float64."""
    r, g, b = images[..., 0, :, :], images[..., 1, :, :], images[..., 2, :, :]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def hand_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def test_rgb_to_y_on_known_colours():
    colours = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    y = rgb_to_y(colours.reshape(5, 3, 1, 1)).flatten()
    expected = torch.tensor([16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966], dtype=torch.float64) / 255
    torch.testing.assert_close(y, expected, rtol=10 * EPS64, atol=0)
    assert rgb_to_y(torch.rand(2, 3, 5, 7)).shape == (2, 1, 5, 7)
    with pytest.raises(UserError, match="3, H, W"):
        rgb_to_y(torch.rand(2, 1, 5, 7))


@pytest.mark.parametrize("border", [0, 4])
def test_rgb_psnr_and_ssim_equal_scikit_image(border):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    x, y = image_pair()
    crop = (slice(None), slice(None), slice(border, 48 - border), slice(border, 40 - border))
    a, b = x[crop].double().numpy(), y[crop].double().numpy()
    n = a[0].size
    tol = F32_ROUND + 10 * n * EPS64  # float32 output; float64 sums over n values, in another order
    for i in range(2):
        expected_psnr = peak_signal_noise_ratio(b[i], a[i], data_range=1.0)
        assert psnr(x, y, border=border)[i].item() == pytest.approx(expected_psnr, rel=tol)
        expected_ssim = structural_similarity(
            b[i].transpose(1, 2, 0), a[i].transpose(1, 2, 0), channel_axis=-1, data_range=1.0,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )  # fmt: skip
        assert ssim(x, y, border=border)[i].item() == pytest.approx(expected_ssim, rel=tol)


@pytest.mark.parametrize("border", [0, 4])
def test_y_psnr_and_ssim_equal_basicsr_formula_by_hand(border):
    from skimage.metrics import structural_similarity

    x, y = image_pair()
    crop = (slice(None), slice(None), slice(border, 48 - border), slice(border, 40 - border))
    ya, yb = hand_y(x[crop].double().numpy()), hand_y(y[crop].double().numpy())
    tol = F32_ROUND + 10 * ya[0].size * EPS64
    for i in range(2):
        assert psnr(x, y, border, y_channel=True)[i].item() == pytest.approx(hand_psnr(ya[i], yb[i]), rel=tol)
        expected = structural_similarity(
            yb[i], ya[i], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert ssim(x, y, border, y_channel=True)[i].item() == pytest.approx(expected, rel=tol)
    assert (psnr(x, y, border, y_channel=True) != psnr(x, y, border)).all()  # the option does change the channel


# pyiqa 0.1.16 versus BasicSR (the SR papers' convention, which asym follows):
# * test_y_channel=True converts with color_space="yiq" by default: Y = 0.299 R + 0.587 G + 0.114 B (full range, no
#   16 offset, no 219/255 scale). BasicSR's Y needs color_space="ycbcr".
# * PSNR: 10 log10(1 / (mse + 1e-8)) (BasicSR: no eps) and no rounding for data_range 1: comparable.
# * SSIM (the SSIM class) works on data_range 255 and rounds the channel(s) to integers ("as MATLAB", i.e. uint8 Y);
#   BasicSR keeps Y unrounded. It also clamps negative contrast-structure values to 0 (relu), and rounds its Gaussian
#   window to float32, which moves SSIM by up to ~1e-4 in the worst case (|d sigma^2| <= 3 * 2**-24 * 255^2 against
#   C2 = 58.5). Its MATLAB-style downsampling is off by default, as in BasicSR. So SSIM is compared on grey images
#   whose Y is already an integer (R = G = B = k/219 gives 255 Y = 16 + 219 k/219 = 16 + k), with distortions small
#   enough to keep local structure positively correlated, through pyiqa's ssim function (its formula, constants and
#   valid-region mean) with a float64 window, rather than through the SSIM class.
# * pyiqa's registered "ssim" and "psnry" metrics are therefore YIQ-luma numbers (SSIM on rounded Y), not BasicSR's.


def test_y_psnr_equals_pyiqa_with_ycbcr():
    from pyiqa.archs.psnr_arch import PSNR

    border = 4
    x, y = image_pair(positive=True)
    x, y = x.double(), y.double()  # float64 in pyiqa too, so that only its float32 colour weights round
    crop = (slice(None), slice(None), slice(border, 48 - border), slice(border, 40 - border))
    ya, yb = hand_y(x[crop].numpy()), hand_y(y[crop].numpy())
    mse = ((ya - yb) ** 2).mean(axis=(1, 2))
    reference = PSNR(test_y_channel=True, color_space="ycbcr", crop_border=border)(x, y)
    # pyiqa's 65.481, 128.553, 24.966 are float32: each Y difference is off by <= 2**-24 of itself when the R, G, B
    # differences share a sign (positive=True), so the mse by <= 2 * 2**-24 relative; its +1e-8 eps lowers PSNR by
    # 10 log10(1 + 1e-8 / mse); then float64 sums and our float32 output.
    for i in range(2):
        db_per_rel = 10 / np.log(10)
        tol = db_per_rel * (2.1 * F32_ROUND + 10 * ya[i].size * EPS64) + 40 * F32_ROUND
        expected = reference[i].item() + 10 * np.log10(1 + 1e-8 / mse[i])
        ours = psnr(x.float(), y.float(), border, y_channel=True)[i].item()
        assert ours < 40 and ours == pytest.approx(expected, abs=tol)
        assert expected == pytest.approx(hand_psnr(ya[i], yb[i]), abs=tol)
    # pyiqa's default colour space is not BasicSR's: a different number.
    default = PSNR(test_y_channel=True, crop_border=border)(x, y)
    assert (default - reference).abs().min() > 0.1


def test_rgb_psnr_equals_pyiqa():
    from pyiqa.archs.psnr_arch import PSNR

    x, y = image_pair()
    reference = PSNR(test_y_channel=False, crop_border=4)(x.double(), y.double())
    diff = (x.double() - y.double())[..., 4:-4, 4:-4]
    expected = reference + 10 * torch.log10(1 + 1e-8 / diff.square().mean((1, 2, 3)))  # undo pyiqa's eps
    ours = psnr(x, y, border=4).double()
    assert (ours < 40).all()  # for the float32 rounding term below
    tol = 10 / np.log(10) * 10 * diff[0].numel() * EPS64 + 40 * F32_ROUND  # float64 sums, our float32 output
    torch.testing.assert_close(ours, expected, rtol=0, atol=tol)


def test_y_ssim_of_grey_images_equals_pyiqa():
    from pyiqa.archs.ssim_arch import ssim as pyiqa_ssim
    from pyiqa.utils.color_util import to_y_channel

    border = 3
    g = torch.Generator().manual_seed(1)
    levels_y = torch.randint(20, 200, (2, 1, 40, 36), generator=g)
    levels_x = (levels_y + torch.randint(-6, 7, levels_y.shape, generator=g)).clamp(0, 219)
    y, x = (levels.double().expand(-1, 3, -1, -1) / 219 for levels in (levels_y, levels_x))
    i, j = np.mgrid[-5:6, -5:6]
    window = np.exp(-(i * i + j * j) / (2 * 1.5**2))
    window = torch.from_numpy(window / window.sum()).reshape(1, 1, 11, 11)  # Wang et al.'s window, in float64
    crop = (slice(None), slice(None), slice(border, 40 - border), slice(border, 36 - border))
    ya, yb = (to_y_channel(t[crop], 255, "ycbcr") for t in (x, y))  # pyiqa's rounded 0..255 luma
    torch.testing.assert_close(ya, 16 + levels_x[crop].double(), rtol=0, atol=0)  # rounding did nothing
    reference = pyiqa_ssim(ya, yb, win=window, data_range=255)
    # Both sides in float64: sigma = E[v^2] - mu^2 over 121 weights loses ~121 * EPS64 * 255^2 ~ 2e-9 absolute,
    # against C2 = (0.03 * 255)^2 = 58.5 in the denominators; then our float32 output.
    tol = F32_ROUND + 1e-9
    torch.testing.assert_close(ssim(x.float(), y.float(), border, y_channel=True).double(), reference, rtol=0, atol=tol)


@pytest.mark.parametrize("y_channel", [False, True])
def test_border_is_cropped_exactly_on_all_four_sides(y_channel):
    border = 4
    _, y = image_pair()
    strips = {
        "top": (slice(None), slice(None), slice(0, border)),
        "bottom": (slice(None), slice(None), slice(48 - border, 48)),
        "left": (slice(None), slice(None), slice(None), slice(0, border)),
        "right": (slice(None), slice(None), slice(None), slice(40 - border, 40)),
    }
    for side, strip in strips.items():
        x = y.clone()
        x[strip] = 1 - x[strip]  # corrupt only this border strip
        with_border = psnr(x, y, border, y_channel)
        assert (with_border == 120).all(), side  # identical after the crop: the 1e-12 MSE floor, 120 dB
        assert (psnr(x, y, 0, y_channel) < 40).all(), side  # without the crop the corruption counts
        assert ssim(x, y, border, y_channel).tolist() == pytest.approx([1, 1], abs=F32_ROUND), side
        assert (ssim(x, y, 0, y_channel) < 1 - 1e-3).all(), side
    x = y.clone()
    x[..., border, border:-border] = 0.5  # the first row inside the crop must still count
    assert (psnr(x, y, border, y_channel) < 120).all()


def test_bad_border_or_shapes_are_user_errors():
    x, y = image_pair(shape=(1, 3, 20, 30))
    assert psnr(x, y, border=9).shape == (1,)  # 2 x 12 pixels remain
    with pytest.raises(UserError, match="border 10 does not fit a 20x30 image"):
        psnr(x, y, border=10)  # nothing would remain: not an empty mean (NaN)
    with pytest.raises(UserError, match="border -1"):
        psnr(x, y, border=-1)
    with pytest.raises(UserError, match="11x11"):
        ssim(x, y, border=5)  # 10 x 20 pixels: smaller than SSIM's window
    with pytest.raises(UserError, match="one shape"):
        psnr(x, y[..., :-1])
    with pytest.raises(UserError, match="one shape"):
        psnr(x, torch.cat([y, y]))  # would broadcast
    with pytest.raises(UserError, match="RGB"):
        ssim(x[:, :1], y[:, :1], y_channel=True)


def test_psnr_and_ssim_basic_properties():
    x, y = image_pair()
    expected = -10 * torch.log10(((x.double() - y.double()) ** 2).mean([1, 2, 3]))
    torch.testing.assert_close(psnr(x, y).double(), expected, rtol=F32_ROUND + 10 * x[0].numel() * EPS64, atol=0)
    assert psnr(y, y).tolist() == [120, 120]
    assert torch.allclose(ssim(y, y), torch.ones(2)) and (ssim(x, y) < 1).all()
    assert psnr(x, y).dtype == ssim(x, y).dtype == torch.float32
