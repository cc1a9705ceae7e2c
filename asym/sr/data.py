"""Super-resolution training data: where the HR images come from, and (LR, HR) crop pairs made from them.

``load_sr_images`` resolves a source (``builtin``, a folder of HR images, a Hub dataset id or a local dataset path)
into a sequence of HxWx3 arrays (uint8, or uint16 for 16-bit files so no precision is lost). Folders and datasets are
decoded on access rather than kept in memory (DIV2K's 800 training images are ~6.6 GB decoded), but every image is
decoded once at load time, so a broken file is skipped with a warning now instead of crashing training hours later.

``SRPairDataset`` turns those images into ``{"lr", "hr"}`` float crops in [0, 1] (CHW, RGB); the LR crop is a bicubic
downscale of the HR crop unless real LR images are given.

    >>> images = load_sr_images("builtin")
    >>> sample = SRPairDataset(images, scale=4, crop_size=128)[0]
    >>> sample["lr"].shape, sample["hr"].shape
    (torch.Size([3, 32, 32]), torch.Size([3, 128, 128]))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..core.errors import UserError, list_names
from ..core.images import (
    ImageSequence,
    builtin_images,
    image_files,
    open_image_table,
    to_array,
    to_tensor,
)


def load_sr_images(
    dataset_name: str = "builtin", train_data_dir: str | None = None, image_column: str = "image", split: str = "train"
) -> Sequence[np.ndarray]:
    """The HR images of a source, as HxWx3 uint8 (or uint16, for 16-bit files) arrays.

    Args:
        dataset_name: ``"builtin"``: 13 photographs shipped inside scikit-image (``BUILTIN_IMAGES``; grayscale ones as
            RGB). It needs no download and is a smoke-test set, never a benchmark. Otherwise a Hub dataset id or a
            local path ``datasets`` understands: an image folder, a parquet/arrow file, a ``save_to_disk`` folder.
        train_data_dir: a folder of HR images (e.g. ``DIV2K_train_HR``), searched recursively for
            ``IMAGE_EXTENSIONS`` and sorted by path, hidden ones left out (``asym.core.images.image_files``). Takes
            precedence over ``dataset_name`` when given.
        image_column: the image column of a dataset.
        split: the split of a dataset.

    Returns:
        A list (builtin) or an ``ImageSequence`` decoding on access. Unreadable images are skipped with one warning.

    Raises:
        ValueError: the source does not exist, has no (readable) images, or lacks ``image_column``.
    """
    if train_data_dir is not None:
        if not os.path.isdir(train_data_dir):
            what = "is not a folder" if os.path.exists(train_data_dir) else "does not exist"
            raise UserError(f"image folder {train_data_dir} {what} (expected a folder of HR images)")
        return ImageSequence.checked(image_files(train_data_dir), train_data_dir)
    if dataset_name == "builtin":
        return builtin_images()
    table = open_image_table(dataset_name, [image_column], split)
    return ImageSequence.checked([(table, image_column, i) for i in range(len(table))], dataset_name)


def _size(images, index: int) -> tuple[int, int]:
    if isinstance(images, ImageSequence):
        return images.sizes[index]
    image = images[index]
    return (image.height, image.width) if isinstance(image, Image.Image) else np.asarray(image).shape[:2]


def bicubic_downscale(hr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (3, H, W) image downscaled to ``size`` by antialiased bicubic interpolation (Keys, a = -0.5), in [0, 1].

    At its own size (scale 1: autoencoders) the image itself is returned (clamped), not a resampled copy."""
    if tuple(hr.shape[-2:]) == tuple(size):
        return hr.clamp(0, 1)
    return F.interpolate(hr[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0].clamp(0, 1)


def bicubic_upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, 3, h, w) images up-sampled ``scale`` times by PyTorch's bicubic (Keys, a = -0.75, no antialiasing,
    ``align_corners=False``), unclamped: the ``bicubic`` baseline of every table (clamped there) and the skip of the
    generators that learn a residual over it (``tiny``, ``enhancenet``)."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False, antialias=False)


