"""NR-IQA data (KonIQ-10k as released, pyiqa NR csvs, FR layouts read as NR, tables, builtin), item keys, crops, and
train/validation/test splits with their split files."""

import argparse
import json
import os

import numpy as np
import pytest
import torch
from conftest import find_window, ramp_image
from PIL import Image

from asym.core.errors import UserError
from asym.iqa.data import (
    NRDataset,
    NRItem,
    add_fr_dataset_args,
    add_iqa_dataset_args,
    add_nr_dataset_args,
    add_split_args,
    choose_split,
    detect_layout,
    fr_dataset_kwargs,
    load_fr_dataset,
    load_nr_dataset,
    load_split,
    nr_dataset_kwargs,
    save_split,
)

SCORES_HEADER = "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore"
SETS_HEADER = "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set"
# KonIQ-10k rows as the fixture writes them: name, MOS (1..5), SD, MOS_zscore (0..100), the sets file's MOS (0..100,
# made to differ from MOS_zscore so a test can tell which column was read), set.
KONIQ = [
    ("10004473376.jpg", 3.82, 0.52, 77.38, 77.5, "training"),
    ("10007357496.jpg", 3.43, 0.64, 68.61, 68.75, "test"),
    ("10007903636.jpg", 1.92, 0.71, 28.01, 28.25, "training"),
    ("10009096245.jpg", 2.76, 0.60, 50.82, 51.0, "validation"),
    ("100117038.jpg", 4.10, 0.45, 84.26, 84.5, "training"),
    ("10012562524.jpg", 3.05, 0.58, 59.19, 59.25, "training"),
    ("1001486466.jpg", 2.31, 0.66, 37.90, 38.0, "test"),
    ("10017394745.jpg", 3.61, 0.49, 72.17, 72.25, "training"),
    ("10018256116.jpg", 2.95, 0.77, 55.40, 55.5, "validation"),
    ("100218585.jpg", 3.33, 0.55, 64.73, 64.75, "training"),
]


def _image(path, seed=0, size=(30, 40)):
    """A small random RGB image (height x width ``size``), PNG or JPEG by the name."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def _counts(mos):
    """Five rating counts whose mean is about ``mos``: only their format matters here."""
    return [1, 2, 3 + round(mos), 4, 1]


def _koniq(root, scores=True, sets=True, folders=("1024x768",), sets_order=None):
    """KonIQ-10k as released: the scores file and/or the sets file (rows in ``sets_order``), images in ``folders``."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, *_) in enumerate(KONIQ):
        for folder in folders:
            _image(str(root / folder / name), seed=i)
    if scores:
        rows = [SCORES_HEADER]
        for name, mos, sd, zscore, _, _ in KONIQ:
            c = _counts(mos)
            rows.append(f'"{name}",{",".join(map(str, c))},{sum(c)},{mos},{sd},{zscore}')  # the release quotes names
        (root / "koniq10k_scores_and_distributions.csv").write_text("\n".join(rows) + "\n")
    if sets:
        rows = [SETS_HEADER]
        for i in sets_order or range(len(KONIQ)):
            name, mos, sd, _, mos100, split = KONIQ[i]
            c = _counts(mos)
            rows.append(f"{name},{','.join(map(str, c))},{sum(c)},{mos100},{sd},{split}")
        (root / "koniq10k_distributions_sets.csv").write_text("\n".join(rows) + "\n")
    return root


def _expected_official(names):
    """(train, validation, test) indices of ``names`` by the fixture's set column."""
    split_of = {name: split for name, *_, split in KONIQ}
    return tuple([i for i, n in enumerate(names) if split_of[n] == s] for s in ("training", "validation", "test"))


