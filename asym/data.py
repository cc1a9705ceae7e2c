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

import io
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .errors import UserError, summarize

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# skimage.data photographs that ship inside the wheel (others need a pooch download); all at least 300x300.
BUILTIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
                  "stereo_motorcycle", "coins", "camera", "moon", "brick", "grass", "gravel")  # fmt: skip


def _to_array(image) -> np.ndarray:
    """A PIL image or an HxW / HxWx1 / HxWx3 array as an HxWx3 array (uint8, uint16 or float in [0, 1]).

    16-bit grayscale stays uint16 (PIL's own ``convert("RGB")`` would clip it at 255). Transparent images are
    composited over white: the colour stored under fully transparent pixels is arbitrary, white is what viewers show.
    """
    if isinstance(image, Image.Image):
        if image.mode.startswith("I"):  # 16-bit grayscale ("I;16*"), or 32-bit "I" holding 16-bit values
            image = np.asarray(image).clip(0, 65535).astype(np.uint16)
        elif image.mode == "F":
            image = np.asarray(image, dtype=np.float32).clip(0, 1)
        elif "A" in image.getbands() or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = np.asarray(Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB"))
        else:
            image = np.asarray(image.convert("RGB"))  # grayscale, palette, CMYK, ...; 48-bit PNGs arrive as 8-bit
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"expected an HxWx3 RGB image, got an array of shape {image.shape}")
    return image


def to_tensor(image) -> torch.Tensor:
    """A PIL image or array as a (3, H, W) float tensor in [0, 1]; integer types are scaled by their maximum."""
    array = _to_array(image)
    if array.dtype.kind in "ui":
        scaled = array.astype(np.float32) / np.iinfo(array.dtype).max
    else:
        scaled = array.astype(np.float32).clip(0, 1)
    return torch.from_numpy(np.ascontiguousarray(scaled)).permute(2, 0, 1)


def _decode(source) -> np.ndarray:
    """Decode a file path, or a ``(dataset, column, row)`` triple whose cell holds encoded bytes or a path."""
    if isinstance(source, tuple):
        dataset, column, row = source
        cell = dataset[row][column]
        source = io.BytesIO(cell["bytes"]) if cell["bytes"] else cell["path"]
    with Image.open(source) as image:
        return _to_array(ImageOps.exif_transpose(image))


def _shape_or_none(source) -> tuple[int, int] | None:
    try:
        return _decode(source).shape[:2]
    except (OSError, SyntaxError, ValueError):  # PIL reports broken files with all three
        return None


def _name(source) -> str:
    """A file path as is; a dataset row by its stored path, else its number."""
    if isinstance(source, tuple):
        dataset, column, row = source
        return dataset[row][column]["path"] or f"row {row}"
    return source


