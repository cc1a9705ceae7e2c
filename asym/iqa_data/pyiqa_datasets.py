"""``pyiqa:<name>`` dataset sources: the IQA releases pyiqa mirrors on the Hub (``kadid10k``, ``koniq10k``,
``tid2013``, ``pipal``, ``live``, ``csiq``, ...), fetched as pyiqa's ``load_dataset`` fetches them and laid out as a
folder asym reads.

pyiqa keeps each release as one archive in the Hub dataset repo ``chaofengc/IQA-PyTorch-Datasets`` (its
``dataset_download_name`` table: ``kadid10k.tgz``, ...) and its meta-info csvs in
``chaofengc/IQA-PyTorch-Datasets-metainfo`` (its ``default_dataset_configs.yml`` names each one). Both are downloaded
through huggingface_hub (its cache and offline mode apply), the archive is extracted once into
``<asym cache>/datasets/pyiqa/`` (``$ASYM_CACHE``, default ``~/.cache/asym``) and the dataset's meta-info csv is put
beside the extracted images, so that the folder reads as a pyiqa-style csv layout (or, where the archive holds the
release's own score files, as that release).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile

from ..decoded_cache import default_cache_dir
from ..errors import UserError, summarize

PREFIX = "pyiqa:"
ARCHIVES_REPO = "chaofengc/IQA-PyTorch-Datasets"
META_INFO_REPO = "chaofengc/IQA-PyTorch-Datasets-metainfo"


def pyiqa_dataset_names() -> list[str]:
    """The datasets pyiqa can download (its ``dataset_download_name`` table)."""
    from pyiqa.data.dataset_api import dataset_download_name

    return sorted(dataset_download_name)


def pyiqa_dataset_root() -> str:
    """Where ``pyiqa:`` datasets are extracted: ``<asym cache>/datasets/pyiqa``."""
    return os.path.join(default_cache_dir(), "datasets", "pyiqa")


def fetch_pyiqa_dataset(source: str, root: str | None = None) -> str:
    """The local folder of ``pyiqa:<name>``, downloaded and extracted on first use.

    Raises:
        UserError: a name pyiqa cannot download (the names it can are listed), or a download that fails (no network
            and nothing cached: the message says where to put the release instead).
    """
    from huggingface_hub import snapshot_download
    from pyiqa import get_dataset_info
    from pyiqa.data.dataset_api import dataset_download_name

    name = source.removeprefix(PREFIX)
    if name not in dataset_download_name:
        raise UserError(f"{source}: pyiqa downloads none called {name!r}; it has {', '.join(pyiqa_dataset_names())}")
    root = root or pyiqa_dataset_root()
    info = get_dataset_info(name)
    archive, meta_info = dataset_download_name[name], os.path.basename(info["meta_info_file"])
    target = os.path.join(root, _relative(info["dataroot_target"]))  # where pyiqa's config puts the images
    folder = os.path.join(root, _relative(info["dataroot_target"]).split(os.sep)[0])  # the dataset's top folder
    if os.path.isfile(os.path.join(folder, meta_info)) and os.path.isdir(target):
        return folder
    try:
        archives = snapshot_download(ARCHIVES_REPO, repo_type="dataset", allow_patterns=[archive])
        metas = snapshot_download(META_INFO_REPO, repo_type="dataset", allow_patterns=[meta_info])
    except Exception as err:  # noqa: BLE001 - offline, no such file, an HTTP error: one line either way
        raise UserError(f"{source}: {archive} / {meta_info} could not be downloaded from the Hub ({summarize(err)}); "
                        f"without network, put the release in a folder and pass that instead") from err  # fmt: skip
    for path in (os.path.join(archives, archive), os.path.join(metas, meta_info)):
        if not os.path.isfile(path):
            raise UserError(
                f"{source}: {os.path.basename(path)} is not in the snapshot huggingface_hub found (offline "
                "with an older cache?); without network, put the release in a folder and pass that instead"
            )
    os.makedirs(root, exist_ok=True)
    _extract(os.path.join(archives, archive), root)
    if not os.path.isdir(target):
        raise UserError(
            f"{source}: {archive} did not hold {_relative(info['dataroot_target'])}/ as pyiqa's config says"
        )
    shutil.copyfile(os.path.join(metas, meta_info), os.path.join(folder, meta_info))  # last: marks it complete
    return folder


def _relative(config_path: str) -> str:
    """A pyiqa config path (``./datasets/kadid10k/images``) below its ``datasets`` root (``kadid10k/images``)."""
    parts = os.path.normpath(config_path).split(os.sep)
    return os.path.join(*parts[parts.index("datasets") + 1 :])


def _extract(archive: str, root: str) -> None:
    """Unpack a .tgz / .tar / .zip into ``root``; members that would land outside it are refused (tarfile's
    ``data`` filter: no absolute paths, no ``..``, no links out)."""
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.namelist():
                if os.path.isabs(member) or ".." in member.split("/"):
                    raise UserError(f"{archive}: member {member} would be written outside {root}")
            zipped.extractall(root)
        return
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
