"""Fidelity indices, one value per image, higher is better: PSNR and SSIM (SR papers' monitoring), UQI and IFC (the
robust-loss study's). All take ``(x, y)`` = (output, reference), (B, C, H, W) in [0, 1], crop ``border`` pixels on
each side (the scale factor, as in BasicSR) and score the BT.601 luma ``rgb_to_y`` with ``y_channel=True``.

* ``psnr`` / ``ssim``: RGB by default; SSIM is scikit-image's (Gaussian window, sigma 1.5, as Wang et al.), with the
  window, constants and valid region of BasicSR's ``calculate_ssim``.

* ``uqi``: Wang & Bovik's universal image quality index (IEEE SPL 2002), ``Q = 4 sxy mx my / ((sx² + sy²)(mx² +
  my²))`` over every 8x8 window (sliding, step 1, no padding), averaged. It follows the authors' MATLAB release
  (``img_qi.m``) including its flat windows: both windows flat -> ``2 mx my / (mx² + my²)`` (the luminance term;
  1 for two equal or two black windows). Flatness is detected exactly (window max == min), not from a variance that
  float rounding leaves at 1e-17. ``sewar.uqi`` is not used as the reference: its box filter returns window means
  where the formula needs sums, so it reports, e.g., 0.985 where the formula gives 0.940.
* ``ifc``: Sheikh, Bovik & de Veciana's information fidelity criterion (IEEE TIP 2005), as their ``ifcvec.m``:
  a 4-level, 6-orientation steerable pyramid (``sp5Filters``, ``reflect1`` edges), a vector GSM on 3x3 blocks of
  subbands 4, 7, ..., 25, a per-block gain/noise channel from windows growing with the scale (3x3 to 17x17), and
  ``sum log2(1 + g² s λ / (σv² + 1e-10))`` over blocks and all 9 eigenvalues, divided by the pixel count (the
  release's normalisation, the one SR papers report: 2.43 for bicubic x4 on Set5's baby, where SelfExSR publishes
  2.41). Images are scaled to 0..255 as the release expects. The filter bank and the GSM reference parameters are
  pyiqa's (``vif_arch``: ``sp5_filters``, ``VIF.refparams_vecgsm``); the pyramid and the channel estimate run here
  in float64, as in MATLAB: pyiqa's float32 pyramid agrees to 1e-6 on photographs, but on smooth content its
  rounding noise passes the channel's 1e-15 variance tolerance as signal (a blurred gradient: 18.3 instead of 16.9).

Both take ``(x, y)`` = (output, reference), (B, C, H, W) in [0, 1], crop ``border`` pixels on each side, score the
BT.601 luma with ``y_channel=True`` (the SR papers' way, as ``psnr``) and otherwise average over
channels (the releases take one grayscale image).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import UserError


def _crop(x: torch.Tensor, border: int, min_size: int, what: str) -> torch.Tensor:
    """``x`` without ``border`` pixels on each of its four sides; a UserError if less than ``min_size`` remains."""
    h, w = x.shape[-2:]
    if border < 0 or min(h, w) - 2 * border < min_size:
        raise UserError(
            f"{what}: border {border} does not fit a {h}x{w} image (at least {min_size}x{min_size} pixels must remain "
            f"after cropping {border} on each side)"
        )
    return x[..., border : h - border, border : w - border]


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of (..., 3, H, W) RGB in [0, 1] -> (..., 1, H, W) in [16/255, 235/255], as BasicSR's ``rgb2ycbcr``
    (``y_only``): ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``, not rounded."""
    if x.dim() < 3 or x.shape[-3] != 3:
        raise UserError(f"rgb_to_y needs (..., 3, H, W) RGB images, got shape {tuple(x.shape)}")
    r, g, b = x.unbind(-3)
    return ((16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255).unsqueeze(-3)


def prepare_pair(x: torch.Tensor, y: torch.Tensor, border: int, y_channel: bool, min_size: int, what: str):
    """Checked, cropped float64 copies of output ``x`` (clamped to [0, 1]) and reference ``y``, as luma if asked."""
    if x.dim() != 4 or x.shape != y.shape:
        raise UserError(f"{what} needs two (B, C, H, W) images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if y_channel and x.shape[1] != 3:
        raise UserError(f"{what} with y_channel=True needs RGB images, got {x.shape[1]} channels")
    x = _crop(x.detach(), border, min_size, what).double().clamp(0, 1)
    y = _crop(y.detach(), border, min_size, what).double()
    return (rgb_to_y(x), rgb_to_y(y)) if y_channel else (x, y)


def psnr(x: torch.Tensor, y: torch.Tensor, border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for (B, C, H, W) images in [0, 1] (peak 1), computed in float64.

    ``border`` pixels are cropped on each side; ``y_channel=True`` scores the ``rgb_to_y`` luma (SR papers' Y-PSNR).
    The output ``x`` is clamped to [0, 1] but, unlike BasicSR's uint8 pipeline, neither image is rounded to 8 bits.
    The MSE is floored at 1e-12, so identical images give 120 dB rather than inf.
    """
    a, b = prepare_pair(x, y, border, y_channel, 1, "psnr")
    mse = (a - b).square().mean([1, 2, 3])
    return (-10 * torch.log10(mse.clamp_min(1e-12))).float()


def ssim(x: torch.Tensor, y: torch.Tensor, border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Structural similarity per image, for (B, C, H, W) images in [0, 1]: the mean over channels of scikit-image's
    SSIM (11x11 Gaussian window, sigma 1.5, population covariances, the 5-pixel rim that the window cannot cover
    left out), computed in float64, after cropping ``border`` pixels on each side (at least 11x11 must remain), on
    the ``rgb_to_y`` luma if ``y_channel``. Same window, constants and valid region as BasicSR's ``calculate_ssim``."""
    from skimage.metrics import structural_similarity

    a, b = (t.cpu().numpy() for t in prepare_pair(x, y, border, y_channel, 11, "ssim (11x11 window)"))
    values = [
        structural_similarity(
            p, q, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )  # fmt: skip
        for p, q in zip(a, b)
    ]
    return torch.tensor(np.array(values, dtype=np.float32))


UQI_WINDOW = 8
IFC_BLOCK = 3  # M: the GSM vectors are 3x3 blocks of coefficients
IFC_SUBBANDS = (4, 7, 10, 13, 16, 19, 22, 25)  # 1-based, in ind2wtree order (low-pass first): one orientation skipped
# The smallest side the release accepts: ifcvec.m builds buildSpyr(im, 4, 'sp5Filters', 'reflect1'), and buildSpyr
# refuses more levels than maxPyrHt(size(im), 9) (sp5Filters' 9x9 lofilt: one level per halving that leaves a side of
# at least 9), so 4 levels need floor(side / 8) >= 9. Sides of 65 to 71 would still leave every subband a 3x3 block,
# but their IFC has no reference value: the release stops there.
IFC_MIN_SIZE = 72
_TOL = 1e-15  # ifcvec's tolerance for zero variance


def _window_sums(t: torch.Tensor, k: int) -> torch.Tensor:
    """Sums over every k x k window (valid positions only)."""
    return F.avg_pool2d(t, k, stride=1) * (k * k)


def _flat(t: torch.Tensor, k: int) -> torch.Tensor:
    """Whether each k x k window of ``t`` holds a single value."""
    return F.max_pool2d(t, k, stride=1) == -F.max_pool2d(-t, k, stride=1)


def uqi_map(a: torch.Tensor, b: torch.Tensor, window: int = UQI_WINDOW) -> torch.Tensor:
    """The quality map of ``img_qi.m``: Q of every ``window`` x ``window`` window, (B, C, H - w + 1, W - w + 1)."""
    n = window * window
    sa, sb = _window_sums(a, window), _window_sums(b, window)
    flat_a, flat_b = _flat(a, window), _flat(b, window)
    var_a = (n * _window_sums(a * a, window) - sa * sa).clamp_min(0).masked_fill(flat_a, 0)  # n² σ²
    var_b = (n * _window_sums(b * b, window) - sb * sb).clamp_min(0).masked_fill(flat_b, 0)
    cov = (n * _window_sums(a * b, window) - sa * sb).masked_fill(flat_a | flat_b, 0)  # n² σxy
    means = sa * sb  # n² mx my
    squares = sa * sa + sb * sb  # n² (mx² + my²)
    spread = var_a + var_b  # img_qi.m's denominator1
    q = torch.ones_like(spread)
    flat = (spread == 0) & (squares != 0)
    q = torch.where(flat, 2 * means / squares.masked_fill(~flat, 1), q)
    defined = spread * squares != 0
    return torch.where(defined, 4 * cov * means / (spread * squares).masked_fill(~defined, 1), q)


def uqi(x: torch.Tensor, y: torch.Tensor, border: int = 0, y_channel: bool = False, window: int = UQI_WINDOW):
    """Universal image quality index per image (B,), in [-1, 1], 1 for identical images; computed in float64."""
    a, b = prepare_pair(x, y, border, y_channel, window, f"uqi ({window}x{window} window)")
    return uqi_map(a, b, window).mean((1, 2, 3)).float()


# --- IFC ----------------------------------------------------------------------------------------------------------


def _correlate(t: torch.Tensor, filters: np.ndarray, step: int = 1) -> torch.Tensor:
    """``corrDn`` with ``reflect1`` edges: the correlation (no flip) of (N, 1, H, W) float64 ``t`` with each of the
    odd-sized (F, k, k) ``filters`` at every ``step``-th pixel from the first, (N, F, ceil(H / step), ...)."""
    kernel = torch.as_tensor(np.ascontiguousarray(filters), dtype=t.dtype, device=t.device)
    kernel = kernel.reshape(-1, 1, *filters.shape[-2:])
    pad = (kernel.shape[-1] - 1) // 2
    return F.conv2d(F.pad(t, (pad, pad, pad, pad), mode="reflect"), kernel, stride=step)


def steerable_pyramid(image: torch.Tensor, height: int = 4) -> list[torch.Tensor]:
    """``buildSpyr(image, height, 'sp5Filters', 'reflect1')`` of (N, 1, H, W) float64 images in ``ind2wtree`` order:
    the low-pass residual first, then each level's 6 orientation bands from the coarsest level to the finest, the
    high-pass residual last."""
    from pyiqa.archs.vif_arch import sp5_filters

    filters = sp5_filters()
    side = math.isqrt(filters["bfilts"].shape[0])
    oriented = np.stack([f.reshape(side, side).T for f in filters["bfilts"].T])  # MATLAB's column-major reshape
    bands = [_correlate(image, filters["hi0filt"])]
    low = _correlate(image, filters["lo0filt"])
    for _ in range(height):
        bands += list(_correlate(low, oriented).split(1, dim=1))
        low = _correlate(low, filters["lofilt"], step=2)
    return [*bands, low][::-1]


def _window_size(subband: int) -> int:
    """The side of the channel-estimation window of a 1-based subband: 3 at the coarsest level up to 17."""
    return 2 ** math.ceil((subband - 1) / 6) + 1


def _channel(ref: torch.Tensor, dist: torch.Tensor, subband: int, m: int = IFC_BLOCK):
    """``distsub_est_m``: the gain g and noise variance σv² of ``dist = g ref + v`` around each m x m block."""
    h, w = (s // m * m for s in ref.shape[-2:])
    ref, dist = ref[..., :h, :w], dist[..., :h, :w]
    k = _window_size(subband)
    n, pad = k * k, k // 2
    rows, cols = len(range(m // 2, h - math.ceil(m / 2) + 1, m)), len(range(m // 2, w - math.ceil(m / 2) + 1, m))

    def window_mean(t: torch.Tensor) -> torch.Tensor:  # over the k x k window (reflect1 edges) centred on each block
        padded = F.pad(t, (pad, pad, pad, pad), mode="reflect")[..., m // 2 :, m // 2 :]
        return F.avg_pool2d(padded, k, stride=m)[..., :rows, :cols]

    mean_x, mean_y = window_mean(ref), window_mean(dist)
    cov = n * (window_mean(ref * dist) - mean_x * mean_y)
    ss_x = (n * (window_mean(ref * ref) - mean_x**2)).clamp_min(0)
    ss_y = (n * (window_mean(dist * dist) - mean_y**2)).clamp_min(0)
    g = cov / (ss_x + _TOL)
    vv = (ss_y - g * cov) / n
    flat_x, flat_y = ss_x < _TOL, ss_y < _TOL
    g, vv = g.masked_fill(flat_x, 0), torch.where(flat_x, ss_y, vv)
    g, vv = g.masked_fill(flat_y, 0), vv.masked_fill(flat_y, 0)
    vv, g = torch.where(g < 0, ss_y, vv), g.clamp_min(0)
    return g, vv.masked_fill(vv <= _TOL, _TOL)


def ifc_information(ref: list[torch.Tensor], dist: list[torch.Tensor], m: int = IFC_BLOCK) -> torch.Tensor:
    """``ifcvec.m``'s unnormalised sum: the information (bits) that the distorted subbands share with the reference
    ones, per image (N,), from two ``steerable_pyramid`` s of (N, 1, H, W) images."""
    from pyiqa.archs.vif_arch import VIF

    gsm = VIF()  # its refparams_vecgsm reads the subbands and M of ifcvec from here
    gsm.M, gsm.subbands = m, list(IFC_SUBBANDS)
    ss_all, eigenvalues, _ = gsm.refparams_vecgsm(ref)  # s field and eigenvalues of the 3x3-block covariance
    total = ref[0].new_zeros(ref[0].shape[0])
    for i, subband in enumerate(IFC_SUBBANDS):
        g, vv = _channel(ref[subband - 1], dist[subband - 1], subband, m)
        ss = ss_all[i]
        offset = math.ceil((_window_size(subband) - 1) / 2 / m)  # blocks near the border are left out
        crop = (..., slice(offset, ss.shape[-2] - offset), slice(offset, ss.shape[-1] - offset))
        g, vv, ss = g[crop], vv[crop], ss[crop]
        lam = eigenvalues[i][:, :, None, None, :]  # (N, 1, 1, 1, M²)
        info = torch.log2(1 + (g * g * ss / (vv + 1e-10))[..., None] * lam)
        total = total + info.sum((1, 2, 3, 4))
    return total


def ifc(x: torch.Tensor, y: torch.Tensor, border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Information fidelity criterion per image (B,): bits per pixel that the output ``x`` carries about the
    reference ``y``, computed in float64 on 0..255. 0 when none passes (a flat output); unbounded above, and not
    maximal for ``x == y``: a contrast-stretched copy (gain above 1) scores higher still.

    Raises:
        UserError: shapes differ, or less than ``IFC_MIN_SIZE`` pixels per side remain after cropping ``border``.
    """
    a, b = prepare_pair(
        x, y, border, y_channel, IFC_MIN_SIZE, f"ifc (images of at least {IFC_MIN_SIZE}x{IFC_MIN_SIZE})"
    )
    batch, channels, h, w = a.shape
    pyramid = steerable_pyramid(255 * torch.cat([a, b]).reshape(2 * batch * channels, 1, h, w))
    dist, ref = zip(*(band.chunk(2) for band in pyramid))
    return (ifc_information(ref, dist) / (h * w)).reshape(batch, channels).mean(1).float()


__all__ = [
    "IFC_MIN_SIZE",
    "ifc",
    "ifc_information",
    "prepare_pair",
    "psnr",
    "rgb_to_y",
    "ssim",
    "steerable_pyramid",
    "uqi",
    "uqi_map",
]
