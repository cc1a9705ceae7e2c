"""FR-IQA data: official layouts (KADID-10k, TID2013, PIPAL, TQD, pyiqa csv), bad input, builtin, crops, splits;
score direction, reference identity across names and encodings, header-only image sizes."""

import argparse
import importlib.util
import io
import os

import numpy as np
import pytest
import torch
from conftest import find_window, ramp_image
from PIL import Image, PngImagePlugin
from scipy import stats

import asym.iqa.data.dataset as iqa_dataset
import asym.iqa.data.tables as iqa_tables
from asym.core.errors import UserError
from asym.iqa.data import (
    DISTORTIONS,
    PYIQA_META_INFO,
    FRDataset,
    FRItem,
    add_fr_dataset_args,
    builtin_fr_items,
    detect_layout,
    fr_dataset_kwargs,
    load_fr_dataset,
    split_by_reference,
)


def _write(path, seed=0, size=16):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def _file_id(path):
    """How file layouts identify a reference: its resolved path."""
    return os.path.normcase(os.path.realpath(path))


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
    assert first.score == pytest.approx(3.9) and first.ref_name == "I01" and first.ref_id == _file_id(first.ref)
    assert {item.ref_name for item in data.items} == {"I01", "I02"} and len({i.ref_id for i in data.items}) == 2
    sample = data[0]
    assert sample["dist"].shape == sample["ref"].shape == (3, 16, 16)
    assert sample["score"].dtype == torch.float32 and sample["score"].ndim == 0 and sample["index"] == 0
    assert load_fr_dataset(str(kadid), lower_better=True).lower_better is True


def test_tid2013_mixed_case_parses(tid):
    assert detect_layout(str(tid)) == "tid2013"
    data = load_fr_dataset(str(tid))
    assert len(data) == 4
    assert [item.ref_name for item in data.items] == ["I01", "I01", "I25", "I25"]
    assert all(item.ref_id == _file_id(item.ref) for item in data.items)
    assert data.items[0].ref == str(tid / "reference_images" / "I01.BMP")
    assert data.items[3].dist == str(tid / "distorted_images" / "I25_01_2.BMP")
    np.testing.assert_allclose(data.scores(), [5, 4, 5, 4])
    assert data[3]["dist"].shape == (3, 16, 16)


def test_pipal_parses(pipal):
    assert detect_layout(str(pipal)) == "pipal"
    data = load_fr_dataset(str(pipal))
    assert len(data) == 6 and data.lower_better is False  # Elo: higher is better
    assert [item.ref_name for item in data.items] == ["A0001"] * 3 + ["A0002"] * 3
    assert all(item.ref_id == _file_id(item.ref) for item in data.items)
    second = data.items[1]
    assert second.dist == str(pipal / "Train_Dis" / "Distortion_2" / "A0001_01_03.bmp")
    assert second.ref == str(pipal / "Train_Ref" / "A0001.bmp") and second.score == pytest.approx(1458.75)
    assert data[5]["dist"].shape == (3, 16, 16)


@pytest.mark.parametrize("line, problem", [("A0002_01_03.bmp,nan", "nan"), ("A0002_01_03.bmp 1400", "1 fields"),
                                           ("A0002_09_09.bmp,1400", "A0002_09_09.bmp does not exist")])  # fmt: skip
def test_pipal_malformed_line(pipal, line, problem):
    _replace_line(pipal / "Train_Label" / "A0002.txt", 1, line)
    with pytest.raises(UserError, match=rf"A0002\.txt line 2: .*{problem}"):
        load_fr_dataset(str(pipal))
    os.remove(pipal / "Train_Ref" / "A0001.bmp")
    with pytest.raises(UserError, match=r"A0001\.txt line 1: image A0001\.bmp does not exist"):
        load_fr_dataset(str(pipal))


