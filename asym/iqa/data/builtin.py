"""The ``builtin`` FR set: photographs shipped inside scikit-image with graded synthetic distortions and a fixed
pseudo-MOS (``pseudo_mos``). A smoke-test set that needs no download, never a benchmark; apart from the release
readers because it reads no user files.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from asym.core.images import to_array

from .dataset import FRItem, Scores

# builtin: skimage.data photographs that need no download; distortion -> 4 parameter levels (mild to strong).
BUILTIN_FR_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "brick", "grass")
BUILTIN_SIZE = 192
DISTORTIONS = {
    "blur": (0.5, 1.0, 2.0, 4.0),  # Gaussian sigma, pixels
    "noise": (5.0, 10.0, 20.0, 40.0),  # Gaussian noise std, on the 0..255 scale
    "jpeg": (60, 30, 15, 5),  # PIL JPEG quality
    "contrast": (0.8, 0.6, 0.4, 0.2),  # contrast kept: x -> mean + c (x - mean)
    "color": (0.05, 0.1, 0.2, 0.4),  # channel gain g: R * (1 + g), B * (1 - g)
}
SEVERITY = {"blur": 1.0, "noise": 0.9, "jpeg": 0.95, "contrast": 0.7, "color": 0.6}
BUILTIN_WHY = "builtin pseudo-MOS: 100 - 20 x level x severity"  # the builtin set's direction, FR and NR alike


def _square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize (PIL bicubic) to ``size`` x ``size``."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(image[top : top + side, left : left + side])
    return np.asarray(crop.resize((size, size), Image.BICUBIC))


def _distort(image: np.ndarray, kind: str, value: float, seed: int) -> np.ndarray:
    """One synthetic distortion of a uint8 HxWx3 image, as uint8."""
    if kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(value))
        return np.asarray(Image.open(buffer).convert("RGB"))
    x = image.astype(np.float64)
    if kind == "blur":
        from scipy.ndimage import gaussian_filter

        x = gaussian_filter(x, sigma=(value, value, 0), mode="reflect")
    elif kind == "noise":
        x = x + np.random.default_rng(seed).normal(0.0, value, x.shape)
    elif kind == "contrast":
        mean = x.mean(axis=(0, 1), keepdims=True)
        x = mean + value * (x - mean)
    elif kind == "color":
        x = x * np.array([1 + value, 1.0, 1 - value])
    else:
        raise ValueError(f"unknown distortion {kind!r}; known: {', '.join(DISTORTIONS)}")
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def pseudo_mos(kind: str, level: int) -> float:
    """The builtin set's score: ``mos = 100 - 20 * level * SEVERITY[kind]``, level 1 (mild) .. 4 (strong).

    Higher is better. It falls with the level inside each distortion type, and ``SEVERITY`` (blur 1.0, jpeg 0.95,
    noise 0.9, contrast 0.7, color 0.6) puts the types on one scale (a level-4 blur scores 20, a level-1 color shift
    88). It is a fixed design choice, independent of every metric, so correlations on it measure nothing but
    agreement with this ranking: a smoke test, not a benchmark.
    """
    return 100.0 - 20.0 * level * SEVERITY[kind]


def builtin_fr_items() -> list[FRItem]:
    """The builtin triplets: ``BUILTIN_FR_IMAGES`` (skimage.data, grayscale as RGB), each centre-cropped and resized
    to 192x192, times the 5 ``DISTORTIONS`` at 4 levels: 8 x 5 x 4 = 160 items scored by ``pseudo_mos``.

    Deterministic: the noise is seeded per (image, level). Images are kept in memory as uint8 arrays. Keys name
    the item: ``astronaut/blur-1``.
    """
    import skimage.data

    items = []
    for i, name in enumerate(BUILTIN_FR_IMAGES):
        ref = _square(to_array(getattr(skimage.data, name)()), BUILTIN_SIZE)
        for kind, values in DISTORTIONS.items():
            for level, value in enumerate(values, start=1):
                dist = _distort(ref, kind, value, seed=1000 * i + level)
                items.append(FRItem(dist, ref, pseudo_mos(kind, level), name, key=f"{name}/{kind}-{level}"))
    return items


def read_builtin() -> Scores:
    """The builtin set as the loaders take every source (``Scores``): ``builtin_fr_items``, higher is better, and
    why (``BUILTIN_WHY``). The FR loader uses it as is, the NR one reads its distorted images."""
    return Scores(builtin_fr_items(), False, BUILTIN_WHY)