def _replace_line(path, index, text):
    lines = path.read_text().splitlines()
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------------- KonIQ-10k
def test_koniq_scores_file_only(tmp_path):
    root = _koniq(tmp_path / "koniq10k", sets=False)
    data = load_nr_dataset(str(root))
    assert isinstance(data, NRDataset) and len(data) == 10 and data.name == "koniq10k"
    assert data.lower_better is False and data.official_split is None
    assert data.direction == ("higher is better (KonIQ-10k MOS_zscore of koniq10k_scores_and_distributions.csv, "
                              "0..100; images from 1024x768/)")  # fmt: skip
    assert data.items[2].score == 28.01 and data.items[2].key == "10007903636.jpg"
    assert data.items[2].image == str(root / "1024x768" / "10007903636.jpg")
    assert data.keys() == [row[0] for row in KONIQ] and data.split_unit() == "image"
    sample = data[4]
    assert sample["image"].shape == (3, 30, 40) and sample["image"].dtype == torch.float32
    assert sample["score"].dtype == torch.float32 and sample["score"].ndim == 0 and sample["index"] == 4
    assert 0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1
    mos = load_nr_dataset(str(root), score_column="MOS")
    assert mos.scores().tolist() == [row[1] for row in KONIQ]
    assert mos.direction == ("higher is better (KonIQ-10k MOS of koniq10k_scores_and_distributions.csv, mean rating "
                             "1..5; images from 1024x768/)")  # fmt: skip
    with pytest.raises(UserError, match="--score_column c_total: KonIQ-10k's scores are MOS_zscore"):
        load_nr_dataset(str(root), score_column="c_total")
    with pytest.raises(UserError, match="no official split: use --split random"):
        choose_split(data, "official")


def test_koniq_sets_file_only_has_the_official_split(tmp_path):
    root = _koniq(tmp_path / "koniq10k", scores=False)
    data = load_nr_dataset(str(root))
    assert data.scores().tolist() == [row[4] for row in KONIQ]
    assert data.direction == ("higher is better (KonIQ-10k MOS of koniq10k_distributions_sets.csv, 0..100; images "
                              "from 1024x768/)")  # fmt: skip
    assert data.official_split == ([0, 2, 4, 5, 7, 9], [3, 8], [1, 6])
    parts, how = choose_split(data, "official")
    assert parts == ([0, 2, 4, 5, 7, 9], [3, 8], [1, 6]) and how == "official"
    with pytest.raises(UserError, match="has no koniq10k_scores_and_distributions.csv, whose MOS_zscore"):
        load_nr_dataset(str(root), score_column="MOS_zscore")
    assert data.subset([0, 1]).official_split is None  # a subset's indices are not the parent's


def test_koniq_both_files_joined_by_name(tmp_path):
    order = [9, 3, 0, 7, 1, 5, 2, 8, 4, 6]  # the sets file in another order: joined by name, not by line
    root = _koniq(tmp_path / "koniq10k", sets_order=order)
    data = load_nr_dataset(str(root))
    assert data.keys() == [row[0] for row in KONIQ]  # the scores file's order
    assert data.scores().tolist() == [row[3] for row in KONIQ]  # MOS_zscore
    assert data.official_split == _expected_official(data.keys())
    assert "MOS_zscore of koniq10k_scores_and_distributions.csv, 0..100" in data.direction
    assert load_nr_dataset(str(root / "koniq10k_distributions_sets.csv")).keys() == data.keys()  # a file: its folder
    sets = root / "koniq10k_distributions_sets.csv"
    sets.write_text(sets.read_text().replace("100117038.jpg", "99.jpg"))  # one image renamed in one file
    with pytest.raises(UserError, match=r"koniq10k_scores_and_distributions\.csv line 6: image 100117038\.jpg is "
                                        r"not in .*koniq10k_distributions_sets\.csv"):  # fmt: skip
        load_nr_dataset(str(root))
    os.remove(root / "koniq10k_scores_and_distributions.csv")
    with pytest.raises(UserError, match=r"distributions_sets\.csv line 10: image .*99\.jpg does not exist"):
        load_nr_dataset(str(root))


