"""FR-IQA data: official layouts (KADID-10k, TID2013, PIPAL, TQD, pyiqa csv), bad input, builtin, crops, splits."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from asym.iqa_data import (
    DISTORTIONS,
    FRDataset,
    FRItem,
    builtin_fr_items,
    detect_layout,
    load_fr_dataset,
    split_by_reference,
)


def _write(path, seed=0, size=16):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def _replace_line(path, index, text):
    """Line ``index`` (0-based) of a text file replaced by ``text``: how the malformed-input tests break a file."""
    lines = path.read_text().splitlines()
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def kadid(tmp_path):
    """KADID-10k: dmos.csv + images/I01_01_01.png ..., references images/I01.png."""
    root = tmp_path / "kadid10k"
    lines = ["dist_img,ref_img,dmos,var"]
    for r in (1, 2):
        _write(str(root / "images" / f"I{r:02d}.png"), seed=r)
        for d in (1, 2):
            for level in (1, 2):
                name = f"I{r:02d}_{d:02d}_{level:02d}.png"
                _write(str(root / "images" / name), seed=100 * r + 10 * d + level)
                lines.append(f"{name},I{r:02d}.png,{5 - level - 0.1 * d:.3f},0.5")
    (root / "dmos.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tid(tmp_path):
    """TID2013 quirks: upper-case BMP references, lower-case listed names, one distorted file upper-case on disk."""
    root = tmp_path / "tid2013"
    lines = []
    for r in (1, 25):
        _write(str(root / "reference_images" / f"I{r:02d}.BMP"), seed=r)
        for level in (1, 2):
            name = f"i{r:02d}_01_{level}.bmp"
            on_disk = name.upper() if (r, level) == (25, 2) else name
            _write(str(root / "distorted_images" / on_disk), seed=10 * r + level)
            lines.append(f"{6 - level:.5f} {name}")
    (root / "mos_with_names.txt").write_text("\r\n".join(lines) + "\r\n")  # the release has Windows line ends
    return root


@pytest.fixture
def pipal(tmp_path):
    """PIPAL (NTIRE 2021): Train_Label/A0001.txt per reference ('A0001_00_00.bmp,<elo>' lines, no header),
    Train_Ref/A0001.bmp, distorted images split over Distortion_1/ and Distortion_2/ as the archives unpack."""
    root = tmp_path / "PIPAL"
    for r in (1, 2):
        ref = f"A{r:04d}"
        _write(str(root / "Train_Ref" / f"{ref}.bmp"), seed=r)
        lines = []
        for k, (kind, level) in enumerate([(0, 0), (1, 3), (10, 2)]):
            name = f"{ref}_{kind:02d}_{level:02d}.bmp"
            _write(str(root / "Train_Dis" / f"Distortion_{1 + k % 2}" / name), seed=10 * r + k)
            lines.append(f"{name},{1500 - 40.25 * k - r:.4f}")
        (root / "Train_Label").mkdir(parents=True, exist_ok=True)
        (root / "Train_Label" / f"{ref}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tqd(tmp_path):
    """TQD: images/<texture>-0.png references (texture ids are not consecutive: 5, 11, ...), <texture>-<k>.png
    distorted, and a score file of 'images/<texture>-<k>.png,<mos>' lines in the release's order (k = 1, 2, ..., 10)."""
    root = tmp_path / "TQD"
    lines = []
    for t in (5, 11):
        _write(str(root / "images" / f"{t}-0.png"), seed=t)
        for k in (1, 2, 10):
            _write(str(root / "images" / f"{t}-{k}.png"), seed=100 * t + k)
            lines.append(f"images/{t}-{k}.png,{0.9 - 0.05 * k:.5f}")
    (root / "MOS.txt").write_text("\n".join(lines) + "\n")
    return root