def test_tqd_parses(tqd):
    assert detect_layout(str(tqd)) == "tqd"
    data = load_fr_dataset(str(tqd))
    assert len(data) == 6 and data.lower_better is False
    assert [item.ref_name for item in data.items] == ["5"] * 3 + ["11"] * 3
    assert all(item.ref_id == _file_id(item.ref) for item in data.items)
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
    with pytest.raises(UserError, match=rf"MOS\.txt line 5: .*{problem}"):
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
    assert data.items[1].score == 0.5 and data.items[1].ref_name == "ref0.png"
    assert data.items[1].ref_id == _file_id(data.items[1].ref)
    assert load_fr_dataset(str(root / "meta_info_TestDataset.csv"), lower_better=True).lower_better


def test_pyiqa_pipal_meta_info_names_its_reference_column_hq_name(tmp_path):
    """pyiqa's PIPAL csv (scripts/process_pipal.py): hq_name,dist_name,elo_score, images in Dist_Imgs / Train_Ref, as
    the pyiqa:pipal folder holds them (no Train_Label: read as pyiqa reads it)."""
    root = _pyiqa_folder(tmp_path / "pipal", "hq_name,dist_name,elo_score")
    os.rename(root / "meta_info_TestDataset.csv", root / "meta_info_PIPALDataset.csv")
    os.rename(root / "dist", root / "Dist_Imgs")
    os.rename(root / "ref", root / "Train_Ref")
    assert detect_layout(str(root)) == "pyiqa-csv"
    data = load_fr_dataset(str(root))
    assert len(data) == 6 and data.lower_better is False and "PIPAL" in data.direction
    assert data.items[1].ref == str(root / "Train_Ref" / "ref0.png") and data.items[1].score == 0.5


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
    with pytest.raises(UserError, match=rf"dmos\.csv line 6: .*{problem}"):
        load_fr_dataset(str(kadid))


@pytest.mark.parametrize("line, problem", [("nan i01_01_1.bmp", "nan"), ("5.1", "1 fields"), ("x i01_01_1.bmp", "not")])
def test_tid2013_malformed_line(tid, line, problem):
    _replace_line(tid / "mos_with_names.txt", 2, line)
    with pytest.raises(UserError, match=rf"mos_with_names\.txt line 3: .*{problem}"):
        load_fr_dataset(str(tid))


def test_pyiqa_malformed_row(tmp_path):
    root = _pyiqa_folder(tmp_path / "d")
    path = root / "meta_info_TestDataset.csv"
    path.write_text(path.read_text().replace("ref1.png,ref1_m0.png,1.0,0.3", "ref1.png,ref1_m0.png,,0.3"))
    with pytest.raises(UserError, match=r"meta_info_TestDataset\.csv line 4: empty mos"):
        load_fr_dataset(str(root))


def test_missing_image_is_named(kadid, tid, tmp_path):
    os.remove(kadid / "images" / "I02_02_01.png")
    with pytest.raises(UserError, match=r"dmos\.csv line \d+: image .*I02_02_01\.png does not exist"):
        load_fr_dataset(str(kadid))
    os.remove(tid / "distorted_images" / "i01_01_2.bmp")
    with pytest.raises(UserError, match=r"i01_01_2\.bmp does not exist"):
        load_fr_dataset(str(tid))
    root = _pyiqa_folder(tmp_path / "p")
    os.remove(root / "ref" / "ref2.png")
    with pytest.raises(UserError, match=r"ref2\.png does not exist"):
        load_fr_dataset(str(root))


def test_unknown_layout_missing_folder_and_empty(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="no known IQA layout.*kadid10k.*dmos.csv.*tid2013.*mos_with_names.txt.*pyiqa"):
        load_fr_dataset(str(tmp_path / "random"))
    with pytest.raises(UserError, match="does not exist"):
        load_fr_dataset(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "dmos.csv").write_text("dist_img,ref_img,dmos,var\n")
    with pytest.raises(UserError, match="no distorted images"):
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
def test_same_crop_window_for_dist_and_ref():
    image = ramp_image()
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
        windows.add(find_window(sample["ref"], image))
    assert None not in windows and len(windows) > 1  # random windows and flips, always shared
    assert {flipped for _, _, flipped in windows} == {False, True}