def _list_names(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class ImageSequence(Sequence):
    """Images decoded on access, as HxWx3 uint8/uint16 arrays; their ``sizes`` (H, W) are known up front."""

    def __init__(self, sources: list, sizes: list[tuple[int, int]]):
        self.sources, self.sizes = sources, sizes

    @classmethod
    def checked(cls, sources: list, what: str) -> ImageSequence:
        """Decode every source once (in threads) to learn its size; skip the unreadable ones with one warning."""
        if not sources:
            raise UserError(f"{what} has no images (expected {'/'.join(IMAGE_EXTENSIONS)} files or an image column)")
        with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
            shapes = list(pool.map(_shape_or_none, sources))
        keep = [i for i, shape in enumerate(shapes) if shape is not None]
        bad = [_name(source) for source, shape in zip(sources, shapes) if shape is None]
        if not keep:
            raise UserError(f"none of the {len(sources)} images in {what} could be read (e.g. {_list_names(bad, 3)})")
        if bad:
            warnings.warn(
                f"{what}: skipped {len(bad)} of {len(sources)} images (unreadable: {_list_names(bad)})", stacklevel=3
            )
        return cls([sources[i] for i in keep], [tuple(shapes[i]) for i in keep])

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> np.ndarray:
        return _decode(self.sources[index])

    def name(self, index: int) -> str:
        return _name(self.sources[index])

    def select(self, indices: Sequence[int]) -> ImageSequence:
        return ImageSequence([self.sources[i] for i in indices], [self.sizes[i] for i in indices])


def _builtin_images() -> list[np.ndarray]:
    import skimage.data

    images = [getattr(skimage.data, name)() for name in BUILTIN_IMAGES]
    return [_to_array(image[0] if isinstance(image, tuple) else image) for image in images]  # stereo: left view


def is_saved_dataset(path: str) -> bool:
    """Whether ``path`` is a folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return any(os.path.isfile(os.path.join(path, f)) for f in ("state.json", "dataset_dict.json"))


def open_image_table(name: str, image_columns: Sequence[str], split: str, value_columns: Sequence[str] = ()):
    """A Hub id or local ``datasets`` path as a table of ``image_columns`` kept encoded (bytes or paths, decoded on
    access by ``_decode``) and ``value_columns`` as stored. Local paths: a ``save_to_disk`` folder, a parquet/arrow
    file, or anything ``datasets.load_dataset`` reads (image folders, folders of data files).

    Raises:
        UserError: the dataset cannot be found or read, lacks ``split`` or a column, or an image column holds no
            images.
    """
    import datasets

    if name.startswith((".", "/", "~")) and not os.path.exists(os.path.expanduser(name)):
        raise UserError(f"dataset {name} does not exist (a local path; Hub ids look like owner/name)")
    if is_saved_dataset(name):
        try:
            dataset = datasets.load_from_disk(name)
        except (OSError, ValueError, datasets.exceptions.DatasetsError) as err:
            raise UserError(f"{name} is an unreadable saved dataset ({summarize(err)})") from err
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise UserError(f"{name} has no split {split!r}; available: {', '.join(dataset)}")
            dataset = dataset[split]
    else:
        # A single parquet/arrow file needs its builder named; datasets resolves Hub ids and folders itself.
        builder = {".parquet": "parquet", ".arrow": "arrow"}.get(os.path.splitext(name)[1].lower())
        source = {"path": builder, "data_files": name} if builder and os.path.isfile(name) else {"path": name}
        try:
            dataset = datasets.load_dataset(**source, split=split)
        except (ConnectionError, FileNotFoundError) as err:
            raise UserError(f"could not load {name!r}: not a local dataset, nor reachable on the Hub ({err})") from err
        except (OSError, ValueError, datasets.exceptions.DatasetsError, datasets.data_files.EmptyDatasetError) as err:
            # pyarrow's ArrowInvalid is a ValueError: a corrupt or foreign data file
            raise UserError(f"dataset {name} cannot be read ({summarize(err)})") from err
    image_columns = list(dict.fromkeys(image_columns))
    for column in (*image_columns, *value_columns):
        if column not in dataset.column_names:
            raise UserError(f"{name} has no column {column!r}; available: {', '.join(dataset.column_names)}")
    for column in image_columns:
        if not isinstance(dataset.features[column], datasets.Image):
            raise UserError(f"column {column!r} of {name} is {dataset.features[column]}, not an Image")
    dataset = dataset.select_columns(list(dict.fromkeys([*image_columns, *value_columns])))
    for column in image_columns:
        dataset = dataset.cast_column(column, datasets.Image(decode=False))
    return dataset


def load_sr_images(
    dataset_name: str = "builtin", train_data_dir: str | None = None, image_column: str = "image", split: str = "train"
) -> Sequence[np.ndarray]:
    """The HR images of a source, as HxWx3 uint8 (or uint16, for 16-bit files) arrays.

    Args:
        dataset_name: ``"builtin"``: 13 photographs shipped inside scikit-image (``BUILTIN_IMAGES``; grayscale ones as
            RGB). It needs no download and is a smoke-test set, never a benchmark. Otherwise a Hub dataset id or a
            local path ``datasets`` understands: an image folder, a parquet/arrow file, a ``save_to_disk`` folder.
        train_data_dir: a folder of HR images (e.g. ``DIV2K_train_HR``), searched recursively for
            ``IMAGE_EXTENSIONS`` and sorted by path. Takes precedence over ``dataset_name`` when given.
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
        paths = sorted(
            os.path.join(root, file)
            for root, _, files in os.walk(train_data_dir)
            for file in files
            if file.lower().endswith(IMAGE_EXTENSIONS)
        )
        return ImageSequence.checked(paths, train_data_dir)
    if dataset_name == "builtin":
        return _builtin_images()
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
                          f"crop: {_list_names([name(i) for i in small])}", stacklevel=2)  # fmt: skip

    def __len__(self) -> int:
        return len(self.indices) * self.repeat

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i, s, lr_crop = self.indices[index % len(self.indices)], self.scale, self.crop_size // self.scale
        hr = _to_array(self.images[i])
        lr_h, lr_w = hr.shape[0] // s, hr.shape[1] // s
        # The crop corner lies on the LR grid, so that real LR images are cut at exactly the matching place.
        if self.train:
            top, left = (int(torch.randint(n - lr_crop + 1, ())) for n in (lr_h, lr_w))
        else:
            top, left = (lr_h - lr_crop) // 2, (lr_w - lr_crop) // 2
        hr = to_tensor(hr[top * s : (top + lr_crop) * s, left * s : (left + lr_crop) * s])
        if self.lr_images is not None:
            lr = to_tensor(_to_array(self.lr_images[i])[top : top + lr_crop, left : left + lr_crop])
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