def _pyiqa_folder(root, header="ref_name,dist_name,mos,std", subfolders=True):
    """A pyiqa-style meta-info csv; images under ref/ and dist/ (names in the csv without the subfolder)."""
    rows = [header]
    for r in range(3):
        _write(str(root / ("ref" if subfolders else "") / f"ref{r}.png"), seed=r)
        for k in range(2):
            _write(str(root / ("dist" if subfolders else "") / f"ref{r}_m{k}.png"), seed=10 + 10 * r + k)
            std = ",0.3" if header.endswith(",std") else ""
            rows.append(f"ref{r}.png,ref{r}_m{k}.png,{r + 0.5 * k}{std}")
    (root / "meta_info_TestDataset.csv").write_text("\n".join(rows) + "\n")
    return root


# ------------------------------------------------------------------------------------------------------- layouts
def test_kadid_parses(kadid):
    assert detect_layout(str(kadid)) == "kadid10k"
    data = load_fr_dataset(str(kadid))
    assert len(data) == 8 and data.lower_better is False
    first = data.items[0]
    assert first.dist == str(kadid / "images" / "I01_01_01.png") and first.ref == str(kadid / "images" / "I01.png")
    assert first.score == pytest.approx(3.9) and first.ref_id == "I01"
    assert {item.ref_id for item in data.items} == {"I01", "I02"}
    sample = data[0]
    assert sample["dist"].shape == sample["ref"].shape == (3, 16, 16)
    assert sample["score"].dtype == torch.float32 and sample["score"].ndim == 0 and sample["index"] == 0
    assert load_fr_dataset(str(kadid), lower_better=True).lower_better is True


def test_tid2013_mixed_case_parses(tid):
    assert detect_layout(str(tid)) == "tid2013"
    data = load_fr_dataset(str(tid))
    assert len(data) == 4
    assert [item.ref_id for item in data.items] == ["I01", "I01", "I25", "I25"]
    assert data.items[0].ref == str(tid / "reference_images" / "I01.BMP")
    assert data.items[3].dist == str(tid / "distorted_images" / "I25_01_2.BMP")
    np.testing.assert_allclose(data.scores(), [5, 4, 5, 4])
    assert data[3]["dist"].shape == (3, 16, 16)


def test_pipal_parses(pipal):
    assert detect_layout(str(pipal)) == "pipal"
    data = load_fr_dataset(str(pipal))
    assert len(data) == 6 and data.lower_better is False  # Elo: higher is better
    assert [item.ref_id for item in data.items] == ["A0001"] * 3 + ["A0002"] * 3
    second = data.items[1]
    assert second.dist == str(pipal / "Train_Dis" / "Distortion_2" / "A0001_01_03.bmp")
    assert second.ref == str(pipal / "Train_Ref" / "A0001.bmp") and second.score == pytest.approx(1458.75)
    assert data[5]["dist"].shape == (3, 16, 16)


@pytest.mark.parametrize("line, problem", [("A0002_01_03.bmp,nan", "nan"), ("A0002_01_03.bmp 1400", "1 fields"),
                                           ("A0002_09_09.bmp,1400", "A0002_09_09.bmp does not exist")])  # fmt: skip
def test_pipal_malformed_line(pipal, line, problem):
    _replace_line(pipal / "Train_Label" / "A0002.txt", 1, line)
    with pytest.raises(ValueError, match=rf"A0002\.txt line 2: .*{problem}"):
        load_fr_dataset(str(pipal))
    os.remove(pipal / "Train_Ref" / "A0001.bmp")
    with pytest.raises(ValueError, match=r"A0001\.txt line 1: image A0001\.bmp does not exist"):
        load_fr_dataset(str(pipal))


