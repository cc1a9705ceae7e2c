"""``pyiqa:<name>`` dataset sources (asym.iqa.data.pyiqa_datasets): pyiqa's Hub mirror of a release, here a stand-in
snapshot in the Hub cache layout, read and trained on as the release folder is; each name in a folder of its own as
pyiqa's config gives it; hostile archives refused, with and without tarfile's data filter; concurrent and killed
fetches."""

import csv
import io
import json
import os
import shutil
import tarfile
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from asym.core.errors import UserError
from asym.iqa.data import load_fr_dataset, load_nr_dataset
from asym.iqa.data.pyiqa_datasets import ARCHIVES_REPO, META_INFO_REPO, fetch_pyiqa_dataset

ROOT = Path(__file__).resolve().parents[1]

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


# --- pyiqa's two Hub repos served from folders made here: each name's folder, hostile archives, concurrent fetches


def _png(width: int, height: int, seed: int) -> bytes:
    """A small PNG of ``width`` x ``height`` random pixels."""
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def _tar(files: dict[str, bytes], extra: tuple[tarfile.TarInfo, ...] = (), mode: str = "w:gz") -> bytes:
    """A tar archive of ``files`` (member path -> content; parent folders implied) and ``extra`` bare members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return out.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    return info


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """pyiqa's Hub repos as two folders: ``hub.publish(archives, metas)`` (file name -> bytes) puts files there, and
    huggingface_hub's ``snapshot_download`` returns them, as it returns a cached snapshot. ``hub.root``: where asym
    puts ``pyiqa:`` datasets (the asym cache in tmp_path)."""
    repos = {ARCHIVES_REPO: tmp_path / "hub" / "archives", META_INFO_REPO: tmp_path / "hub" / "metas"}
    for folder in repos.values():
        folder.mkdir(parents=True)

    def snapshot_download(repo_id, *, repo_type=None, allow_patterns=None, **_):
        assert repo_type == "dataset" and allow_patterns
        return str(repos[repo_id])

    def publish(archives=None, metas=None):
        for repo, files in ((ARCHIVES_REPO, archives or {}), (META_INFO_REPO, metas or {})):
            for name, data in files.items():
                (repos[repo] / name).write_bytes(data)

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    monkeypatch.setenv("ASYM_CACHE", str(tmp_path / "asym-cache"))
    return SimpleNamespace(publish=publish, root=tmp_path / "asym-cache" / "datasets" / "pyiqa")


KONIQ_NAMES = ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg")


def test_koniq10k_names_each_read_their_own_csv_and_images(hub):
    """pyiqa's config: koniq10k = 512x384 images + meta_info_KonIQ10kDataset.csv, koniq10k-1024 = 1024x768 images +
    the same csv, koniq10k++ = 512x384 images + meta_info_KonIQ10k++Dataset.csv, all from koniq10k.tgz (which also
    holds the release's own score file, pyiqa's source of its csv). Fetched in any order, each reads its own."""
    files = {
        f"koniq10k/{size}/{name}": _png(w, h, i)
        for size, (w, h) in (("512x384", (8, 6)), ("1024x768", (16, 12)))
        for i, name in enumerate(KONIQ_NAMES)
    }
    files["koniq10k/koniq10k_distributions_sets.csv"] = (
        "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set\n"
        + "".join(f"{name},1,1,1,1,1,5,{99 - i},1,training\n" for i, name in enumerate(KONIQ_NAMES))
    ).encode()
    splits = ("train", "train", "val", "test", "test")
    koniq = {name: 40.0 + 5 * i for i, name in enumerate(KONIQ_NAMES)}
    plus = {name: 1.5 + 0.5 * i for i, name in enumerate(KONIQ_NAMES)}
    metas = {f"meta_info_KonIQ10k{tag}Dataset.csv": ("img_name,mos,std,split\n" + "".join(
        f"{name},{scores[name]},0.5,{split}\n" for name, split in zip(KONIQ_NAMES, splits))).encode()
        for tag, scores in (("", koniq), ("++", plus))}  # fmt: skip
    hub.publish({"koniq10k.tgz": _tar(files)}, metas)
    expected = {"koniq10k++": ("512x384", (8, 6), plus), "koniq10k": ("512x384", (8, 6), koniq),
                "koniq10k-1024": ("1024x768", (16, 12), koniq)}  # fmt: skip
    for _ in range(2):  # fetched, then read again from the cache with all three there
        for name, (size, shape, scores) in expected.items():
            data = load_nr_dataset(f"pyiqa:{name}")
            assert {Path(item.image).parent.name for item in data.items} == {size}, name
            assert all(Image.open(item.image).size == shape for item in data.items), name
            assert {Path(item.image).name: item.score for item in data.items} == scores, name
            assert data.official_split == ([0, 1], [2], [3, 4]) and not data.lower_better, name
            assert data.name == name, name  # its own folder, named by it
    assert sorted(p.name for p in hub.root.iterdir() if not p.name.startswith(".")) == sorted(expected)


def test_every_name_pyiqa_downloads_gets_a_folder_of_its_own(hub):
    """Every name in pyiqa's download table, with stand-in archives holding each image folder its config names (plus
    a stray file beside them): fetched one after the other into one root, each name's folder holds its own meta-info
    csv and exactly the image folders of its config, and fetching them all again changes nothing."""
    from pyiqa import get_dataset_info
    from pyiqa.data.dataset_api import dataset_download_name

    def relative(config_path: str) -> str:  # ./datasets/CSIQ/dst_imgs -> CSIQ/dst_imgs
        return os.path.normpath(config_path).split(os.sep, 1)[-1].replace(os.sep, "/")

    roots = {name: [relative(get_dataset_info(name)[k]) for k in ("dataroot_target", "dataroot_ref")
                    if k in get_dataset_info(name)] for name in dataset_download_name}  # fmt: skip
    probe = {root: f"{root}/probe-{i}.png" for i, root in enumerate(sorted({r for rs in roots.values() for r in rs}))}
    archives: dict[str, dict[str, bytes]] = {}
    for name, archive in dataset_download_name.items():
        archives.setdefault(archive, {}).update({probe[root]: probe[root].encode() for root in roots[name]})
        top = roots[name][0].split("/")[0]  # a file beside the image folders (beside the archive's top folder where
        stray = "stray.txt" if top in roots[name] else f"{top}/stray.txt"  # that is the image folder)
        archives[archive][stray] = b"not in any config's image folder"
    for archive, files in archives.items():
        if archive.endswith(".zip"):
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as zipped:
                for member, data in files.items():
                    zipped.writestr(member, data)
            hub.publish({archive: out.getvalue()})
        else:
            hub.publish({archive: _tar(files, mode="w" if archive.endswith(".tar") else "w:gz")})
    metas = {os.path.basename(get_dataset_info(n)["meta_info_file"]) for n in dataset_download_name}
    hub.publish(metas={meta: f"img_name,mos\n{meta},1\n".encode() for meta in metas})
    first = {name: fetch_pyiqa_dataset(f"pyiqa:{name}") for name in sorted(dataset_download_name)}
    assert len(set(first.values())) == len(first), "two names share a folder"
    for name, folder in first.items():
        assert fetch_pyiqa_dataset(f"pyiqa:{name}") == folder
        meta = os.path.basename(get_dataset_info(name)["meta_info_file"])
        files = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
        held = sorted(f for f in files if not f.startswith("."))  # the marker aside
        assert held == sorted([meta, *(probe[root].split("/", 1)[1] for root in roots[name])]), name
        assert (Path(folder) / meta).read_text() == f"img_name,mos\n{meta},1\n", name


@pytest.fixture(params=["data filter", "no data filter"])
def tarfile_kind(request, monkeypatch):
    """Python's tarfile as it is, or as before Python 3.10.12 / 3.11.4: no ``data_filter``, no ``filter`` argument
    (passing one is a TypeError), members unpacked as they are."""
    if request.param == "no data filter":
        real = tarfile.TarFile.extractall
        trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}

        def extractall(self, path=".", members=None, *, numeric_owner=False):
            return real(self, path, members, numeric_owner=numeric_owner, **trusted)

        monkeypatch.delattr(tarfile, "data_filter", raising=False)
        monkeypatch.setattr(tarfile.TarFile, "extractall", extractall)
    return request.param


KADID_FILES = {f"kadid10k/images/I{r:02d}{level}.png": _png(6, 4, 10 * r + i)
               for r in (1, 2) for i, level in enumerate(("", "_01_01", "_01_02"))}  # fmt: skip
KADID_ROWS = "".join(f"I{r:02d}.png,I{r:02d}_01_{n:02d}.png,{5 - n}.0,0.5\n" for r in (1, 2) for n in (1, 2))
KADID_META = ("ref_name,dist_name,dmos,std\n" + KADID_ROWS).encode()
KADID_PUBLISHED = {"metas": {"meta_info_KADID10kDataset.csv": KADID_META}}


def test_hostile_archives_are_refused_with_one_error(hub, tarfile_kind, tmp_path):
    """Members that would land outside the folder they are unpacked into (``../x``, an absolute path, a symlink or
    hard link going out, a device file) make the archive refused with one UserError, nothing written, with or without
    tarfile's data filter; an honest archive (a link inside, a setuid bit) then unpacks, modes made plain."""
    hub.publish(**KADID_PUBLISHED)
    hostile = {
        "../x": ({"../escaped.txt": b"x"}, ()),
        "absolute": ({str(tmp_path / "absolute.txt"): b"x"}, ()),
        "up inside": ({"kadid10k/images/../../escaped.txt": b"x"}, ()),
        "symlink out": ({}, (_member("kadid10k/images/out", tarfile.SYMTYPE, "../../../escaped"),)),
        "symlink absolute": ({}, (_member("kadid10k/images/out", tarfile.SYMTYPE, str(tmp_path / "escaped")),)),
        "hard link out": ({}, (_member("kadid10k/images/out", tarfile.LNKTYPE, "../../escaped.txt"),)),
        "device": ({}, (_member("kadid10k/images/null", tarfile.CHRTYPE),)),
    }
    for kind, (files, extra) in hostile.items():
        hub.publish({"kadid10k.tgz": _tar({**KADID_FILES, **files}, extra)})
        with pytest.raises(UserError, match=r"kadid10k\.tgz: member .* refused, nothing unpacked"):
            fetch_pyiqa_dataset("pyiqa:kadid10k")
        assert not list(tmp_path.rglob("escaped*")) and not (tmp_path / "absolute.txt").exists(), kind
        assert not (hub.root / "kadid10k").exists(), kind
    link, setuid = _member("kadid10k/images/alias.png", tarfile.SYMTYPE, "I01.png"), 0o4755
    honest = link, _member("kadid10k/images/run.sh", mode=setuid)
    hub.publish({"kadid10k.tgz": _tar(KADID_FILES, honest)})
    folder = Path(fetch_pyiqa_dataset("pyiqa:kadid10k"))
    assert (folder / "images" / "alias.png").read_bytes() == KADID_FILES["kadid10k/images/I01.png"]
    assert not (folder / "images" / "run.sh").stat().st_mode & 0o7000  # no setuid bit
    assert len(load_fr_dataset("pyiqa:kadid10k")) == 4