def test_koniq_image_folder(tmp_path):
    both = load_nr_dataset(str(_koniq(tmp_path / "both", sets=False, folders=("512x384", "1024x768"))))
    assert "images from 1024x768/" in both.direction and "1024x768" in both.items[0].image
    small = load_nr_dataset(str(_koniq(tmp_path / "small", sets=False, folders=("512x384",))))
    assert "images from 512x384/" in small.direction and small.keys() == both.keys()  # one split file serves both
    root = _koniq(tmp_path / "none", sets=False, folders=())
    with pytest.raises(UserError, match="has no image folder 1024x768/ or 512x384/"):
        load_nr_dataset(str(root))
    with pytest.raises(UserError, match="no-reference dataset.*load_nr_dataset"):
        detect_layout(str(root))  # FR loaders say what it is


@pytest.mark.parametrize(
    "row, problem",
    [('"10007903636.jpg",1,2,5,4,1,13,1.92,0.71', "9 fields, expected 10"),
     ('"10007903636.jpg",1,2,5,4,1,13,abc,0.71,28.01', r"column 'MOS': score 'abc' is not a number"),
     ('"10007903636.jpg",1,2,5,4,1,13,1.92,0.71,nan', r"column 'MOS_zscore': score is 'nan'"),
     ('"10004473376.jpg",1,2,5,4,1,13,1.92,0.71,28.01', r"image 10004473376\.jpg is listed twice \(also line 2\)"),
     (',1,2,5,4,1,13,1.92,0.71,28.01', "empty image_name")],
)  # fmt: skip
def test_koniq_malformed_row_names_file_and_line(tmp_path, row, problem):
    root = _koniq(tmp_path / "koniq10k", sets=False)
    _replace_line(root / "koniq10k_scores_and_distributions.csv", 3, row)
    with pytest.raises(UserError, match=rf"koniq10k_scores_and_distributions\.csv line 4[:,] .*{problem}"):
        load_nr_dataset(str(root))


def test_koniq_missing_image_column_set_and_empty(tmp_path):
    root = _koniq(tmp_path / "koniq10k")
    os.remove(root / "1024x768" / "10009096245.jpg")
    with pytest.raises(UserError, match=r"scores_and_distributions\.csv line 5: image .*10009096245\.jpg does not "):
        load_nr_dataset(str(root))
    root = _koniq(tmp_path / "sets", scores=False)
    _replace_line(root / "koniq10k_distributions_sets.csv", 2, "10007357496.jpg,1,2,5,4,1,13,68.75,0.64,testing")
    with pytest.raises(UserError, match=r"sets\.csv line 3: set 'testing' is not training, validation or test"):
        load_nr_dataset(str(root))
    _replace_line(root / "koniq10k_distributions_sets.csv", 0, SETS_HEADER.replace(",set", ",split"))
    with pytest.raises(UserError, match=r"sets\.csv line 1: header .* lacks set"):
        load_nr_dataset(str(root))
    (root / "koniq10k_distributions_sets.csv").write_text(SETS_HEADER + "\n")
    with pytest.raises(UserError, match="has no images with scores"):
        load_nr_dataset(str(root))
    (root / "koniq10k_distributions_sets.csv").write_text("")
    with pytest.raises(UserError, match=r"sets\.csv line 1: header  lacks image_name"):
        load_nr_dataset(str(root))


# ------------------------------------------------------------------------------------------------- pyiqa NR csvs
KONIQ_PYIQA_HEADER = "img_name,mos,std,split,c1,c2,c3,c4,c5,c_total"  # pyiqa's meta_info_KonIQ10kDataset.csv


