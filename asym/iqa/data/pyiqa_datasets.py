"""``pyiqa:<name>`` dataset sources: the IQA releases pyiqa mirrors on the Hub (``kadid10k``, ``koniq10k``,
``tid2013``, ``pipal``, ``live``, ``csiq``, ...), fetched as pyiqa's ``load_dataset`` fetches them and laid out as a
folder asym reads.

pyiqa keeps each release as one archive in the Hub dataset repo ``chaofengc/IQA-PyTorch-Datasets`` (its
``dataset_download_name`` table: ``kadid10k.tgz``, ...) and its meta-info csvs in
``chaofengc/IQA-PyTorch-Datasets-metainfo`` (its ``default_dataset_configs.yml`` names each one). Both are downloaded
through huggingface_hub (its cache and offline mode apply).

Each name gets a folder of its own, ``<asym cache>/datasets/pyiqa/<name>/`` (``$ASYM_CACHE``, default
``~/.cache/asym``), holding exactly what pyiqa's config gives that name: its meta-info csv and the image folders
below its ``dataroot_target`` / ``dataroot_ref``, nothing else of the archive. Several names share one archive
(``koniq10k``, ``koniq10k-1024`` and ``koniq10k++`` all unpack ``koniq10k.tgz``, to 512x384 or 1024x768 images and
two different csvs): unpacked into one folder, they read each other's images and csvs.

A folder is built in a temporary folder beside it and renamed into place complete, under a file lock per name (every
process of an ``accelerate launch`` may fetch at once: one unpacks, the others wait and reuse its folder). Its
marker, ``.asym-pyiqa.json`` (written last: the config it was built from and the csv's size), tells a complete folder
from a killed fetch's or an older asym's leftover, which is rebuilt.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import PureWindowsPath

from ...core.atomic import atomic_path, write_json
from ...core.decoded_cache import default_cache_dir
from ...core.errors import UserError, summarize

PREFIX = "pyiqa:"
ARCHIVES_REPO = "chaofengc/IQA-PyTorch-Datasets"
META_INFO_REPO = "chaofengc/IQA-PyTorch-Datasets-metainfo"
COMPLETE = ".asym-pyiqa.json"  # in a name's folder, written last: what it was built from (see _complete)
WORK = ".extracting"  # <root>/.extracting/<name>/: a name's temporary folders, renamed into place when complete


def pyiqa_dataset_names() -> list[str]:
    """The datasets pyiqa can download (its ``dataset_download_name`` table)."""
    from pyiqa.data.dataset_api import dataset_download_name

    return sorted(dataset_download_name)


def pyiqa_dataset_root() -> str:
    """Where ``pyiqa:`` datasets are extracted: ``<asym cache>/datasets/pyiqa``."""
    return os.path.join(default_cache_dir(), "datasets", "pyiqa")


def pyiqa_source(name: str) -> dict:
    """What pyiqa's config says of ``name``: its archive (``dataset_download_name``), its meta-info csv's file name
    (``meta_info_file``), its image folders (``dataroot_target``, then ``dataroot_ref`` where it has one) as paths below
    pyiqa's ``datasets`` folder, and ``top``: the first folder they share ("" where none), which the name's folder
    stands for."""
    from pyiqa import get_dataset_info
    from pyiqa.data.dataset_api import dataset_download_name

    info = get_dataset_info(name)
    roots = list(dict.fromkeys(_relative(info[key]) for key in ("dataroot_target", "dataroot_ref") if info.get(key)))
    tops = {root.split("/")[0] for root in roots}
    meta_info = _relative(info["meta_info_file"]).rsplit("/", 1)[-1]
    return {"name": name, "archive": dataset_download_name[name], "meta_info": meta_info, "roots": roots,
            "top": tops.pop() if len(tops) == 1 else ""}  # fmt: skip


def fetch_pyiqa_dataset(source: str, root: str | None = None) -> str:
    """The local folder of ``pyiqa:<name>`` (``<root>/<name>``), downloaded and extracted on first use; safe to call
    from several processes at once (one builds the folder, the others wait for it).

    Raises:
        UserError: a name pyiqa cannot download (the names it can are listed); a download that fails (no network
            and nothing cached: the message says where to put the release instead); an archive that does not hold
            the image folders pyiqa's config names, or cannot be read, or has a member that would land outside the
            folder it is unpacked into (absolute, ``..``, a link going up or out, a device file).
    """
    from filelock import FileLock
    from pyiqa.data.dataset_api import dataset_download_name

    name = source.removeprefix(PREFIX)
    if name not in dataset_download_name:
        raise UserError(f"{source}: pyiqa downloads none called {name!r}; it has {', '.join(pyiqa_dataset_names())}")
    root = root or pyiqa_dataset_root()
    plan, folder = pyiqa_source(name), os.path.join(root, name)
    if _complete(folder, plan):
        return folder
    os.makedirs(root, exist_ok=True)
    with FileLock(os.path.join(root, f".{name}.lock")):
        if not _complete(folder, plan):  # else another process built it while this one waited
            _build(source, plan, *_download(source, plan), folder)
    return folder


def _relative(config_path: str) -> str:
    """A pyiqa config path (``./datasets/kadid10k/images``) below its ``datasets`` folder (``kadid10k/images``), with
    ``/`` as separator, as archive members name it."""
    parts = [part for part in config_path.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(parts[parts.index("datasets") + 1 :])


def _complete(folder: str, plan: dict) -> bool:
    """Whether ``folder`` is one this module built for ``plan`` and finished: its marker names ``plan``, the csv has the
    size the marker records and the image folders are there. A leftover of a killed copy or of an older asym (which
    kept several names in one folder, with the csv as its marker) is not."""
    try:
        with open(os.path.join(folder, COMPLETE), encoding="utf-8") as file:
            record = json.load(file)
        size = os.path.getsize(os.path.join(folder, plan["meta_info"]))
    except (OSError, ValueError):
        return False
    images = [os.path.join(folder, _inside(root, plan["top"])) for root in plan["roots"]]
    return record.get("source") == plan and record.get("meta_info_bytes") == size and all(map(os.path.isdir, images))


def _inside(root: str, top: str) -> str:
    """Where the image folder ``root`` lies in a name's folder (which stands for ``top``)."""
    return root.removeprefix(top).lstrip("/") if top else root