def _folder_bytes(folder: str) -> dict[str, bytes]:
    """The images and the csv of a kadid10k folder as read right now."""
    names = [f"images/{Path(member).name}" for member in KADID_FILES] + ["meta_info_KADID10kDataset.csv"]
    return {name: (Path(folder) / name).read_bytes() for name in names}


EXPECTED_KADID = {**{f"images/{Path(m).name}": d for m, d in KADID_FILES.items()},
                  "meta_info_KADID10kDataset.csv": KADID_META}  # fmt: skip


def test_concurrent_fetches_each_get_the_complete_folder(hub, monkeypatch):
    """Two fetches of one name at once (the processes of an ``accelerate launch``), unpacking slowly, the second
    started when the first has written a file and a half (so that, unpacking into the same folder, it would truncate
    files the first has written): each, when it returns, finds every file complete, however the other is getting on."""
    hub.publish({"kadid10k.tgz": _tar(KADID_FILES)}, **KADID_PUBLISHED)
    real_copy, copies, second = tarfile.copyfileobj, [], threading.Event()

    def slow_copy(*args, **kwargs):  # the target file is open (truncated) and not yet written
        copies.append(threading.current_thread().name)
        if copies.count("a") == 2:
            second.set()
        time.sleep(0.08)
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(tarfile, "copyfileobj", slow_copy)
    seen, errors = {}, []

    def fetch() -> None:
        who = threading.current_thread().name
        if who == "b":
            second.wait(10)
            time.sleep(0.04)
        try:
            seen[who] = _folder_bytes(fetch_pyiqa_dataset("pyiqa:kadid10k"))  # read as soon as it is returned
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(f"{who}: {err!r}")

    threads = [threading.Thread(target=fetch, name=who) for who in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    wrong = {who: [name for name, data in EXPECTED_KADID.items() if files[name] != data] for who, files in seen.items()}
    assert wrong == {"a": [], "b": []}, "files not as published when the fetch returned"


def test_a_killed_fetch_is_not_taken_as_complete(hub, monkeypatch):
    """A fetch killed while it copies the meta-info csv (the old "complete" marker), and a folder an older asym left
    with a truncated csv beside complete images: neither is read as complete; the next fetch gives the whole csv."""
    hub.publish({"kadid10k.tgz": _tar(KADID_FILES)}, **KADID_PUBLISHED)
    real_copyfile = shutil.copyfile

    def killed_copy(src, dst, **kwargs):
        if str(src).endswith(".csv"):
            Path(dst).write_bytes(Path(src).read_bytes()[: len(KADID_META) // 2])
            raise KeyboardInterrupt  # the process is killed here
        return real_copyfile(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", killed_copy)
    with pytest.raises(KeyboardInterrupt):
        fetch_pyiqa_dataset("pyiqa:kadid10k")
    monkeypatch.setattr(shutil, "copyfile", real_copyfile)
    assert _folder_bytes(fetch_pyiqa_dataset("pyiqa:kadid10k")) == EXPECTED_KADID
    assert len(load_fr_dataset("pyiqa:kadid10k")) == 4
    shutil.rmtree(hub.root)  # an older asym's leftover: images complete, the csv copy cut short
    (hub.root / "kadid10k" / "images").mkdir(parents=True)
    for member, data in KADID_FILES.items():
        (hub.root / member).write_bytes(data)
    (hub.root / "kadid10k" / "meta_info_KADID10kDataset.csv").write_bytes(KADID_META[: len(KADID_META) // 2])
    assert _folder_bytes(fetch_pyiqa_dataset("pyiqa:kadid10k")) == EXPECTED_KADID
    assert [p.relative_to(hub.root) for p in hub.root.rglob("I01.png")] == [Path("kadid10k/images/I01.png")]