def _pyiqa_nr(root, split=True, header=KONIQ_PYIQA_HEADER, csv="meta_info_KonIQ10kDataset"):
    """pyiqa's KonIQ-10k NR meta-info csv beside the images' folder (bare names, images found in 1024x768/)."""
    rows = [header if split else header.replace(",split", "")]
    for i, (name, _, sd, zscore, _, subset) in enumerate(KONIQ):
        _image(str(root / "1024x768" / name), seed=i)
        label = {"training": 0, "validation": 1, "test": 2}[subset]
        rows.append(f"{name},{zscore},{sd}{f',{label}' if split else ''},1,2,3,4,1,11")
    (root / f"{csv}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_pyiqa_nr_csv_with_split(tmp_path):
    root = _pyiqa_nr(tmp_path / "pyiqa_koniq")
    data = load_nr_dataset(str(root))  # the folder holding one csv
    assert data.name == "pyiqa_koniq" and len(data) == 10
    assert data.items[3].score == 50.82 and data.items[3].image == str(root / "1024x768" / "10009096245.jpg")
    assert data.keys() == [row[0] for row in KONIQ] and data.official_split == _expected_official(data.keys())
    assert data.direction == "higher is better (column 'mos' of meta_info_KonIQ10kDataset.csv: a mean opinion score)"
    by_path = load_nr_dataset(str(root / "meta_info_KonIQ10kDataset.csv"))
    assert by_path.name == "meta_info_KonIQ10kDataset" and by_path.scores().tolist() == [row[3] for row in KONIQ]
    assert load_nr_dataset(str(root), score_column="std").scores().tolist() == [row[2] for row in KONIQ]
    with pytest.raises(UserError, match="has no column 'nope'"):
        load_nr_dataset(str(root), score_column="nope")


def test_pyiqa_nr_csv_without_split_and_dmos(tmp_path):
    root = _pyiqa_nr(tmp_path / "plain", split=False, header="image,dmos,std,split,c1,c2,c3,c4,c5,c_total",
                     csv="my_scores")  # fmt: skip
    data = load_nr_dataset(str(root))
    assert data.official_split is None and data.lower_better is True
    assert data.direction == "lower is better (column 'dmos' of my_scores.csv: a differential MOS)"
    assert np.allclose(data.quality(), [-row[3] for row in KONIQ])
    with pytest.raises(UserError, match="plain has no official split: use --split random"):
        choose_split(data, "official")
    _replace_line(root / "my_scores.csv", 2, "10007357496.jpg,abc,0.64,1,2,3,4,1,11")
    with pytest.raises(UserError, match=r"my_scores\.csv line 3: score 'abc' is not a number"):
        load_nr_dataset(str(root))
    _replace_line(root / "my_scores.csv", 2, "10007357496.jpg,3.0,0.64")
    with pytest.raises(UserError, match=r"my_scores\.csv line 3: 3 fields, expected 9"):
        load_nr_dataset(str(root))
    _replace_line(root / "my_scores.csv", 2, "gone.jpg,3.0,0.64,1,2,3,4,1,11")
    with pytest.raises(UserError, match=r"my_scores\.csv line 3: image gone\.jpg does not exist"):
        load_nr_dataset(str(root))
    (root / "my_scores.csv").write_text("image,dmos\n")
    with pytest.raises(UserError, match="has no images with scores"):
        load_nr_dataset(str(root))
    with pytest.raises(UserError, match=r"file .*missing\.csv does not exist"):
        load_nr_dataset(str(root / "missing.csv"))


# ------------------------------------------------------------------------------------------------ FR layouts as NR
def _kadid(root, n_refs=5, per_ref=3):
    """KADID-10k: dmos.csv + images/I01_01_01.png ..., references images/I01.png."""
    lines = ["dist_img,ref_img,dmos,var"]
    for r in range(1, n_refs + 1):
        _image(str(root / "images" / f"I{r:02d}.png"), seed=r, size=(16, 16))
        for d in range(1, per_ref + 1):
            name = f"I{r:02d}_{d:02d}_01.png"
            _image(str(root / "images" / name), seed=100 * r + d, size=(16, 16))
            lines.append(f"{name},I{r:02d}.png,{1 + 0.5 * d + 0.01 * r:.2f},0.5")
    (root / "dmos.csv").write_text("\n".join(lines) + "\n")
    return root


def test_kadid_as_nr_splits_by_reference(tmp_path):
    root = _kadid(tmp_path / "kadid10k")
    data = load_nr_dataset(str(root))
    assert data.name == "kadid10k" and len(data) == 15 and data.lower_better is False
    assert data.direction == "higher is better (KADID-10k dmos.csv: mean degradation category rating 1..5)"
    assert data.items[4].key == "I02_02_01.png" and data.items[4].score == 2.02
    assert data.items[4].image == str(root / "images" / "I02_02_01.png") and data[4]["image"].shape == (3, 16, 16)
    assert data.split_unit() == "reference"
    reference = [os.path.basename(os.path.realpath(item.ref_id)) for item in data.items]
    assert reference[:4] == ["I01.png"] * 3 + ["I02.png"]
    for seed in range(5):
        parts, how = choose_split(data, "random", seed=seed)
        assert how == f"random 6:2:2 by reference, seed {seed}"
        refs = [{reference[i] for i in part} for part in parts]
        assert [len(r) for r in refs] == [3, 1, 1] and not (refs[0] & refs[1] or refs[0] & refs[2] or refs[1] & refs[2])
    fr = load_fr_dataset(str(root))
    assert fr.keys() == data.keys()  # FR and NR runs on one folder share split files
    save_split(str(tmp_path / "fr"), fr, choose_split(fr)[0], "random 6:2:2 by reference, seed 0")
    assert load_split(str(tmp_path / "fr"), data) == choose_split(fr)[0]


# ---------------------------------------------------------------------------------------------- tables, builtin
def test_saved_dataset_table(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    rows = {"picture": [Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)) for _ in range(4)],
            "quality": [61.5, 22.0, 80.25, 47.0]}  # fmt: skip
    features = datasets.Features({"picture": datasets.Image(), "quality": datasets.Value("float32")})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "photos"))
    data = load_nr_dataset(str(tmp_path / "photos"), image_column="picture", score_column="quality")
    assert data.name == "photos" and data.scores().tolist() == [61.5, 22.0, 80.25, 47.0]
    assert data.keys() == ["row 0", "row 1", "row 2", "row 3"] and data.split_unit() == "image"
    assert data.direction == ("higher is better (column 'quality' of photos: taken as a quality score; --lower_better "
                              "if not)")  # fmt: skip
    torch.testing.assert_close(data[2]["image"], torch.from_numpy(np.array(rows["picture"][2])).permute(2, 0, 1) / 255)
    assert data.image_sizes() == [(30, 40)] * 4
    with pytest.raises(UserError, match="no column 'score'; available: picture, quality"):
        load_nr_dataset(str(tmp_path / "photos"), image_column="picture")
    flipped = load_nr_dataset(str(tmp_path / "photos"), "picture", "quality", lower_better=True)
    assert flipped.lower_better and flipped.direction.startswith("lower is better (--lower_better; without it: ")