def test_train_crops_reproducible_eval_centred_full_when_none():
    image = ramp_image()
    train = FRDataset([FRItem(image, image, 1.0, "a")], "t", False, crop_size=8, train=True)
    torch.manual_seed(3)
    first = [train[0]["dist"] for _ in range(4)]
    torch.manual_seed(3)
    assert all(torch.equal(a, train[0]["dist"]) for a in first)
    evaluation = FRDataset([FRItem(image, image, 1.0, "a")], "t", False, crop_size=8)
    assert find_window(evaluation[0]["dist"], image) == ((20 - 8) // 2, (24 - 8) // 2, False)
    full = FRDataset([FRItem(image, image, 1.0, "a")], "t", False)[0]
    assert full["dist"].shape == (3, 20, 24)
    with pytest.raises(UserError, match="smaller than the 32x32 crop"):
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
    with pytest.raises(UserError, match="at least 3"):
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
    with pytest.raises(UserError, match="no column 'score'; available: distorted, pristine, quality"):
        load_fr_dataset(str(tmp_path / "saved"), "distorted", "pristine")


# ------------------------------------------------------------------------------------------------ score direction
def _noise_folder(root, header, scores, csv_name="meta_info_Noise.csv"):
    """3 smooth references x 4 noise levels (std 2, 8, 20, 50) in a pyiqa-style csv scored ``scores(std)``."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    rows = [header]
    for r in range(3):
        ref = np.stack([(xx * (4 + r)) % 256, yy * 6, (xx + yy) * 3], axis=-1).clip(0, 255).astype(np.uint8)
        os.makedirs(root / "ref", exist_ok=True)
        os.makedirs(root / "dist", exist_ok=True)
        Image.fromarray(ref).save(root / "ref" / f"r{r}.png")
        for k, std in enumerate((2, 8, 20, 50)):
            noisy = np.clip(np.round(ref + rng.normal(0, std, ref.shape)), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / "dist" / f"r{r}_n{k}.png")
            rows.append(f"r{r}.png,r{r}_n{k}.png,{scores(std)}")
    (root / csv_name).write_text("\n".join(rows) + "\n")
    return root


def _psnr_srcc(data):
    """SRCC between each pair's PSNR (higher is better) and ``data.quality()``."""
    psnr = []
    for i in range(len(data)):
        sample = data[i]
        psnr.append(-10 * np.log10(float(((sample["dist"] - sample["ref"]) ** 2).mean())))
    return stats.spearmanr(psnr, data.quality()).statistic


def test_pyiqa_dmos_csv_is_lower_better_and_quality_follows_psnr(tmp_path):
    data = load_fr_dataset(str(_noise_folder(tmp_path / "live", "ref_name,dist_name,dmos", lambda std: std)))
    assert data.lower_better is True
    assert data.direction == "lower is better (column 'dmos' of meta_info_Noise.csv: a differential MOS)"
    assert _psnr_srcc(data) > 0.9  # the noisier, the higher the dmos, the lower the quality and the PSNR
    mos = load_fr_dataset(str(_noise_folder(tmp_path / "mos", "ref_name,dist_name,mos", lambda std: 100 - std)))
    assert mos.lower_better is False and mos.direction.startswith("higher is better (column 'mos' of ")
    assert _psnr_srcc(mos) > 0.9
    score = load_fr_dataset(str(_noise_folder(tmp_path / "score", "ref_name,dist_name,score", lambda std: -std)))
    assert score.lower_better is False and "--lower_better if not" in score.direction  # assumed, and said so


def test_layouts_state_their_direction(kadid, tid, pipal, tqd):
    data = load_fr_dataset(str(kadid))
    assert data.lower_better is False
    assert data.direction == "higher is better (KADID-10k dmos.csv: mean degradation category rating 1..5)"
    assert f"{data.name}: {len(data)} pairs, scores {data.direction}" == (
        "kadid10k: 8 pairs, scores higher is better (KADID-10k dmos.csv: mean degradation category rating 1..5)"
    )
    for folder, why in ((tid, "TID2013"), (pipal, "PIPAL: Elo"), (tqd, "TQD")):
        data = load_fr_dataset(str(folder))
        assert data.lower_better is False and data.direction.startswith(f"higher is better ({why}")
    builtin = load_fr_dataset("builtin")
    assert builtin.lower_better is False and builtin.direction.startswith("higher is better (builtin pseudo-MOS")


def _kadid_meta_info(root, name):
    """KADID-10k as pyiqa's meta-info csv (ref_name,dist_name,dmos,std; images under images/)."""
    rows = ["ref_name,dist_name,dmos,std"]
    for r in (1, 2, 3):
        _write(str(root / "images" / f"I{r:02d}.png"), seed=r)
        for level in (1, 2, 3):
            _write(str(root / "images" / f"I{r:02d}_01_{level:02d}.png"), seed=10 * r + level)
            rows.append(f"I{r:02d}.png,I{r:02d}_01_{level:02d}.png,{5 - level:.2f},0.4")
    (root / name).write_text("\n".join(rows) + "\n")
    return root


def test_pyiqa_kadid_and_live_meta_info_by_name_and_content(tmp_path):
    data = load_fr_dataset(str(_kadid_meta_info(tmp_path / "kadid", "meta_info_KADID10kDataset.csv")))
    assert data.lower_better is False and "pyiqa's KADID-10k meta-info" in data.direction
    renamed = load_fr_dataset(str(_kadid_meta_info(tmp_path / "renamed", "kadid_scores.csv")))
    assert renamed.lower_better is False and "KADID-10k's dmos is a mean degradation" in renamed.direction
    # pyiqa's LIVE csv calls LIVE's DMOS "mos": its name decides, lower is better.
    live = _noise_folder(tmp_path / "live", "ref_name,dist_name,mos", lambda s: s, "meta_info_LIVEIQADataset.csv")
    data = load_fr_dataset(str(live))
    assert data.lower_better is True and "pyiqa's LIVE meta-info" in data.direction and _psnr_srcc(data) > 0.9


def test_known_pyiqa_meta_info_match_pyiqa_configs():
    """PYIQA_META_INFO is pyiqa's own table of full-reference datasets, where pyiqa is installed."""
    spec = importlib.util.find_spec("pyiqa")  # finds the package without importing it
    yaml = pytest.importorskip("yaml")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pyiqa is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "default_dataset_configs.yml")
    if not os.path.isfile(path):
        pytest.skip("this pyiqa has no default_dataset_configs.yml")
    with open(path) as file:
        configs = yaml.safe_load(file)
    fr = {os.path.basename(c["meta_info_file"]).lower(): c for c in configs.values() if c["type"] == "GeneralFRDataset"}
    assert set(fr) == set(PYIQA_META_INFO)
    for name, (_, lower, score_range) in PYIQA_META_INFO.items():
        assert (fr[name]["lower_better"], tuple(fr[name]["mos_range"])) == (lower, score_range)