class SRPairDataset(torch.utils.data.Dataset):
    """Aligned (LR, HR) crops: ``{"lr": (3, crop/scale, crop/scale), "hr": (3, crop, crop)}`` floats in [0, 1].

    Without ``lr_images`` the LR crop is the HR crop downscaled by bicubic interpolation with antialiasing
    (``F.interpolate``, clamped to [0, 1]). That is Keys' cubic with a = -0.5 widened by the scale, as in PIL and
    MATLAB's ``imresize``, but not bit-identical to the MATLAB-made LR of DIV2K: borders renormalise the kernel instead
    of mirroring, and nothing is rounded to uint8. Pass the official LR images to train or score on exactly those.

    Training crops are random, then randomly flipped horizontally and rotated by a multiple of 90 degrees (both
    commute with the symmetric bicubic kernel, so the LR is made before them). All randomness comes from torch's RNG,
    so ``torch.manual_seed`` and the DataLoader's worker seeding make it reproducible. Evaluation crops are centred.

    Args:
        images: HR images: PIL images or arrays (e.g. from ``load_sr_images``).
        scale: the upscaling factor (2, 3, 4, ...).
        crop_size: the HR crop side, divisible by ``scale``. Smaller images are skipped with one warning.
        train: random crops and augmentation when True, a deterministic centre crop when False.
        repeat: visits per image per epoch, so that tiny sets fill an epoch.
        lr_images: optional real LR images, one per HR image, each ``(H // scale, W // scale)``.
    """

    def __init__(self, images: Sequence, scale: int, crop_size: int, train: bool = True, repeat: int = 1,
                 lr_images: Sequence | None = None):  # fmt: skip
        if scale < 1 or crop_size < 1 or repeat < 1:
            raise UserError(f"scale ({scale}), crop_size ({crop_size}) and repeat ({repeat}) must be positive")
        if crop_size % scale:
            raise UserError(f"crop size {crop_size} is not divisible by scale {scale}: "
                             f"use a crop size divisible by the scale, e.g. 256 for x4")  # fmt: skip
        if lr_images is not None and len(lr_images) != len(images):
            raise UserError(f"{len(lr_images)} LR images for {len(images)} HR images: expected one per HR image")
        if not len(images):
            raise UserError("no images to crop from")
        self.images, self.lr_images, self.scale, self.crop_size = images, lr_images, scale, crop_size
        self.train, self.repeat = train, repeat
        sizes = [_size(images, i) for i in range(len(images))]
        for i, (h, w) in enumerate(sizes if lr_images is not None else []):
            if _size(lr_images, i) != (h // scale, w // scale):
                raise UserError(f"LR image {i} is {_size(lr_images, i)}, expected {(h // scale, w // scale)} "
                                 f"for an HR image of {(h, w)} at x{scale}")  # fmt: skip
        self.indices = [i for i, (h, w) in enumerate(sizes) if min(h, w) >= crop_size]
        small = [i for i, (h, w) in enumerate(sizes) if min(h, w) < crop_size]
        smallest = "x".join(map(str, min(sizes, key=min)))
        if not self.indices:
            raise UserError(f"all {len(images)} images are smaller than the {crop_size}x{crop_size} crop "
                             f"(the smallest is {smallest}): use a smaller crop size")  # fmt: skip
        if small:
            name = images.name if isinstance(images, ImageSequence) else "#{}".format
            warnings.warn(f"skipped {len(small)} of {len(images)} images smaller than the {crop_size}x{crop_size} "
                          f"crop: {list_names([name(i) for i in small])}", stacklevel=2)  # fmt: skip

    def __len__(self) -> int:
        return len(self.indices) * self.repeat

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i, s, lr_crop = self.indices[index % len(self.indices)], self.scale, self.crop_size // self.scale
        hr = to_array(self.images[i])
        lr_h, lr_w = hr.shape[0] // s, hr.shape[1] // s
        # The crop corner lies on the LR grid, so that real LR images are cut at exactly the matching place.
        if self.train:
            top, left = (int(torch.randint(n - lr_crop + 1, ())) for n in (lr_h, lr_w))
        else:
            top, left = (lr_h - lr_crop) // 2, (lr_w - lr_crop) // 2
        hr = to_tensor(hr[top * s : (top + lr_crop) * s, left * s : (left + lr_crop) * s])
        if self.lr_images is not None:
            lr = to_tensor(to_array(self.lr_images[i])[top : top + lr_crop, left : left + lr_crop])
        else:
            lr = bicubic_downscale(hr, (lr_crop, lr_crop))
        if self.train:
            if torch.rand(()) < 0.5:
                hr, lr = hr.flip(-1), lr.flip(-1)
            k = int(torch.randint(4, ()))
            hr, lr = hr.rot90(k, (-2, -1)), lr.rot90(k, (-2, -1))
        return {"lr": lr.contiguous(), "hr": hr.contiguous()}


class SRImageDataset(torch.utils.data.Dataset):
    """Whole images for SR validation: ``{"lr": (3, H/s, W/s), "hr": (3, H, W), "index": int}`` floats in [0, 1].

    The HR image is cut to a multiple of ``scale`` at its bottom/right (BasicSR's "mod crop"), the LR is its bicubic
    downscale made as in ``SRPairDataset`` (or the given real LR image). Sizes differ between images: batch size 1.
    Scores on whole images are comparable with SR papers' tables; scores on crops are not.
    """

    def __init__(self, images: Sequence, scale: int, lr_images: Sequence | None = None):
        if not len(images):
            raise UserError("no validation images")
        if lr_images is not None and len(lr_images) != len(images):
            raise UserError(f"{len(lr_images)} LR images for {len(images)} HR images: expected one per HR image")
        small = [i for i in range(len(images)) if min(_size(images, i)) < scale]
        if small:
            raise UserError(f"validation image #{small[0]} is smaller than the scale x{scale}")
        self.images, self.lr_images, self.scale = images, lr_images, scale

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        s = self.scale
        hr = to_tensor(self.images[index])
        h, w = hr.shape[-2] // s, hr.shape[-1] // s
        hr = hr[:, : h * s, : w * s]
        if self.lr_images is not None:
            lr = to_tensor(self.lr_images[index])[:, :h, :w]
        else:
            lr = bicubic_downscale(hr, (h, w))
        return {"lr": lr.contiguous(), "hr": hr.contiguous(), "index": index}


def split_train_validation(images: Sequence, num_validation: int, seed: int = 0) -> tuple[Sequence, Sequence]:
    """A deterministic random split into (train, validation), each in the original order.

    Validation gets ``num_validation`` images, but at least one and at most all but one. A single image is used for
    both (a smoke test can still validate; its scores then measure fitting, not generalisation).
    """
    if len(images) < 2:
        return images, images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).tolist()
    count = min(max(num_validation, 1), len(images) - 1)
    parts = sorted(order[count:]), sorted(order[:count])
    if isinstance(images, ImageSequence):
        return images.select(parts[0]), images.select(parts[1])
    return [images[i] for i in parts[0]], [images[i] for i in parts[1]]
