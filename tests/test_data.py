"""SR data: sources (builtin, folders, datasets), robust decoding, aligned crop pairs, the validation split."""

import os
import random
import socket
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from asym.core.images import ImageSequence, image_files, to_tensor
from asym.sr.data import SRPairDataset, load_sr_images, split_train_validation


def _random_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gradient(h: int, w: int) -> np.ndarray:
    """A smooth image: JPEG keeps it close to the original (unlike noise)."""
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([rows * 255 // (h - 1), cols * 255 // (w - 1), np.full((h, w), 128)], axis=2).astype(np.uint8)


def _bicubic(hr: torch.Tensor, scale: int) -> torch.Tensor:
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    return F.interpolate(hr[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0].clamp(0, 1)


def _user_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)]


def _transforms(x: torch.Tensor):
    """The 8 flips/rotations the training augmentation can produce, keyed by (flipped, quarter turns)."""
    for flip in (False, True):
        for k in range(4):
            yield (flip, k), (x.flip(-1) if flip else x).rot90(k, (-2, -1))


def _locate(hr: torch.Tensor, image: torch.Tensor, scale: int):
    """Where (top, left on the LR grid) and how (flip, turns) ``hr`` was cut from ``image``; None if nowhere."""
    crop = hr.shape[-1]
    for top in range(0, image.shape[-2] - crop + 1, scale):
        for left in range(0, image.shape[-1] - crop + 1, scale):
            for how, view in _transforms(image[:, top : top + crop, left : left + crop]):
                if torch.equal(view, hr):
                    return top // scale, left // scale, how
    return None


@pytest.fixture
def folder(tmp_path):
    """A folder of HR images in awkward formats, one of them corrupt, plus a file that is no image."""
    root = tmp_path / "hr"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(_random_rgb(40, 50)).save(root / "a_rgb.png")
    Image.fromarray(_gradient(40, 50)).save(root / "b_photo.jpg", quality=95)
    gray16 = np.full((40, 50), 32768, dtype=np.uint16)
    gray16[0, 0], gray16[0, 1] = 65535, 0
    Image.fromarray(gray16).save(root / "sub" / "c_gray16.png")
    rgba = np.zeros((40, 50, 4), dtype=np.uint8)
    rgba[..., 0], rgba[:20, :, 3] = 255, 255  # top half opaque red, bottom half fully transparent (black)
    Image.fromarray(rgba).save(root / "d_rgba.png")
    palette = Image.new("P", (50, 40))
    palette.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    palette.paste(1, (0, 0, 25, 40))  # left half green, right half blue
    palette.save(root / "e_palette.png")
    (root / "f_corrupt.png").write_bytes(np.random.default_rng(0).bytes(500))
    (root / "notes.txt").write_text("not an image")
    return root


def test_builtin_loads_rgb_photographs_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("builtin must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    images = load_sr_images("builtin")
    assert len(images) >= 5
    for image in images:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert min(image.shape[:2]) >= 256  # the default crop size fits every builtin image
    assert any(np.ptp(image.astype(int), axis=2).max() > 0 for image in images)  # real colour, not just gray


def test_folder_decodes_awkward_formats_and_skips_the_corrupt_file_with_one_warning(folder):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images = load_sr_images(train_data_dir=str(folder))
    messages = _user_warnings(record)
    assert len(messages) == 1 and "skipped 1 of 6 images" in messages[0] and "f_corrupt.png" in messages[0]
    assert isinstance(images, ImageSequence) and len(images) == 5
    by_name = {os.path.basename(source): image for source, image in zip(images.sources, images)}
    assert sorted(by_name) == ["a_rgb.png", "b_photo.jpg", "c_gray16.png", "d_rgba.png", "e_palette.png"]
    relative = [os.path.relpath(source, folder) for source in images.sources]  # sorted paths: a deterministic order
    assert relative == ["a_rgb.png", "b_photo.jpg", "d_rgba.png", "e_palette.png", os.path.join("sub", "c_gray16.png")]
    assert all(image.shape == (40, 50, 3) for image in images) and images.sizes == [(40, 50)] * 5

    np.testing.assert_array_equal(by_name["a_rgb.png"], _random_rgb(40, 50))
    assert np.abs(by_name["b_photo.jpg"].astype(int) - _gradient(40, 50)).mean() < 2  # lossy, but close

    gray16 = by_name["c_gray16.png"]
    assert gray16.dtype == np.uint16  # not clipped to 8 bits
    gray = to_tensor(gray16)
    assert gray.shape == (3, 40, 50) and torch.equal(gray[0], gray[1]) and torch.equal(gray[0], gray[2])
    assert gray[0, 0, 0] == 1.0 and gray[0, 0, 1] == 0.0
    assert gray[0, 5, 5].item() == pytest.approx(0.5, abs=1e-4)

    rgba = to_tensor(by_name["d_rgba.png"])  # composited over white
    assert torch.equal(rgba[:, :20], torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 20, 50))
    assert torch.equal(rgba[:, 20:], torch.ones(3, 20, 50))

    palette = by_name["e_palette.png"]
    assert (palette[:, :25] == [0, 255, 0]).all() and (palette[:, 25:] == [0, 0, 255]).all()


def test_folder_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_sr_images(train_data_dir=str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"has no images \(expected .png"):
        load_sr_images(train_data_dir=str(tmp_path))
    for name in ("x.png", "y.jpg"):
        (tmp_path / name).write_bytes(b"definitely not an image")
    with pytest.raises(ValueError, match="none of the 2 images .* could be read"):
        load_sr_images(train_data_dir=str(tmp_path))


@pytest.fixture
def dataset_cache(tmp_path, monkeypatch):
    """Keep what ``datasets`` caches inside the test's temporary folder."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def test_local_dataset_paths_via_datasets(folder, tmp_path, dataset_cache):
    import datasets

    (folder / "notes.txt").unlink()  # imagefolder reads only images; the corrupt png stays in
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images = load_sr_images(str(folder))
    messages = _user_warnings(record)
    assert len(messages) == 1 and "skipped 1 of 6" in messages[0] and "f_corrupt.png" in messages[0]
    assert len(images) == 5 and all(image.shape == (40, 50, 3) for image in images)
    assert any(np.array_equal(image, _random_rgb(40, 50)) for image in images)

    # The same images as a saved dataset (with an extra column) and as a parquet file.
    (folder / "f_corrupt.png").unlink()
    table = datasets.load_dataset(str(folder), split="train").add_column("caption", ["x"] * 5)
    table.save_to_disk(str(tmp_path / "saved"))
    table.to_parquet(str(tmp_path / "images.parquet"))
    for source in (tmp_path / "saved", tmp_path / "images.parquet"):
        loaded = load_sr_images(str(source))
        assert len(loaded) == 5 and sorted(loaded.sizes) == [(40, 50)] * 5
        assert any(np.array_equal(image, _random_rgb(40, 50)) for image in loaded)

    with pytest.raises(ValueError, match="no column 'pixels'; available: image, caption"):
        load_sr_images(str(tmp_path / "saved"), image_column="pixels")
    with pytest.raises(ValueError, match="column 'caption' .* not an Image"):
        load_sr_images(str(tmp_path / "saved"), image_column="caption")


def test_unreachable_hub_dataset_is_a_clear_error(dataset_cache):
    with pytest.raises(ValueError, match="could not load 'nobody/no-such-dataset'"):
        load_sr_images("nobody/no-such-dataset")  # HF_HUB_OFFLINE=1 (conftest): fails at once


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("train", [True, False])
def test_pairs_have_the_right_shapes_and_lr_is_the_bicubic_downscale_of_hr(scale, train):
    dataset = SRPairDataset([_random_rgb(60, 70)], scale, crop_size=48, train=train)
    for index in range(3):
        sample = dataset[index % len(dataset)]
        lr, hr = sample["lr"], sample["hr"]
        assert hr.shape == (3, 48, 48) and lr.shape == (3, 48 // scale, 48 // scale)
        assert hr.dtype == lr.dtype == torch.float32
        assert 0 <= lr.min() and lr.max() <= 1 and 0 <= hr.min() and hr.max() <= 1
        torch.testing.assert_close(lr, _bicubic(hr, scale), atol=1e-5, rtol=0)


def test_training_crops_are_augmented_crops_of_the_image_and_reproducible_from_torch_seed_alone():
    image = _random_rgb(16, 20)
    dataset = SRPairDataset([image], scale=2, crop_size=8, train=True, repeat=30)
    assert len(dataset) == 30

    def draw(seed: int) -> list[torch.Tensor]:
        random.seed(seed + 100)  # Python's and numpy's generators must play no part
        np.random.seed(seed + 200)
        torch.manual_seed(seed)
        return [dataset[i]["hr"] for i in range(len(dataset))]

    first = draw(1)
    random.seed(7), np.random.seed(7)
    torch.manual_seed(1)
    assert all(torch.equal(a, dataset[i]["hr"]) for i, a in enumerate(first))
    assert not all(torch.equal(a, b) for a, b in zip(first, draw(2)))

    found = [_locate(hr, to_tensor(image), scale=2) for hr in first]
    assert None not in found  # every sample is a flipped/rotated crop at an LR-grid position
    assert len({(top, left) for top, left, _ in found}) > 5 and len({how for *_, how in found}) > 3


def test_evaluation_crop_is_the_deterministic_centre():
    image = _random_rgb(100, 120)
    dataset = SRPairDataset([image], scale=4, crop_size=48, train=False)
    torch.manual_seed(0)
    first = dataset[0]
    torch.manual_seed(1)
    second = dataset[0]
    assert torch.equal(first["hr"], second["hr"]) and torch.equal(first["lr"], second["lr"])
    # LR grid 25x30, LR crop 12: corner (6, 9) on the LR grid, i.e. (24, 36) in HR pixels, within `scale` of centre.
    torch.testing.assert_close(first["hr"], to_tensor(image)[:, 24:72, 36:84], atol=0, rtol=0)


def test_crop_size_must_be_divisible_by_scale():
    with pytest.raises(ValueError, match="use a crop size divisible by the scale"):
        SRPairDataset([_random_rgb(64, 64)], scale=3, crop_size=64)


def test_too_small_images_are_skipped_with_one_warning_and_all_too_small_is_an_error():
    images = [_random_rgb(30, 40), _random_rgb(64, 64), _random_rgb(50, 20)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dataset = SRPairDataset(images, scale=4, crop_size=32, repeat=2)
    messages = _user_warnings(record)
    assert len(messages) == 1 and "skipped 2 of 3 images smaller than the 32x32 crop" in messages[0]
    assert len(dataset) == 2 and dataset.indices == [1]
    with pytest.raises(ValueError, match="smaller than the 64x64 crop .*smallest is 50x20"):
        SRPairDataset([images[0], images[2]], scale=4, crop_size=64)


@pytest.mark.parametrize("train", [True, False])
def test_paired_lr_crops_are_cut_at_the_matching_place(train):
    scale, image = 4, _random_rgb(64, 83)
    hr_full = to_tensor(image)
    lr_full = _bicubic(hr_full, scale)  # (3, 16, 20): the HR width 83 is not divisible by 4
    lr_image = lr_full.permute(1, 2, 0).numpy()  # an HxWx3 float array
    dataset = SRPairDataset([image], scale, crop_size=32, train=train, lr_images=[lr_image], repeat=8)
    for index in range(len(dataset)):
        sample = dataset[index]
        top, left, (flip, turns) = _locate(sample["hr"], hr_full, scale)
        expected = lr_full[:, top : top + 8, left : left + 8]
        expected = (expected.flip(-1) if flip else expected).rot90(turns, (-2, -1))
        assert torch.equal(sample["lr"], expected)
    if not train:
        assert (top, left, flip, turns) == (4, 6, False, 0)  # centre of the 16x20 LR grid for an 8x8 LR crop

    with pytest.raises(ValueError, match=r"LR image 0 is \(16, 21\), expected \(16, 20\)"):
        SRPairDataset([image], scale, crop_size=32, lr_images=[np.zeros((16, 21, 3), np.float32)])


def test_split_is_deterministic_disjoint_and_complete(folder):
    images = list(range(20))
    train, validation = split_train_validation(images, 4, seed=3)
    assert (train, validation) == split_train_validation(images, 4, seed=3)
    assert len(validation) == 4 and not set(train) & set(validation) and sorted(train + validation) == images
    assert validation != split_train_validation(images, 4, seed=4)[1]
    assert len(split_train_validation(images, 0)[1]) == 1 and len(split_train_validation(images, 50)[0]) == 1
    assert split_train_validation(["only"], 2) == (["only"], ["only"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy = load_sr_images(train_data_dir=str(folder))
    train, validation = split_train_validation(lazy, 2)
    assert isinstance(train, ImageSequence) and isinstance(validation, ImageSequence)  # still decoded on access
    assert len(train) == 3 and len(validation) == 2 and not set(train.sources) & set(validation.sources)


def test_the_images_of_a_folder_are_one_rule(tmp_path):
    """image_files: image extensions in any case, sorted by path, subfolders only when recursive, hidden files and
    folders left out (macOS's ._x.png is no image); the SR training folder reads by it."""
    for name in ("b.PNG", "a.jpg", "sub/c.png", "._a.png", ".hidden/d.png", "notes.txt", "sub/.DS_Store"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / name, format="PNG")
    assert image_files(str(tmp_path)) == [str(tmp_path / n) for n in ("a.jpg", "b.PNG", "sub/c.png")]
    assert image_files(str(tmp_path), recursive=False) == [str(tmp_path / n) for n in ("a.jpg", "b.PNG")]
    assert len(load_sr_images(train_data_dir=str(tmp_path))) == 3  # ._a.png (a PNG here) is not read
