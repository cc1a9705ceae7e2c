"""asym.core.decoded_cache: each image decoded once, read back exactly (16 bits kept), a changed file decoded again, a
broken file skipped or refused as without the cache; SR folders and IQA datasets read through it."""

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import asym.core.images
from asym.core import decoded_cache
from asym.core.errors import UserError
from asym.core.images import to_tensor
from asym.iqa.data.dataset import FRDataset, FRItem
from asym.sr.data import SRImageDataset, SRPairDataset, load_sr_images


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def cache(tmp_path):
    """The cache on, under a fresh folder; off again afterwards (as for a library user)."""
    yield decoded_cache.configure(str(tmp_path / "cache"))
    decoded_cache.configure(enabled=False)


@pytest.fixture
def counted_decodes(monkeypatch):
    """How often each file was decoded (the cache reads entries without calling ``decode``)."""
    calls: list[str] = []
    real = asym.core.images.decode

    def decode(source, data=None):
        calls.append(os.path.basename(source) if isinstance(source, str) else str(source[2]))
        return real(source, data)

    monkeypatch.setattr(asym.core.images, "decode", decode)
    return calls


@pytest.fixture
def hr_folder(tmp_path):
    root = tmp_path / "hr"
    root.mkdir()
    for i in range(3):
        Image.fromarray(_photo(60, 70 + 4 * i, i)).save(root / f"{i}.png")
    gray16 = np.random.default_rng(9).integers(0, 65536, (60, 64), dtype=np.uint16)
    Image.fromarray(gray16).save(root / "gray16.png")
    return root


def _entries(cache) -> list[str]:
    return [f for _, _, files in os.walk(cache.root) for f in files]


def test_images_are_decoded_once_and_read_back_exactly(cache, hr_folder, counted_decodes):
    images = load_sr_images(train_data_dir=str(hr_folder))
    assert sorted(counted_decodes) == ["0.png", "1.png", "2.png", "gray16.png"]  # once each, at load time
    assert len(_entries(cache)) == 4 and not [f for f in _entries(cache) if f.startswith(".writing-")]
    again = load_sr_images(train_data_dir=str(hr_folder))
    pixels = [again[i] for i in range(len(again))]
    assert len(counted_decodes) == 4  # a second run (and every crop) reads the entries: no decode at all
    assert all(isinstance(p, np.memmap) for p in pixels) and again.sizes == images.sizes
    for source, array in zip(again.sources, pixels):
        with Image.open(source) as file:
            expected = np.asarray(file)
        if expected.ndim == 2:  # 16-bit grayscale: kept as uint16, repeated over 3 channels
            assert array.dtype == np.uint16 and np.array_equal(array[..., 1], expected)
        else:
            assert array.dtype == np.uint8 and np.array_equal(array, expected)
    # evaluation crops and whole images equal the files' pixels
    centre = SRPairDataset(again, scale=4, crop_size=32, train=False)
    plain = asym.core.images.ImageSequence(again.sources, again.sizes)
    uncached = SRPairDataset(plain, scale=4, crop_size=32, train=False)
    for i in range(len(centre)):
        assert torch.equal(centre[i]["hr"], uncached[i]["hr"]) and torch.equal(centre[i]["lr"], uncached[i]["lr"])
    whole = SRImageDataset(again, scale=4)[3]["hr"]
    with Image.open(again.sources[3]) as file:
        assert torch.equal(whole, to_tensor(file)[:, :60, :64])


def test_a_changed_file_is_decoded_again_never_served_stale(cache, hr_folder, counted_decodes):
    path = hr_folder / "0.png"
    load_sr_images(train_data_dir=str(hr_folder))
    stat = os.stat(path)
    Image.fromarray(_photo(60, 70, 42)).save(path)  # new pixels, same size and shape
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # even within one mtime tick
    counted_decodes.clear()
    images = load_sr_images(train_data_dir=str(hr_folder))
    assert counted_decodes == ["0.png"]
    assert np.array_equal(images[images.sources.index(str(path))], _photo(60, 70, 42))


def test_a_truncated_file_is_skipped_with_the_usual_warning_and_never_cached(cache, hr_folder):
    data = (hr_folder / "1.png").read_bytes()
    (hr_folder / "1.png").write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images = load_sr_images(train_data_dir=str(hr_folder))
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "skipped 1 of 4 images" in messages[0] and "1.png" in messages[0]
    assert len(images) == 3 and len(_entries(cache)) == 3