def test_direction_overrides(kadid, tmp_path):
    data = load_fr_dataset(str(kadid), lower_better=True)
    assert data.lower_better is True
    assert data.direction == ("lower is better (--lower_better; without it: higher is better, KADID-10k dmos.csv: "
                              "mean degradation category rating 1..5)")  # fmt: skip
    assert load_fr_dataset(str(kadid), lower_better=False).direction == "higher is better (--higher_better)"
    root = _noise_folder(tmp_path / "d", "ref_name,dist_name,dmos", lambda std: std)
    flipped = load_fr_dataset(str(root), lower_better=False)
    assert flipped.lower_better is False and flipped.direction.startswith("higher is better (--higher_better; ")
    assert _psnr_srcc(flipped) < -0.9  # the user said so: quality() follows the override
    assert load_fr_dataset(str(root), lower_better=True).direction == "lower is better (--lower_better)"
    part = flipped.subset([0, 1], crop_size=8, train=True)
    assert part.lower_better is False and part.direction == flipped.direction
    assert FRDataset([], "x", True).direction == "lower is better (given)"


def test_cli_flags():
    parser = argparse.ArgumentParser()
    add_fr_dataset_args(parser)
    kwargs = fr_dataset_kwargs(parser.parse_args([]))
    assert kwargs["lower_better"] is None and kwargs["ref_id_column"] is None
    assert fr_dataset_kwargs(parser.parse_args(["--lower_better"]))["lower_better"] is True
    assert fr_dataset_kwargs(parser.parse_args(["--higher_better"]))["lower_better"] is False
    assert fr_dataset_kwargs(parser.parse_args(["--ref_id_column", "scene"]))["ref_id_column"] == "scene"
    with pytest.raises(SystemExit):
        parser.parse_args(["--lower_better", "--higher_better"])


