"""Image files and image tables, decoded on access into HxWx3 arrays (uint8, uint16 for 16-bit files).

``decode`` reads a file path or a ``(table, column, row)`` cell of a ``datasets`` table (``open_image_table``);
``to_array`` / ``to_tensor`` turn PIL images and arrays into RGB arrays / (3, H, W) floats in [0, 1];
``ImageSequence`` decodes on access with every size known up front (a broken file is skipped at load time, with
one warning, instead of crashing a run hours later). Every data path of asym (SR, IQA, classification) reads its
pixels through here.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image, ImageOps

from .decoded_cache import DecodedCache, active, encoded
from .errors import UserError, list_names, reading, summarize
from .offline import hub_reachable
from .sources import resolve_source

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# skimage.data photographs that ship inside the wheel (others need a pooch download); all at least 300x300.
BUILTIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
                  "stereo_motorcycle", "coins", "camera", "moon", "brick", "grass", "gravel")  # fmt: skip


def image_files(folder: str, recursive: bool = True) -> list[str]:
    """The image files (``IMAGE_EXTENSIONS``, any case) in ``folder`` and, ``recursive``, its subfolders, as paths
    sorted by path; hidden files and folders (a leading ``.``: ``.DS_Store``, macOS's ``._x.png``,
    ``.ipynb_checkpoints/``) are not images of the set. The one rule for "the images of a folder"."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        found += [
            os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")
        ]
    return sorted(found)


def to_array(image) -> np.ndarray:
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
    array = to_array(image)
    if array.dtype.kind in "ui":
        scaled = array.astype(np.float32) / np.iinfo(array.dtype).max
    else:
        scaled = array.astype(np.float32).clip(0, 1)
    return torch.from_numpy(np.ascontiguousarray(scaled)).permute(2, 0, 1)


def decode(source, data: bytes | None = None) -> np.ndarray:
    """Decode a file path, or a ``(dataset, column, row)`` triple whose cell holds encoded bytes or a path; from
    ``data``, the source's encoded bytes, where they were read already (the decoded-image cache hashes them first)."""
    if data is None and isinstance(source, tuple):
        data = encoded(source)
    with Image.open(io.BytesIO(data) if data is not None else source) as image:
        return to_array(ImageOps.exif_transpose(image))


def readable_shape(source, cache: DecodedCache | None = None) -> tuple[int, int] | None:
    """(H, W) of a decodable image source, None for a broken or unreadable one. With a ``cache``, a cached image's
    size comes from its entry's header, and an image not cached yet is decoded into it."""
    try:
        return (cache.shape(source, decode) if cache else decode(source).shape)[:2]
    except (OSError, SyntaxError, ValueError):  # PIL reports broken files with all three
        return None


def image_name(source) -> str:
    """A file path as is; a dataset row by its stored path, else its number."""
    if isinstance(source, tuple):
        dataset, column, row = source
        return dataset[row][column]["path"] or f"row {row}"
    return source


class ImageSequence(Sequence):
    """Images decoded on access, as HxWx3 uint8/uint16 arrays; their ``sizes`` (H, W) are known up front. With a
    ``cache`` (``asym.core.decoded_cache``), each is decoded once and then read as a memory map: a crop costs no
    decode."""

    def __init__(self, sources: list, sizes: list[tuple[int, int]], cache: DecodedCache | None = None):
        self.sources, self.sizes, self.cache = sources, sizes, cache

    @classmethod
    def checked(cls, sources: list, what: str) -> ImageSequence:
        """Decode every source once (in threads) to learn its size, into the active cache where there is one (a
        cached image only has its header read); skip the unreadable ones with one warning."""
        if not sources:
            raise UserError(f"{what} has no images (expected {'/'.join(IMAGE_EXTENSIONS)} files or an image column)")
        cache = active()
        with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
            shapes = list(pool.map(lambda source: readable_shape(source, cache), sources))
        keep = [i for i, shape in enumerate(shapes) if shape is not None]
        bad = [image_name(source) for source, shape in zip(sources, shapes) if shape is None]
        if not keep:
            raise UserError(f"none of the {len(sources)} images in {what} could be read (e.g. {list_names(bad, 3)})")
        if bad:
            warnings.warn(
                f"{what}: skipped {len(bad)} of {len(sources)} images (unreadable: {list_names(bad)})", stacklevel=3
            )
        return cls([sources[i] for i in keep], [tuple(shapes[i]) for i in keep], cache)

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.cache.load(self.sources[index], decode) if self.cache else decode(self.sources[index])

    def name(self, index: int) -> str:
        return image_name(self.sources[index])

    def select(self, indices: Sequence[int]) -> ImageSequence:
        return ImageSequence([self.sources[i] for i in indices], [self.sizes[i] for i in indices], self.cache)


def builtin_images() -> list[np.ndarray]:
    import skimage.data

    images = [getattr(skimage.data, name)() for name in BUILTIN_IMAGES]
    return [to_array(image[0] if isinstance(image, tuple) else image) for image in images]  # stereo: left view


def is_saved_dataset(path: str) -> bool:
    """Whether ``path`` is a folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return any(os.path.isfile(os.path.join(path, f)) for f in ("state.json", "dataset_dict.json"))


def open_image_table(name: str, image_columns: Sequence[str], split: str, value_columns: Sequence[str] = ()):
    """A Hub id or local ``datasets`` path as a table of ``image_columns`` kept encoded (bytes or paths, decoded on
    access by ``decode``) and ``value_columns`` as stored. Local paths: a ``save_to_disk`` folder, a parquet/arrow
    file, or anything ``datasets.load_dataset`` reads (image folders, folders of data files).

    Raises:
        UserError: the dataset cannot be found or read, lacks ``split`` or a column, or an image column holds no
            images.
    """
    import datasets

    kind = resolve_source(name).kind
    if kind == "missing" and not os.path.exists(os.path.expanduser(name)):
        raise UserError(f"dataset {name} does not exist (a local path; Hub ids look like owner/name): place it as "
                        "docs/datasets.md says (scripts/reproduce_paper.py --preflight --download fetches those pyiqa "
                        "mirrors)")  # fmt: skip
    if kind == "hub" and not hub_reachable():  # offline: the datasets cache or one line at once, never retries
        datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
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
            offline = kind == "hub" and not hub_reachable()
            where = "nor in the datasets cache, and the Hub cannot be reached" if offline else "nor on the Hub"
            raise UserError(f"could not load {name!r}: not a local dataset, {where} ({summarize(err)})") from err
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


def load_image(name: str, size: int) -> torch.Tensor:
    """A (1, 3, size, size) centre crop of a builtin photograph (``BUILTIN_IMAGES``) or an image file, in [0, 1].

    Raises:
        UserError: neither a file nor a builtin name, an unreadable file, or an image smaller than ``size``.
    """
    if name in BUILTIN_IMAGES:
        image = to_tensor(builtin_images()[BUILTIN_IMAGES.index(name)])
    elif os.path.isfile(name):
        with reading(name, "--image"), Image.open(name) as file:
            image = to_tensor(file)
    else:
        raise UserError(f"--image {name!r} is neither a file nor a builtin name ({', '.join(BUILTIN_IMAGES)})")
    h, w = image.shape[-2:]
    if min(h, w) < size:
        raise UserError(f"--image {name} is {h}x{w}, smaller than --size {size}")
    top, left = (h - size) // 2, (w - size) // 2
    return image[None, :, top : top + size, left : left + size]