def test_iqa_images_are_decoded_once_into_the_cache_and_a_broken_one_is_refused(cache, tmp_path, counted_decodes,
                                                                                monkeypatch):  # fmt: skip
    import asym.iqa.data.dataset as iqa_dataset

    monkeypatch.setattr(iqa_dataset, "decode", asym.core.images.decode)  # the counting one
    ref = tmp_path / "ref.png"
    Image.fromarray(_photo(40, 48, 1)).save(ref)
    items = []
    for i in range(3):
        Image.fromarray(_photo(40, 48, 10 + i)).save(tmp_path / f"d{i}.png")
        items.append(FRItem(str(tmp_path / f"d{i}.png"), str(ref), float(i), "ref"))
    data = FRDataset(items, "t", lower_better=False, crop_size=16, train=False)
    assert data.cache == cache
    data.verify_images(progress=False)
    assert sorted(counted_decodes) == ["d0.png", "d1.png", "d2.png", "ref.png"]  # the shared reference once
    data.verify_images(progress=False)
    sample = data[2]
    assert len(counted_decodes) == 4  # verified and read from the entries
    torch.testing.assert_close(sample["dist"], to_tensor(_photo(40, 48, 12))[:, 12:28, 16:32], atol=0, rtol=0)
    (tmp_path / "d1.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="d1.png"):
        FRDataset(items, "t", lower_better=False).verify_images(progress=False)


def test_cells_are_keyed_by_content_and_a_rewritten_file_of_a_path_cell_is_decoded_again(cache, tmp_path):
    """A path-based table (what ``Dataset.to_parquet`` writes) keeps its fingerprint when the files it names change."""
    import datasets

    for name, seed in (("a.png", 3), ("b.png", 4)):
        Image.fromarray(_photo(40, 48, seed)).save(tmp_path / name)
    table = datasets.Dataset.from_dict({"image": [str(tmp_path / "a.png"), str(tmp_path / "b.png")]}).cast_column(
        "image", datasets.Image(decode=False)
    )
    entry = cache.entry((table, "image", 0))
    assert entry and entry != cache.entry((table, "image", 1))
    assert np.array_equal(cache.load((table, "image", 0), asym.core.images.decode), _photo(40, 48, 3))
    assert os.path.isfile(entry) and cache.holds((table, "image", 0))
    assert cache.entry(np.zeros((2, 2, 3))) is None  # in-memory arrays need no cache
    Image.fromarray(_photo(40, 48, 5)).save(tmp_path / "a.png")  # the file changes, the table (and its fingerprint) not
    again = decoded_cache.DecodedCache(cache.root)  # the next run: content keys are computed once per run
    assert np.array_equal(again.load((table, "image", 0), asym.core.images.decode), _photo(40, 48, 5))
    # a cell holding bytes is keyed by them: the same pixels as a file share its entry, whatever the names
    cells = datasets.Dataset.from_dict({"image": [{"bytes": (tmp_path / "b.png").read_bytes(), "path": "a.png"}]})
    assert again.entry((cells.cast_column("image", datasets.Image(decode=False)), "image", 0)) == again.entry(
        str(tmp_path / "b.png")
    )


def test_a_file_replaced_in_place_with_the_same_size_mtime_and_inode_is_decoded_again(cache, tmp_path):
    """``cp -p`` over a file, or a re-released archive with normalised times: only the content tells."""
    path = tmp_path / "i01.bmp"  # same-size BMPs, as TID2013 / LIVE ship them
    Image.fromarray(_photo(30, 40, 1)).save(path)
    first = load_sr_images(train_data_dir=str(tmp_path))
    assert np.array_equal(first[0], _photo(30, 40, 1))
    before = os.stat(path)
    other = tmp_path / "other.bmp"
    Image.fromarray(_photo(30, 40, 2)).save(other)
    with open(path, "r+b") as file:  # overwrite in place: the inode stays
        file.write(other.read_bytes())
    other.unlink()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    decoded_cache.configure(cache.root)  # the next run
    assert np.array_equal(load_sr_images(train_data_dir=str(tmp_path))[0], _photo(30, 40, 2))


def test_another_decoder_version_decodes_again(cache, hr_folder, counted_decodes, monkeypatch):
    load_sr_images(train_data_dir=str(hr_folder))
    decoded_cache.configure(cache.root)
    monkeypatch.setattr(decoded_cache, "DECODER_VERSION", decoded_cache.DECODER_VERSION + 1)
    counted_decodes.clear()
    load_sr_images(train_data_dir=str(hr_folder))
    assert sorted(counted_decodes) == ["0.png", "1.png", "2.png", "gray16.png"]


def test_caching_stops_with_one_warning_before_the_disk_fills_and_the_run_goes_on(tmp_path, hr_folder, monkeypatch):
    import shutil

    room = 10 * decoded_cache.GIB + 60 * 74 * 3 + 1000  # the largest image (and its .npy header) above the 10 GiB kept

    def disk_usage(path):  # a disk whose free space is what the cache has not written yet
        written = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tmp_path / "cache") for f in files)
        return shutil._ntuple_diskusage(100 * decoded_cache.GIB, 90 * decoded_cache.GIB, room - written)

    monkeypatch.setattr(decoded_cache.shutil, "disk_usage", disk_usage)
    decoded_cache.configure(str(tmp_path / "cache"), min_free_gb=10)
    try:
        with pytest.warns(UserWarning, match=r"stopped caching: .* keeps 10 GiB") as record:
            images = load_sr_images(train_data_dir=str(hr_folder))
        assert len([w for w in record if "stopped caching" in str(w.message)]) == 1  # once, not per image
        assert len(_entries(decoded_cache.active())) == 1  # then nothing more written
        assert all(np.array_equal(images[i], images[i]) for i in range(len(images)))  # still readable, decoded
        report = decoded_cache.cache_report()
        assert "stopped caching" in report and "3 not stored" in report and "1 images decoded" in report
    finally:
        decoded_cache.configure(enabled=False)


