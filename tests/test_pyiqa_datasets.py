"""``pyiqa:<name>`` dataset sources (asym.iqa_data.pyiqa_datasets): pyiqa's Hub mirror of a release, here a stand-in
snapshot in the Hub cache layout, read and trained on as the release folder is."""

import csv
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asym.errors import UserError
from asym.iqa_data import load_fr_dataset, load_nr_dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evaluate  # noqa: E402
import train_metric  # noqa: E402

REVISION = "1" * 40
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def _snapshot(cache: Path, repo: str, files: dict[str, bytes]) -> None:
    """A Hub dataset repo as huggingface_hub caches it: snapshots/<revision>/<file> and refs/main."""
    root = cache / f"datasets--{repo.replace('/', '--')}"
    (root / "snapshots" / REVISION).mkdir(parents=True)
    for name, data in files.items():
        (root / "snapshots" / REVISION / name).write_bytes(data)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(REVISION)


@pytest.fixture
def kadid_sources(tmp_path, monkeypatch):
    """KADID-10k-like images (3 references, 4 distortion levels each) twice: as the release folder (dmos.csv) and
    as pyiqa's Hub mirror (kadid10k.tgz of kadid10k/images/, meta_info_KADID10kDataset.csv), the latter in a Hub
    cache that huggingface_hub reads offline; the asym cache in tmp_path."""
    release = tmp_path / "release" / "kadid10k"
    (release / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for r in range(1, 4):
        ref = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(ref).save(release / "images" / f"I{r:02d}.png")
        for level in range(1, 5):
            noisy = (ref + rng.normal(0, 12 * level, ref.shape)).clip(0, 255).astype(np.uint8)
            dist = f"I{r:02d}_01_{level:02d}.png"
            Image.fromarray(noisy).save(release / "images" / dist)
            rows.append((dist, f"I{r:02d}.png", round(5.2 - level + 0.1 * r, 3)))
    with open(release / "dmos.csv", "w", newline="") as file:
        csv.writer(file).writerows([("dist_img", "ref_img", "dmos", "var"), *[(*row, 0.5) for row in rows]])
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(release / "images", arcname="kadid10k/images")
    meta = "ref_name,dist_name,dmos,std\n" + "".join(f"{ref},{dist},{score},0.5\n" for dist, ref, score in rows)
    cache = tmp_path / "hub"
    _snapshot(cache, "chaofengc/IQA-PyTorch-Datasets", {"kadid10k.tgz": archive.getvalue()})
    _snapshot(cache, "chaofengc/IQA-PyTorch-Datasets-metainfo", {"meta_info_KADID10kDataset.csv": meta.encode()})
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("ASYM_CACHE", str(tmp_path / "asym-cache"))
    return release, tmp_path


def test_pyiqa_kadid_reads_as_the_release_folder(kadid_sources):
    release, tmp_path = kadid_sources
    mirror, folder = load_fr_dataset("pyiqa:kadid10k"), load_fr_dataset(str(release))
    assert Path(mirror.items[0].dist).is_relative_to(tmp_path / "asym-cache" / "datasets" / "pyiqa" / "kadid10k")
    assert mirror.name == folder.name == "kadid10k" and not mirror.lower_better and not folder.lower_better
    by_key = {item.key: item for item in folder.items}
    assert sorted(item.key for item in mirror.items) == sorted(by_key)
    for item in mirror.items:
        twin = by_key[item.key]
        assert item.score == twin.score and Path(item.ref).name == Path(twin.ref).name
    assert mirror.split_unit() == "reference" and len(set(mirror.groups())) == 3
    nr = load_nr_dataset("pyiqa:kadid10k")  # the same source as NR: its distorted images, grouped by reference
    assert len(nr) == 12 and len(set(nr.groups())) == 3


def test_pyiqa_kadid_trains_as_the_release_folder(kadid_sources, tmp_path):
    release, _ = kadid_sources
    results = {}
    for name, source in (("mirror", "pyiqa:kadid10k"), ("folder", str(release))):
        args = train_metric.parse_args(["--dataset_name", source, "--backbone", "timm:resnet10t", "--weights", "random",
                                        "--max_train_steps", "2", "--crop_size", "32", "--train_batch_size", "2",
                                        "--report_to", "none", "--output_dir", str(tmp_path / name)])  # fmt: skip
        train_metric.main(args)
        results[name] = json.loads((tmp_path / name / "results.json").read_text())
    for part in ("initial_validation", "validation", "test", "test_set"):
        assert results["mirror"][part] == pytest.approx(results["folder"][part], nan_ok=True), part
    split = json.loads((tmp_path / "mirror" / "split.json").read_text())
    assert split["test"] == json.loads((tmp_path / "folder" / "split.json").read_text())["test"]
    scored = {}  # evaluate.py fr: the trained metric on its test split, psnr on every pair, the same either way
    for name, source in (("mirror", "pyiqa:kadid10k"), ("folder", str(release))):
        argv = ["fr", "--metrics", f"psnr,{tmp_path / name}", "--datasets", source, "--output_dir",
                str(tmp_path / f"fr-{name}"), "--device", "cpu"]  # fmt: skip
        scored[name] = [
            {k: v for k, v in r.items() if k != "split_file"} for r in evaluate.main(evaluate.parse_args(argv))
        ]
    for mine, theirs in zip(scored["mirror"], scored["folder"]):
        assert mine["n"] == theirs["n"] and mine["srcc"] == pytest.approx(theirs["srcc"]), (mine, theirs)


def test_unknown_and_unreachable_pyiqa_datasets_are_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="pyiqa downloads none called 'kadid'; it has .*kadid10k"):
        load_fr_dataset("pyiqa:kadid")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("ASYM_CACHE", str(tmp_path / "asym-cache"))
    with pytest.raises(UserError, match="could not be downloaded from the Hub .*put the release in a folder"):
        load_nr_dataset("pyiqa:koniq10k")


def test_preflight_download_fetches_what_pyiqa_mirrors_and_names_the_rest(kadid_sources, tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    import reproduce_paper

    argv = ["--preflight", "--download", "--data", str(tmp_path / "d"), "--output_dir", str(tmp_path / "runs")]
    with pytest.raises(UserError, match="17 of the study's 18 sources cannot be had"):
        reproduce_paper.main(reproduce_paper.parse_args(argv))
    out = capsys.readouterr().out
    assert (tmp_path / "d" / "kadid10k").is_symlink() and load_fr_dataset(str(tmp_path / "d" / "kadid10k"))
    assert "| KADID-10k (kadid10k) |" not in out  # fetched and read: only what is still missing is listed
    assert "preflight --download: KonIQ-10k: pyiqa:koniq10k: koniq10k.tgz is not in the snapshot" in out
    assert "--download fetches pyiqa:koniq10k" in out and "by hand: DIV2K_train_HR.zip" in out
    assert not (tmp_path / "runs").exists()