# ------------------------------------------------------------------------------------------- reference identity
def _assert_no_reference_in_two_splits(data, seeds=range(10)):
    for seed in seeds:
        parts = split_by_reference(data, seed=seed)
        files = [{os.path.realpath(data.items[i].ref) for i in part} for part in parts]
        assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2]), seed


def test_reference_named_two_ways_is_one_reference(tmp_path):
    root = tmp_path / "aliases"
    rows = ["ref_name,dist_name,mos"]
    for r in range(1, 6):
        _write(str(root / "ref" / f"I{r:02d}.png"), seed=r)
        for k in range(4):
            _write(str(root / "dist" / f"I{r:02d}_{k}.png"), seed=10 * r + k)
            ref = f"ref/I{r:02d}.png" if k % 2 else f"I{r:02d}.png"  # the second is found under ref/: one file
            rows.append(f"{ref},I{r:02d}_{k}.png,{k}")
    os.symlink(root / "ref" / "I04.png", root / "linked.png")  # a third name: a symbolic link
    os.link(root / "ref" / "I05.png", root / "hard.png")  # and a fourth: a hard link
    rows += ["linked.png,I04_0.png,1", "hard.png,I05_0.png,1"]
    (root / "meta_info_Aliases.csv").write_text("\n".join(rows) + "\n")
    data = load_fr_dataset(str(root))
    assert len({item.ref_id for item in data.items}) == 5
    assert {"I01.png", "ref/I01.png", "linked.png"} <= {item.ref_name for item in data.items}
    _assert_no_reference_in_two_splits(data)


def _png(array, **options):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _table(path, n_refs=4, per_ref=4, extra=None, score_column="mos"):
    """A saved ``datasets`` table whose references come PNG-encoded two ways, alternating by row: compression level
    1, and level 9 with a text chunk. ``extra``: more columns, name -> f(reference index, row index)."""
    import datasets

    rng = np.random.default_rng(1)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "another encoder")
    rows = {"dist": [], "ref": [], score_column: [], **{name: [] for name in extra or {}}}
    for r in range(n_refs):
        ref = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        encodings = [_png(ref, compress_level=1), _png(ref, compress_level=9, pnginfo=info)]
        assert encodings[0] != encodings[1]
        for k in range(per_ref):
            rows["dist"].append({"bytes": _png(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)), "path": None})
            rows["ref"].append({"bytes": encodings[k % 2], "path": None})
            rows[score_column].append(float(k + 1))
            for name, value in (extra or {}).items():
                rows[name].append(value(r, k))
    features = {"dist": datasets.Image(), "ref": datasets.Image(), score_column: datasets.Value("float32")}
    features.update({name: datasets.Value("string") for name in extra or {}})
    datasets.Dataset.from_dict(rows, features=datasets.Features(features)).save_to_disk(str(path))
    return str(path)