def test_a_failed_write_stops_caching_with_one_warning(tmp_path, hr_folder, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    decoded_cache.configure(str(tmp_path / "cache"))
    monkeypatch.setattr(decoded_cache.np, "save", full)
    try:
        with pytest.warns(UserWarning, match="No space left on device") as record:
            images = load_sr_images(train_data_dir=str(hr_folder))
        assert len([w for w in record if "stopped caching" in str(w.message)]) == 1
        assert len(images) == 4 and not _entries(decoded_cache.active())  # no temporary file left behind
        assert "stopped caching (writing failed (OSError: [Errno 28]" in decoded_cache.cache_report()
    finally:
        decoded_cache.configure(enabled=False)


def test_an_unwritable_cache_folder_is_said_not_called_unused(tmp_path, monkeypatch, hr_folder):
    import argparse

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    parser = argparse.ArgumentParser()
    decoded_cache.add_cache_args(parser)
    with pytest.raises(UserError, match=r"--cache_dir .*a-file/cache cannot be written .*--no_cache"):
        decoded_cache.configure_from_args(parser.parse_args(["--cache_dir", str(blocker / "cache")]))
    monkeypatch.setenv("ASYM_CACHE", str(blocker / "cache"))  # the default folder: a warning, the run goes on
    try:
        with pytest.warns(UserWarning, match="cache off: .* cannot be written"):
            assert decoded_cache.configure_from_args(parser.parse_args([])) is None
        load_sr_images(train_data_dir=str(hr_folder))
        report = decoded_cache.cache_report()
        assert "cannot be written" in report and "every crop decodes its whole image" in report
        assert "unused" not in report
    finally:
        decoded_cache.configure(enabled=False)


def test_the_cache_folder_follows_the_environment_and_flags(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASYM_CACHE", "relative")  # taken from the current folder: an absolute path
    assert decoded_cache.default_cache_dir() == str(tmp_path / "relative")
    monkeypatch.setenv("ASYM_CACHE", str(tmp_path / "env"))
    assert decoded_cache.default_cache_dir() == str(tmp_path / "env")
    monkeypatch.delenv("ASYM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert decoded_cache.default_cache_dir() == str(tmp_path / "xdg" / "asym")
    import argparse

    parser = argparse.ArgumentParser()
    decoded_cache.add_cache_args(parser)
    try:
        assert decoded_cache.configure_from_args(parser.parse_args([])).root == str(tmp_path / "xdg" / "asym")
        assert decoded_cache.configure_from_args(parser.parse_args(["--cache_dir", str(tmp_path)])).root == str(
            tmp_path
        )
        assert decoded_cache.configure_from_args(parser.parse_args(["--no_cache"])) is None
        assert decoded_cache.active() is None
    finally:
        decoded_cache.configure(enabled=False)