def test_tqd_parses(tqd):
    assert detect_layout(str(tqd)) == "tqd"
    data = load_fr_dataset(str(tqd))
    assert len(data) == 6 and data.lower_better is False
    assert [item.ref_id for item in data.items] == ["5"] * 3 + ["11"] * 3
    last = data.items[5]
    assert last.dist == str(tqd / "images" / "11-10.png") and last.ref == str(tqd / "images" / "11-0.png")
    assert last.score == pytest.approx(0.4)
    os.rename(tqd / "MOS.txt", tqd / "scores.txt")  # found by its content, whatever its name
    (tqd / "scores.txt").write_text((tqd / "scores.txt").read_text().replace(",", "  "))  # white space also separates
    assert load_fr_dataset(str(tqd)).scores().tolist() == data.scores().tolist()


@pytest.mark.parametrize(
    "line, problem",
    [("images/11-2.png,nan", "nan"), ("images/11-0.png,0.5", "reference texture"),
     ("images/eleven.png,0.5", "not named"), ("images/11-7.png,0.5", "does not exist")],
)  # fmt: skip
def test_tqd_malformed_line(tqd, line, problem):
    _replace_line(tqd / "MOS.txt", 4, line)
    with pytest.raises(ValueError, match=rf"MOS\.txt line 5: .*{problem}"):
        load_fr_dataset(str(tqd))


@pytest.mark.parametrize("header", ["ref_name,dist_name,mos,std", "ref_name,dist_name,dmos"])
def test_pyiqa_csv_parses(tmp_path, header):
    """Also the form in which Liu13 and Ma17 are read (their scores written to this csv)."""
    root = _pyiqa_folder(tmp_path / "liu13", header)
    assert detect_layout(str(root)) == "pyiqa-csv"
    data = load_fr_dataset(str(root))
    assert len(data) == 6
    assert data.items[1].dist == str(root / "dist" / "ref0_m1.png") and data.items[1].ref == str(
        root / "ref" / "ref0.png"
    )
    assert data.items[1].score == 0.5 and data.items[1].ref_id == "ref0.png"
    assert load_fr_dataset(str(root / "meta_info_TestDataset.csv"), lower_better=True).lower_better


def test_pyiqa_csv_relative_paths_and_basename_search(tmp_path):
    root = _pyiqa_folder(tmp_path / "flat", subfolders=False)  # relative to the folder itself
    assert load_fr_dataset(str(root)).items[0].dist == str(root / "ref0_m0.png")
    nested = tmp_path / "nested"
    _pyiqa_folder(nested)
    os.rename(nested / "dist", nested / "Distorted_Images")  # found by file name below the folder
    assert load_fr_dataset(str(nested)).items[0].dist == str(nested / "Distorted_Images" / "ref0_m0.png")


# ------------------------------------------------------------------------------------------------------ malformed
@pytest.mark.parametrize(
    "row, problem",
    [("I01_01_01.png,I01.png,nan,0.5", "nan"), ("I01_01_01.png,I01.png,3.2", "3 fields"),
     ("I01_01_01.png,I01.png,good,0.5", "not a number"), (",I01.png,3.0,0.5", "empty dist_img")],
)  # fmt: skip
def test_kadid_malformed_row_names_file_and_line(kadid, row, problem):
    _replace_line(kadid / "dmos.csv", 5, row)
    with pytest.raises(ValueError, match=rf"dmos\.csv line 6: .*{problem}"):
        load_fr_dataset(str(kadid))


@pytest.mark.parametrize("line, problem", [("nan i01_01_1.bmp", "nan"), ("5.1", "1 fields"), ("x i01_01_1.bmp", "not")])
def test_tid2013_malformed_line(tid, line, problem):
    _replace_line(tid / "mos_with_names.txt", 2, line)
    with pytest.raises(ValueError, match=rf"mos_with_names\.txt line 3: .*{problem}"):
        load_fr_dataset(str(tid))


def test_pyiqa_malformed_row(tmp_path):
    root = _pyiqa_folder(tmp_path / "d")
    path = root / "meta_info_TestDataset.csv"
    path.write_text(path.read_text().replace("ref1.png,ref1_m0.png,1.0,0.3", "ref1.png,ref1_m0.png,,0.3"))
    with pytest.raises(ValueError, match=r"meta_info_TestDataset\.csv line 4: empty mos"):
        load_fr_dataset(str(root))