def _kadid_like_table(path, n_refs=10, per_ref=4):
    """A KADID-like saved table: ``n_refs`` 8x8 references x ``per_ref`` distorted versions, columns dist_image,
    ref_image, scene (the reference's name) and dmos (KADID's 1..5 rating)."""
    import datasets

    rng = np.random.default_rng(3)
    rows = {"dist_image": [], "ref_image": [], "scene": [], "dmos": []}
    for r in range(n_refs):
        ref = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        for k in range(per_ref):
            rows["dist_image"].append(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)))
            rows["ref_image"].append(ref)
            rows["scene"].append(f"I{r:02d}")
            rows["dmos"].append(1.0 + k)
    features = datasets.Features({"dist_image": datasets.Image(), "ref_image": datasets.Image(),
                                  "scene": datasets.Value("string"), "dmos": datasets.Value("float32")})  # fmt: skip
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(path))
    return str(path)


def test_nr_table_with_references_is_split_by_reference(tmp_path):
    """A 10x4 KADID-like table in NR mode: with --ref_column (pixels) or --ref_id_column, no reference lands in two
    splits, for any seed; without either it is split by image, with a warning saying what to pass."""
    import warnings

    import train_iqa

    path = _kadid_like_table(tmp_path / "kadid-table")
    scene = [f"I{i // 4:02d}" for i in range(40)]  # what the test wrote: row i shows reference i // 4
    argv = ["--mode", "nr", "--dataset_name", path, "--image_column", "dist_image", "--score_column", "dmos"]
    for extra in (["--ref_column", "ref_image"], ["--ref_id_column", "scene"],
                  ["--ref_column", "ref_image", "--ref_id_column", "scene"]):  # fmt: skip
        kwargs = nr_dataset_kwargs(train_iqa.parse_args([*argv, *extra]))
        data = load_nr_dataset(path, **kwargs)
        assert len(data) == 40 and data.split_unit() == "reference" and data.keys()[5] == "row 5"
        assert data.lower_better is False  # KADID's dmos, a rating 1..5, named as such
        for seed in range(5):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # split by reference: no warning
                parts, how = choose_split(data, "random", seed=seed)
            assert how == f"random 6:2:2 by reference, seed {seed}"
            refs = [{scene[i] for i in part} for part in parts]
            assert [len(r) for r in refs] == [6, 2, 2] and sum(map(len, refs)) == 10, (extra, seed, refs)
    by_image = load_nr_dataset(path, "dist_image", "dmos")
    assert by_image.split_unit() == "image" and by_image.references_unknown
    with pytest.warns(UserWarning, match="kadid-table is split by image: the table names no references.*--ref_column"):
        parts, how = choose_split(by_image, "random", seed=0)
    assert how == "random 6:2:2 by image, seed 0"
    assert sum(len({scene[i] for i in part} & {scene[i] for i in other}) > 0 for part in parts for other in parts
               if part is not other) > 0  # fmt: skip  # without references, they leak (what the warning is about)
    with pytest.raises(UserError, match="no column 'nope'"):
        load_nr_dataset(path, "dist_image", "dmos", ref_id_column="nope")