def _download(source: str, plan: dict) -> tuple[str, str]:
    """The paths of ``plan``'s archive and meta-info csv in huggingface_hub's cache, downloaded where missing."""
    from huggingface_hub import snapshot_download

    archive, meta_info = plan["archive"], plan["meta_info"]
    try:
        archives = snapshot_download(ARCHIVES_REPO, repo_type="dataset", allow_patterns=[archive])
        metas = snapshot_download(META_INFO_REPO, repo_type="dataset", allow_patterns=[meta_info])
    except Exception as err:  # noqa: BLE001 - offline, no such file, an HTTP error: one line either way
        raise UserError(f"{source}: {archive} / {meta_info} could not be downloaded from the Hub ({summarize(err)}); "
                        f"without network, put the release in a folder and pass that instead") from err  # fmt: skip
    paths = os.path.join(archives, archive), os.path.join(metas, meta_info)
    for path in paths:
        if not os.path.isfile(path):
            raise UserError(
                f"{source}: {os.path.basename(path)} is not in the snapshot huggingface_hub found (offline "
                "with an older cache?); without network, put the release in a folder and pass that instead"
            )
    return paths


def _build(source: str, plan: dict, archive: str, meta_info: str, folder: str) -> None:
    """Build ``folder`` for ``plan`` (the caller holds its lock): ``plan``'s image folders unpacked from ``archive``
    into a temporary folder beside it, the csv and the marker written into it, then renamed into place (replacing an
    incomplete or outdated ``folder``). A killed build leaves only a temporary folder in
    ``<root>/.extracting/<name>/``, removed by the next build of that name."""
    scratch = os.path.join(os.path.dirname(folder), WORK, plan["name"])  # on the same file system: renames are atomic
    if os.path.isdir(scratch):
        for leftover in os.listdir(scratch):
            shutil.rmtree(os.path.join(scratch, leftover), ignore_errors=True)
    os.makedirs(scratch, exist_ok=True)
    work = tempfile.mkdtemp(dir=scratch)
    try:
        unpacked = os.path.join(work, "archive")
        _extract(archive, unpacked, plan["roots"])
        for image_root in plan["roots"]:
            if not os.path.isdir(os.path.join(unpacked, image_root)):
                raise UserError(f"{source}: {os.path.basename(archive)} did not hold {image_root}/ as pyiqa's config "
                                f"says")  # fmt: skip
        built = os.path.join(unpacked, plan["top"]) if plan["top"] else unpacked
        with atomic_path(os.path.join(built, plan["meta_info"])) as partial:
            shutil.copyfile(meta_info, partial)
        size = os.path.getsize(os.path.join(built, plan["meta_info"]))
        write_json(os.path.join(built, COMPLETE), {"source": plan, "meta_info_bytes": size})
        if _complete(folder, plan):  # built meanwhile by a process the lock did not hold back (a lock-less file
            return  # system): use that one, never move a complete folder that others may be reading
        if os.path.lexists(folder):  # incomplete or outdated (the marker says so): out of the way, removed below
            os.rename(folder, os.path.join(work, "replaced"))
        try:
            os.rename(built, folder)
        except OSError:
            if not _complete(folder, plan):  # else such a process renamed its own into place first: use that
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _leaves(path: str) -> bool:
    """Whether an archive member's path, or a link's target, could lead outside the folder it is unpacked into:
    absolute (``/x``, ``C:\\x``) or with a ``..`` component. A link going up is refused even where it would stay
    inside: whether it does depends on the links unpacked before and after it."""
    return path.startswith(("/", "\\")) or bool(PureWindowsPath(path).drive) or ".." in re.split(r"[\\/]", path)