def test_missing_image_is_named(kadid, tid, tmp_path):
    os.remove(kadid / "images" / "I02_02_01.png")
    with pytest.raises(ValueError, match=r"dmos\.csv line \d+: image .*I02_02_01\.png does not exist"):
        load_fr_dataset(str(kadid))
    os.remove(tid / "distorted_images" / "i01_01_2.bmp")
    with pytest.raises(ValueError, match=r"i01_01_2\.bmp does not exist"):
        load_fr_dataset(str(tid))
    root = _pyiqa_folder(tmp_path / "p")
    os.remove(root / "ref" / "ref2.png")
    with pytest.raises(ValueError, match=r"ref2\.png does not exist"):
        load_fr_dataset(str(root))


def test_unknown_layout_missing_folder_and_empty(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="no known IQA layout.*kadid10k.*dmos.csv.*tid2013.*mos_with_names.txt.*pyiqa"):
        load_fr_dataset(str(tmp_path / "random"))
    with pytest.raises(ValueError, match="does not exist"):
        load_fr_dataset(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "dmos.csv").write_text("dist_img,ref_img,dmos,var\n")
    with pytest.raises(ValueError, match="no distorted images"):
        load_fr_dataset(str(tmp_path / "empty"))


# -------------------------------------------------------------------------------------------------------- builtin
def test_builtin():
    data = load_fr_dataset("builtin")
    assert len(data) == 8 * len(DISTORTIONS) * 4 and data.lower_better is False
    assert len({item.ref_id for item in data.items}) == 8
    assert all(item.dist.shape == item.ref.shape == (192, 192, 3) for item in data.items)
    assert data[0]["dist"].shape == (3, 192, 192)
    # Items come as image x distortion x level 1..4: the pseudo-MOS falls strictly with the level.
    scores = data.scores().reshape(8, len(DISTORTIONS), 4)
    assert (np.diff(scores, axis=2) < 0).all() and (scores > 0).all() and (scores < 100).all()
    again = builtin_fr_items()
    assert all(np.array_equal(a.dist, b.dist) and a.score == b.score for a, b in zip(data.items, again))
    assert not np.array_equal(data.items[0].dist, data.items[0].ref)  # the mildest distortion still changes pixels


# ------------------------------------------------------------------------------------------------------ FRDataset
def _ramp(h=20, w=24):
    """Every pixel distinct, so a crop identifies its window."""
    values = np.arange(h * w * 3, dtype=np.uint32).reshape(h, w, 3) % 251
    return values.astype(np.uint8)


def _window(crop: torch.Tensor, image: np.ndarray):
    """(top, left, flipped) of ``crop`` in ``image``."""
    full = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    c = crop.shape[-1]
    for top in range(image.shape[0] - c + 1):
        for left in range(image.shape[1] - c + 1):
            window = full[:, top : top + c, left : left + c]
            for flipped, view in ((False, window), (True, window.flip(-1))):
                if torch.allclose(view, crop):
                    return top, left, flipped
    return None


def test_same_crop_window_for_dist_and_ref():
    image = _ramp()
    train = FRDataset([FRItem(image, image.copy(), 1.0, "a")], "t", False, crop_size=8, train=True)
    for _ in range(10):
        sample = train[0]
        assert torch.equal(sample["dist"], sample["ref"])
    # Shifted content: dist = ref + 1 everywhere, so equal windows differ by exactly 1/255.
    dist = image + 1
    train = FRDataset([FRItem(dist, image, 1.0, "a")], "t", False, crop_size=8, train=True)
    windows = set()
    for _ in range(10):
        sample = train[0]
        torch.testing.assert_close(sample["dist"] - sample["ref"], torch.full_like(sample["ref"], 1 / 255))
        windows.add(_window(sample["ref"], image))
    assert None not in windows and len(windows) > 1  # random windows and flips, always shared
    assert {flipped for _, _, flipped in windows} == {False, True}