def test_table_reference_encoded_two_ways_is_one_reference(tmp_path, monkeypatch):
    path = _table(tmp_path / "table")
    decoded, decode = [], iqa_tables.decode
    monkeypatch.setattr(iqa_tables, "decode", lambda source: decoded.append(source) or decode(source))
    data = load_fr_dataset(path, "dist", "ref", "mos")
    assert len(decoded) == 8  # each distinct byte string decoded once: 4 references x 2 encodings, not 16 rows
    assert len({item.ref_id for item in data.items}) == 4
    groups = [{data.items[i].ref_id for i in range(4 * r, 4 * r + 4)} for r in range(4)]
    assert all(len(group) == 1 for group in groups)
    for seed in range(10):
        split_of = {i: s for s, part in enumerate(split_by_reference(data, seed=seed)) for i in part}
        assert all(len({split_of[i] for i in range(4 * r, 4 * r + 4)}) == 1 for r in range(4))
    assert data.direction == "higher is better (column 'mos' of table: taken as a quality score; --lower_better if not)"


def test_table_ref_id_column_and_dmos_direction(tmp_path):
    scenes = {"scene": lambda r, k: "a" if r < 2 else f"s{r}"}  # references 0 and 1: two images of one scene
    path = _table(tmp_path / "table", extra=scenes, score_column="dmos")
    parser = argparse.ArgumentParser()
    add_fr_dataset_args(parser)
    args = parser.parse_args(["--image_column", "dist", "--ref_column", "ref", "--score_column", "dmos",
                              "--ref_id_column", "scene"])  # fmt: skip
    data = load_fr_dataset(path, **fr_dataset_kwargs(args))
    assert [item.ref_id for item in data.items] == ["a"] * 8 + ["s2"] * 4 + ["s3"] * 4
    assert data.lower_better is True and data.direction == (
        "lower is better (column 'dmos' of table: named like a differential MOS)"
    )
    assert len({item.ref_id for item in load_fr_dataset(path, "dist", "ref", "dmos").items}) == 4  # by pixels
    with pytest.raises(UserError, match="no column 'nope'"):
        load_fr_dataset(path, "dist", "ref", "dmos", ref_id_column="nope")


# -------------------------------------------------------------------------------------------- user errors, sizes
def test_non_utf8_files_are_user_errors(kadid, tid, tmp_path):
    root = _pyiqa_folder(tmp_path / "p")
    path = root / "meta_info_TestDataset.csv"
    path.write_bytes(path.read_text().replace("ref1.png,ref1_m0.png", "r\xe9f1.png,ref1_m0.png").encode("latin-1"))
    with pytest.raises(UserError, match=r"meta_info_TestDataset\.csv line 4: not UTF-8 text \(byte 0xe9\)"):
        load_fr_dataset(str(root))
    (kadid / "dmos.csv").write_bytes((kadid / "dmos.csv").read_bytes() + b"I01\xff.png,I01.png,3.0,0.5\n")
    with pytest.raises(UserError, match=r"dmos\.csv line 10: not UTF-8"):
        load_fr_dataset(str(kadid))
    (tid / "mos_with_names.txt").write_bytes(b"5.0 i01_01_1.bmp\r\n\x93quoted\x94\r\n")
    with pytest.raises(UserError, match=r"mos_with_names\.txt line 2: not UTF-8"):
        load_fr_dataset(str(tid))