def _below(path: str, roots: list[str]) -> bool:
    """Whether an archive member's path is one of ``roots`` or below one."""
    path = "/".join(part for part in path.split("/") if part not in ("", "."))
    return any(not root or path == root or path.startswith(root + "/") for root in roots)


def _refuse(archive: str, member: str, why: str) -> UserError:
    return UserError(f"{archive}: member {member!r} {why}: refused, nothing unpacked; the archive is not one pyiqa "
                     f"publishes (delete it from the Hub cache and fetch again)")  # fmt: skip


def _extract(archive: str, dest: str, roots: list[str]) -> None:
    """Unpack the members of a .tgz / .tar / .zip that lie in ``roots`` into ``dest``, after checking every member
    (``_leaves``; tar: only files, folders and links). Where tarfile has its ``data`` filter (Python >= 3.10.12 /
    3.11.4) it applies too; where it has not, modes and owners are reset here instead (no setuid bits, no foreign
    owners when run as root)."""
    try:
        if archive.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                names = zipped.namelist()
                for name in names:
                    if _leaves(name):
                        raise _refuse(archive, name, "would be written outside the folder it is unpacked into")
                zipped.extractall(dest, members=[name for name in names if _below(name, roots)])
            return
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                if _leaves(member.name):
                    raise _refuse(archive, member.name, "would be written outside the folder it is unpacked into")
                if (member.issym() or member.islnk()) and _leaves(member.linkname):
                    raise _refuse(archive, member.name, f"links to {member.linkname}, outside or above itself")
                if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
                    raise _refuse(archive, member.name, "is not a file, folder or link (a device or pipe)")
            selected = [member for member in members if _below(member.name, roots)]
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=selected, filter="data")
            else:
                tar.extractall(dest, members=[_plain(member) for member in selected])
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
        raise UserError(f"{archive} cannot be unpacked ({summarize(err)}); if the archive is damaged, delete it "
                        f"from the Hub cache and fetch again") from err  # fmt: skip


def _plain(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A copy of a checked tar member with the attributes the ``data`` filter would leave: 0644 files (0755 where
    executable, and folders), owned by whoever unpacks them."""
    member = copy.copy(member)
    member.mode = 0o755 if member.isdir() or member.mode & 0o100 else 0o644
    if hasattr(os, "getuid"):  # tarfile sets owners only where it runs as root, which Windows has not
        member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
    return member