def test_train_crops_reproducible_eval_centred_full_when_none():
    image = _ramp()
    train = FRDataset([FRItem(image, image, 1.0, "a")], "t", False, crop_size=8, train=True)
    torch.manual_seed(3)
    first = [train[0]["dist"] for _ in range(4)]
    torch.manual_seed(3)
    assert all(torch.equal(a, train[0]["dist"]) for a in first)
    evaluation = FRDataset([FRItem(image, image, 1.0, "a")], "t", False, crop_size=8)
    assert _window(evaluation[0]["dist"], image) == ((20 - 8) // 2, (24 - 8) // 2, False)
    full = FRDataset([FRItem(image, image, 1.0, "a")], "t", False)[0]
    assert full["dist"].shape == (3, 20, 24)
    with pytest.raises(ValueError, match="smaller than the 32x32 crop"):
        FRDataset([FRItem(image, image, 1.0, "a")], "t", False, crop_size=32)[0]


def test_subset_and_scores(kadid):
    data = load_fr_dataset(str(kadid))
    part = data.subset([1, 3], crop_size=8, train=True)
    assert len(part) == 2 and part.name == data.name and part.crop_size == 8 and part.train
    np.testing.assert_allclose(part.scores(), data.scores()[[1, 3]])
    assert part[0]["dist"].shape == (3, 8, 8)


# ---------------------------------------------------------------------------------------------------------- split
def _many_refs(n_refs=20, per_ref=3):
    image = np.zeros((4, 4, 3), np.uint8)
    return FRDataset(
        [FRItem(image, image, float(k), f"r{r}") for r in range(n_refs) for k in range(per_ref)], "m", False
    )


def test_split_by_reference():
    data = _many_refs()
    parts = split_by_reference(data, seed=0)
    assert parts == split_by_reference(data, seed=0)
    assert sorted(i for part in parts for i in part) == list(range(len(data)))
    refs = [{data.items[i].ref_id for i in part} for part in parts]
    assert not (refs[0] & refs[1] or refs[0] & refs[2] or refs[1] & refs[2])
    assert [len(r) for r in refs] == [12, 4, 4]
    assert all(part == sorted(part) for part in parts)
    assert split_by_reference(data, seed=1) != parts
    assert [len(p) for p in split_by_reference(_many_refs(3))] == [3, 3, 3]  # at least one reference each
    with pytest.raises(ValueError, match="at least 3"):
        split_by_reference(_many_refs(2))


# ------------------------------------------------------------------------------------------------------------ Hub
def test_saved_dataset_with_custom_columns(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    refs = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(3)]
    rows = {"distorted": [], "pristine": [], "quality": []}
    for r, ref in enumerate(refs):
        for k in range(2):
            rows["distorted"].append(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
            rows["pristine"].append(ref)
            rows["quality"].append(float(r + k))
    features = datasets.Features(
        {"distorted": datasets.Image(), "pristine": datasets.Image(), "quality": datasets.Value("float32")}
    )
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "saved"))

    data = load_fr_dataset(str(tmp_path / "saved"), "distorted", "pristine", "quality")
    assert len(data) == 6 and len({item.ref_id for item in data.items}) == 3
    np.testing.assert_allclose(data.scores(), [0, 1, 1, 2, 2, 3])
    sample = data[2]
    torch.testing.assert_close(sample["ref"], torch.from_numpy(np.array(refs[1])).permute(2, 0, 1).float() / 255)
    assert [len(p) for p in split_by_reference(data)] == [2, 2, 2]
    with pytest.raises(ValueError, match="no column 'score'; available: distorted, pristine, quality"):
        load_fr_dataset(str(tmp_path / "saved"), "distorted", "pristine")