def test_corrupt_images_are_user_errors_naming_them(tmp_path):
    root = _pyiqa_folder(tmp_path / "p")
    (root / "dist" / "ref1_m0.png").write_bytes(b"not a png at all")
    whole = (root / "dist" / "ref2_m1.png").read_bytes()
    (root / "dist" / "ref2_m1.png").write_bytes(whole[: len(whole) // 2])  # truncated: the header still reads
    data = load_fr_dataset(str(root))  # images are decoded on access
    with pytest.raises(UserError, match=r"image .*ref1_m0\.png cannot be read as an image"):
        data[2]
    with pytest.raises(UserError, match=r"image .*ref2_m1\.png cannot be read as an image"):
        data[5]
    with pytest.raises(UserError, match=r"ref1_m0\.png cannot be read as an image"):
        data.min_side()
    with pytest.raises(UserError, match=r"image .*ref1_m0\.png cannot be read as an image"):
        data.verify_images(progress=False)  # the up-front check of every image: the first broken one, in order
    with pytest.raises(UserError, match=r"image .*ref2_m1\.png cannot be read as an image \(OSError: Truncated"):
        data.subset([4, 5]).verify_images(progress=False)
    path = _table(tmp_path / "table", n_refs=3, per_ref=2)
    import datasets

    table = datasets.load_from_disk(path).cast_column("ref", datasets.Image(decode=False)).to_dict()
    table["ref"][3] = {"bytes": b"garbage", "path": None}
    features = datasets.load_from_disk(path).features
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "broken"))
    with pytest.raises(UserError, match=r"broken row 3, column 'ref': reference image row 3 cannot be read"):
        load_fr_dataset(str(tmp_path / "broken"), "dist", "ref", "mos")
    table["ref"][3] = table["ref"][2]
    whole = table["dist"][1]["bytes"]
    table["dist"][1] = {"bytes": whole[:-20], "path": None}  # decodes, but its last chunk is cut: verify sees it
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "cut"))
    cut = load_fr_dataset(str(tmp_path / "cut"), "dist", "ref", "mos")
    with pytest.raises(UserError, match=r"cut: image row 1, column 'dist' cannot be read as an image"):
        cut.verify_images(progress=False)
    cut.subset([0, 2, 3]).verify_images(progress=False)  # the others are whole


def test_image_sizes_and_min_side_read_headers_only(tmp_path, monkeypatch):
    root = tmp_path / "sizes"
    rows = ["ref_name,dist_name,mos"]
    rng = np.random.default_rng(0)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 10 high x 20 wide, shown turned by 90 degrees: 20 x 10
    shapes = [(20, 30, "png", {}), (14, 40, "png", {}), (10, 20, "jpg", {"exif": exif})]
    for r, (h, w, ext, options) in enumerate(shapes):
        for name in (f"ref{r}.{ext}", f"ref{r}_d.{ext}"):
            os.makedirs(root, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name, **options)
        rows.append(f"ref{r}.{ext},ref{r}_d.{ext},{r}")
    (root / "meta_info_Sizes.csv").write_text("\n".join(rows) + "\n")
    data = load_fr_dataset(str(root))
    decode = iqa_dataset.decode
    monkeypatch.setattr(iqa_dataset, "decode", lambda source: pytest.fail(f"decoded {source}"))
    assert data.image_sizes() == [(20, 30), (14, 40), (20, 10)]
    assert data.min_side() == 10
    assert data.subset([0, 1]).min_side() == 14
    monkeypatch.setattr(iqa_dataset, "decode", decode)
    assert [tuple(data[i]["dist"].shape[1:]) for i in range(3)] == data.image_sizes()  # as decoding will see them
    assert data.subset([0, 1], crop_size=14, train=True)[1]["dist"].shape == (3, 14, 14)
    table = load_fr_dataset(_table(tmp_path / "table", n_refs=3, per_ref=2), "dist", "ref", "mos")
    monkeypatch.setattr(iqa_dataset, "decode", lambda source: pytest.fail(f"decoded {source}"))
    assert table.image_sizes() == [(12, 12)] * 6 and table.min_side() == 12
    image = np.zeros((9, 11, 3), np.uint8)
    assert FRDataset([FRItem(image, image, 1.0, "a")], "m", False).min_side() == 9