def test_builtin_nr():
    data = load_nr_dataset("builtin")
    assert len(data) == 160 and data.name == "builtin" and data.lower_better is False
    assert data.direction == load_fr_dataset("builtin").direction
    assert data.items[0].key == "astronaut/blur-1" and data.items[0].ref_id == "astronaut"
    assert data.items[0].score == 80.0  # 100 - 20 x level 1 x blur severity 1.0
    assert data[0]["image"].shape == (3, 192, 192) and data.min_side() == 192
    parts, how = choose_split(data)
    photos = [{data.items[i].ref_id for i in part} for part in parts]
    assert how == "random 6:2:2 by reference, seed 0" and sorted(map(len, photos)) == [2, 2, 4]
    assert not (photos[0] & photos[1] or photos[0] & photos[2] or photos[1] & photos[2])


def test_unknown_and_missing_sources(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    with pytest.raises(UserError, match="no known IQA layout.*koniq10k.*pyiqa-nr-csv.*kadid10k"):
        load_nr_dataset(str(tmp_path / "notes"))
    with pytest.raises(UserError, match="does not exist"):
        load_nr_dataset(str(tmp_path / "nowhere"))
    for name in ("a", "b"):
        (tmp_path / "two").mkdir(exist_ok=True)
        (tmp_path / "two" / f"{name}.csv").write_text("img,mos\n")
    with pytest.raises(UserError, match="holds 2 NR meta-info csvs .*pass the path"):
        load_nr_dataset(str(tmp_path / "two"))


# ---------------------------------------------------------------------------------------------------- NRDataset
def test_crops():
    image = ramp_image()
    train = NRDataset([NRItem(image, 1.0, key="a")], "t", False, crop_size=8, train=True)
    windows = []
    for seed in range(6):
        torch.manual_seed(seed)
        windows.append(find_window(train[0]["image"], image))
    assert None not in windows and len(set(windows)) > 1 and {w[2] for w in windows} == {False, True}
    torch.manual_seed(3)
    first = train[0]["image"]
    torch.manual_seed(3)
    assert torch.equal(first, train[0]["image"])
    evaluation = train.subset([0], crop_size=8)
    assert all(find_window(evaluation[0]["image"], image) == (6, 8, False) for _ in range(3))  # (20-8)//2, (24-8)//2
    assert train.subset([0])[0]["image"].shape == (3, 20, 24)
    with pytest.raises(UserError, match="an in-memory image is 20x24, smaller than the 32x32 crop"):
        train.subset([0], crop_size=32)[0]


def test_too_small_file_is_named(tmp_path):
    root = _koniq(tmp_path / "koniq10k", sets=False)
    data = load_nr_dataset(str(root)).subset([1], crop_size=32)
    with pytest.raises(UserError, match=r"10007357496\.jpg is 30x40, smaller than the 32x32 crop"):
        data[0]
    assert data.min_side() == 30


# ------------------------------------------------------------------------------------------------------- splits
def _many(n=50, refs=None):
    image = np.zeros((4, 4, 3), np.uint8)
    return NRDataset([NRItem(image, float(i), ref_id=f"r{i % refs}" if refs else "", key=f"img{i:03d}.png")
                      for i in range(n)], "many", False)  # fmt: skip


def test_random_split_by_image():
    data = _many()
    parts, how = choose_split(data, seed=0)
    assert how == "random 6:2:2 by image, seed 0" and [len(p) for p in parts] == [30, 10, 10]
    assert sorted(i for part in parts for i in part) == list(range(50)) and all(p == sorted(p) for p in parts)
    assert choose_split(data, seed=0)[0] == parts and choose_split(_many(), "random", seed=0)[0] == parts
    assert choose_split(data, seed=1)[0] != parts
    assert choose_split(data, ratios=(0.8, 0.1, 0.1))[1] == "random 8:1:1 by image, seed 0"
    with pytest.raises(UserError, match="unknown split 'kfold': use one of random, official"):
        choose_split(data, "kfold")
    with pytest.raises(UserError, match="has 2 image\\(s\\): .*needs at least 3"):
        choose_split(_many(2))


def test_split_file_round_trip(tmp_path):
    data = _many(refs=7)
    parts, how = choose_split(data, seed=4)
    path = save_split(str(tmp_path / "run" / "split.json"), data, parts, how)
    assert os.listdir(tmp_path / "run") == ["split.json"]  # written atomically: no temporary left
    record = json.loads((tmp_path / "run" / "split.json").read_text())
    assert record["dataset"] == "many" and record["how"] == "random 6:2:2 by reference, seed 4"
    assert record["n_items"] == 50 and len(record["fingerprint"]) == 64
    assert record["train"] == [f"img{i:03d}.png" for i in parts[0]]
    assert load_split(path, data) == parts and load_split(str(tmp_path / "run"), data) == parts
    reordered = NRDataset(data.items[::-1], "many", False)  # same images in another order: same split by key
    assert [sorted(reordered.keys()[i] for i in p) for p in load_split(path, reordered)] == [
        sorted(record[name]) for name in ("train", "validation", "test")
    ]
    again, how_again = choose_split(data, "official", split_file=path)  # the file wins over --split
    assert again == parts and how_again == f"from {path} (random 6:2:2 by reference, seed 4)"


def test_split_file_from_another_dataset(tmp_path):
    path = save_split(str(tmp_path / "split.json"), _many(), choose_split(_many())[0], "random")
    other = NRDataset([NRItem(np.zeros((4, 4, 3), np.uint8), 1.0, key=f"x{i}.png") for i in range(40)], "other", False)
    with pytest.raises(UserError, match=r"split file .*split\.json was made for dataset many: 50 of its 50 images are "
                                        r"not in other \(e\.g\. img000\.png, .*\): pass the split file written for "
                                        r"this dataset, or drop --split_file"):  # fmt: skip
        load_split(path, other)
    bigger = _many(60)
    with pytest.raises(UserError, match="puts 10 of the 60 images of many in no split"):
        load_split(path, bigger)


@pytest.mark.parametrize(
    "text, problem",
    [('{"dataset": "many", "train": ["img000.png", "img0', "not JSON"),
     ("\x00\x01garbage", "not JSON"),
     ("[1, 2, 3]", "holds a JSON list, not a split"),
     ('{"train": [], "validation": []}', "lacks 'test'"),
     ('{"train": [1, 2], "validation": [], "test": []}', "has a malformed 'train'"),
     ('{"train": ["img000.png"], "validation": [], "test": ["img000.png"]}', "'img000.png' is in both train and test"),
     ('{"train": ["img000.png", "img000.png"], "validation": [], "test": []}', "'img000.png' is twice in train")],
)  # fmt: skip
def test_bad_split_files(tmp_path, text, problem):
    (tmp_path / "split.json").write_text(text)
    with pytest.raises(UserError, match=problem):
        load_split(str(tmp_path / "split.json"), _many())
    with pytest.raises(UserError, match="does not exist"):
        choose_split(_many(), split_file=str(tmp_path / "other.json"))


def test_unwritable_split_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot be written"):
        save_split(str(tmp_path / "file" / "split.json"), _many(), choose_split(_many())[0], "random")


def test_fr_keys(tmp_path):
    fr = load_fr_dataset("builtin")
    assert fr.keys()[:2] == ["astronaut/blur-1", "astronaut/blur-2"] and len(set(fr.keys())) == 160
    assert NRDataset([NRItem(np.zeros((2, 2, 3)), 1.0)] * 2, "n", False).keys() == ["item 0", "item 1"]
    assert NRDataset([NRItem("a.png", 1.0, key="a.png")] * 3, "n", False).keys() == ["a.png", "a.png#2", "a.png#3"]


# -------------------------------------------------------------------------------------------------------- flags
def test_cli_flags():
    parser = argparse.ArgumentParser()
    add_nr_dataset_args(parser)
    add_split_args(parser)
    args = parser.parse_args([])
    assert nr_dataset_kwargs(args) == {"image_column": "image", "score_column": "score", "split": "train",
                                       "lower_better": None}  # fmt: skip
    assert (args.split, args.split_file) == ("random", None)
    args = parser.parse_args(["--higher_better", "--split", "official", "--split_file", "run/split.json"])
    assert nr_dataset_kwargs(args)["lower_better"] is False and args.split_file == "run/split.json"
    with pytest.raises(SystemExit):
        parser.parse_args(["--split", "kfold"])

    both = argparse.ArgumentParser()
    add_iqa_dataset_args(both)
    args = both.parse_args([])
    assert nr_dataset_kwargs(args) == {"split": "train", "lower_better": None}  # columns: the loader's defaults
    assert fr_dataset_kwargs(args) == {"split": "train", "lower_better": None, "ref_id_column": None}
    args = both.parse_args(["--score_column", "MOS", "--ref_column", "pristine", "--lower_better"])
    assert nr_dataset_kwargs(args) == {"score_column": "MOS", "split": "train", "lower_better": True,
                                       "ref_column": "pristine"}  # fmt: skip
    assert fr_dataset_kwargs(args)["ref_column"] == "pristine" and fr_dataset_kwargs(args)["score_column"] == "MOS"
    fr = argparse.ArgumentParser()
    add_fr_dataset_args(fr)
    assert fr_dataset_kwargs(fr.parse_args([]))["image_column"] == "dist_image"
