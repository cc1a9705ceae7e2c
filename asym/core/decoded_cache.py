"""The decoded-image cache: every training image decoded once, into an uncompressed ``.npy`` that crops read through a
memory map without decoding.

A DIV2K PNG (2040x1356) takes ~40 ms to decode; a 256x256 crop of its cached array takes well under 1 ms, and the
pages the crops touch are shared by every DataLoader worker and every process of the machine (the OS page cache).

An entry is keyed by what its pixels are computed from, never by a name: the sha256 of the image's encoded bytes
(the file's, or a ``datasets`` cell's bytes, or the file a cell names) and the decoder's version (Pillow's and
``DECODER_VERSION``). A replaced image is decoded again whatever its name, size, times or inode say (``cp -p``, an
archive re-extracted with normalised times), and two sources with one name never share an entry. Hashing reads each
image once per run, in the up-front pass every training script already makes (~1 GB/s: 3.5 s for DIV2K's 800
training PNGs, against ~30 s to decode them); each source's key is kept for the run, so a crop reads no file but its
entry. The bytes hashed are the bytes decoded, so an entry always holds the pixels of its key.

Entries are written atomically (a temporary file renamed into place), so processes and workers that decode the same
image at once never read half a file; the training scripts let the main process build first
(``main_process_first``). Only successful decodes are stored: a broken file fails as it does without the cache.

The cache lives under ``$ASYM_CACHE`` (default ``$XDG_CACHE_HOME/asym``, i.e. ``~/.cache/asym``), in ``decoded/``,
and costs the images' decoded size on disk (3 bytes a pixel: DIV2K's 800 training images take 6.6 GB, KonIQ-10k
24 GB); delete the folder at any time to reclaim it. It keeps ``--cache_min_free_gb`` (default 5 GiB) free on its
disk for checkpoints and logs: an entry that would go below that, or any failed write (a full disk, a quota, a
read-only folder), stops caching for the run with one warning; the images not cached are decoded on each access.
The training scripts turn it on (``--cache_dir``, ``--no_cache``); the library and ``evaluate.py`` read images
straight from their files unless ``configure`` is called.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .atomic import atomic_path
from .errors import UserError, summarize

CACHE_ENV = "ASYM_CACHE"
DECODER_VERSION = 1  # bump when asym.core.images.decode / to_array change what pixels a file decodes to
DEFAULT_MIN_FREE_GB = 5.0  # kept free on the cache's disk: checkpoints, logs and results need room too
GIB = 2**30


def default_cache_dir() -> str:
    """``$ASYM_CACHE``, else ``$XDG_CACHE_HOME/asym``, else ``~/.cache/asym`` (the Hugging Face-style user cache), as
    an absolute path (a relative ``$ASYM_CACHE`` is taken from the current folder, once, here)."""
    if os.environ.get(CACHE_ENV):
        return os.path.abspath(os.path.expanduser(os.environ[CACHE_ENV]))
    return os.path.abspath(os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "asym"))


def _read(source) -> tuple[bytes, str | None]:
    """A source's encoded bytes and the file they came from (None for a cell holding its bytes)."""
    if isinstance(source, tuple):
        table, column, row = source
        cell = table[row][column]
        if cell["bytes"]:
            return cell["bytes"], None
        source = cell["path"]
    with open(source, "rb") as file:
        return file.read(), os.fspath(source)


def encoded(source) -> bytes:
    """The encoded bytes of an image source: a file's, or a ``(table, column, row)`` cell's (its bytes, else those of
    the file it names)."""
    return _read(source)[0]


def _signature(path: str) -> tuple:
    """What changes whenever a file is written, renamed over or touched (the change time cannot be set back)."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def decoder_identity() -> str:
    """What decoded pixels depend on besides the bytes: Pillow's version and asym's ``DECODER_VERSION``."""
    import PIL

    return f"Pillow {PIL.__version__} asym-decode {DECODER_VERSION}"


def _memo_key(source):
    """How a source is remembered within a run (its content key is computed once): a path as given, a table cell by
    its table's fingerprint; None for what cannot be told apart safely (a table without a fingerprint)."""
    if isinstance(source, tuple):
        table, column, row = source
        fingerprint = getattr(table, "_fingerprint", None)
        return ("cell", fingerprint, column, row) if fingerprint else None
    return ("file", os.fspath(source))


@dataclass(frozen=True)
class DecodedCache:
    """Decoded images under ``root`` (a folder; made on first write), keeping ``min_free`` bytes free on its disk.
    Picklable, so DataLoader workers get it with the content keys already computed."""

    root: str
    min_free: int = int(DEFAULT_MIN_FREE_GB * GIB)
    keys: dict = field(default_factory=dict, compare=False, repr=False)  # memo: source -> content key, this run
    state: dict = field(default_factory=dict, compare=False, repr=False)  # "stopped": why writing stopped

    def key(self, source, data: bytes | None = None) -> str | None:
        """The content key of ``source`` (sha256 of its encoded bytes and the decoder's identity), from ``data`` where
        the bytes were read already; None for in-memory arrays, which need no decoding.

        Within a run a source is hashed once: its key is kept with its file's signature (device, inode, size, times,
        change time included) and hashed again whenever that changes, so crops read no file but their entry."""
        if not isinstance(source, (str, os.PathLike, tuple)):
            return None
        memo = _memo_key(source)
        known = self.keys.get(memo) if data is None and memo is not None else None
        if known is not None:
            path, signature, key = known
            if path is None or _signature(path) == signature:
                return key
        if data is None:
            data, path = _read(source)
        else:
            path = source if isinstance(source, (str, os.PathLike)) else None
        signature = _signature(path) if path is not None else None  # taken after the read: a later write changes it
        digest = hashlib.sha256(decoder_identity().encode() + b"\0")
        digest.update(data)
        key = digest.hexdigest()
        if memo is not None:
            self.keys[memo] = (path, signature, key)
        return key

    def entry(self, source) -> str | None:
        """The ``.npy`` path that holds ``source``'s pixels (whether written yet or not); None for what is not cached.
        Reads the source's bytes the first time it is asked in a run (``key``)."""
        return self._path(self.key(source))

    def _path(self, key: str | None) -> str | None:
        return None if key is None else os.path.join(self.root, "decoded", key[:2], f"{key}.npy")

    def holds(self, source) -> bool:
        """Whether ``source``'s current content has an entry (False for a source that cannot be read: reading it
        will say why)."""
        try:
            entry = self.entry(source)
        except OSError:
            return False
        found = entry is not None and os.path.isfile(entry)
        if found:
            _count("read")
        return found

    def load(self, source, decode: Callable) -> np.ndarray:
        """``source``'s pixels: a read-only memory map of its entry, else decoded (``decode(source, data)`` from the
        very bytes its key was computed from) and stored."""
        entry = self.entry(source)
        if entry is None:
            return decode(source)
        try:
            return np.load(entry, mmap_mode="r")
        except (FileNotFoundError, ValueError, OSError):  # not written yet, or damaged: decode again
            pass
        data = encoded(source)
        entry = self._path(self.key(source, data))  # the bytes now read are the bytes stored: never another's pixels
        pixels = decode(source, data)
        self._store(entry, pixels)
        return pixels

    def shape(self, source, decode: Callable) -> tuple[int, ...]:
        """``source``'s array shape: from its entry's header when cached (no decoding), else by decoding and storing
        it. Raises what ``decode`` raises for an unreadable source."""
        pixels = self.load(source, decode)
        if isinstance(pixels, np.memmap):
            _count("read")
        return tuple(pixels.shape)

    def _store(self, entry: str, pixels: np.ndarray) -> None:
        """Write an entry, unless caching stopped; a write that would leave less than ``min_free`` on the disk, or
        that fails, stops caching for the run (one warning): the run goes on decoding, its checkpoints keep room."""
        if self.state.get("stopped"):
            self._skip(entry)
            return
        try:
            with _writing:  # the check and the room it reserves in one step: the up-front pass writes in threads
                free = shutil.disk_usage(self.root if os.path.isdir(self.root) else _existing_parent(self.root)).free
                free -= self.state.get("reserved", 0)
                if free - pixels.nbytes < self.min_free:
                    self._stop(entry, f"{free / GIB:.1f} GiB free on its disk, and --cache_min_free_gb keeps "
                                      f"{self.min_free / GIB:g} GiB for checkpoints and logs")  # fmt: skip
                    return
                self.state["reserved"] = self.state.get("reserved", 0) + pixels.nbytes
            try:
                with atomic_path(entry) as tmp:  # a temporary .npy renamed into place when complete
                    np.save(tmp, np.ascontiguousarray(pixels), allow_pickle=False)
            finally:
                with _writing:
                    self.state["reserved"] -= pixels.nbytes
            _count("written")
        except OSError as err:  # a full disk, a quota, a read-only folder: caching costs speed, never the run
            self._stop(entry, f"writing failed ({summarize(err)})")

    def _skip(self, entry: str) -> None:
        """Count an image not stored (once, however often it is read)."""
        with _counting:
            skipped = self.state.setdefault("skipped", set())
            if entry not in skipped:
                skipped.add(entry)
                _counts["skipped"] += 1

    def _stop(self, entry: str, why: str) -> None:
        self._skip(entry)
        with _counting:
            if self.state.get("stopped"):
                return
            self.state["stopped"] = why
        warnings.warn(f"decoded-image cache {self.root}: stopped caching: {why}; the images not cached yet are "
                      "decoded on every access (free space, --cache_dir elsewhere, or --no_cache)",
                      stacklevel=3)  # fmt: skip


def _existing_parent(path: str) -> str:
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


_active: DecodedCache | None = None
_why_off = "every crop decodes its image (--no_cache)"
_counts = {"written": 0, "read": 0, "skipped": 0}  # since ``configure``: entries written / found / not stored
_counting = threading.Lock()  # images are checked in threads
_writing = threading.Lock()  # free space checked and reserved by one writer at a time


def _count(what: str) -> None:
    with _counting:
        _counts[what] += 1


def writable(folder: str) -> str | None:
    """None when files can be written in ``folder`` (made if missing), else why not."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return summarize(err)
    return None


def configure(cache_dir: str | None = None, enabled: bool = True,
              min_free_gb: float = DEFAULT_MIN_FREE_GB) -> DecodedCache | None:  # fmt: skip
    """Turn the cache on for this process (under ``cache_dir``, default ``default_cache_dir()``), or off. Datasets
    built afterwards read through it (``active``), and keep it when pickled into DataLoader workers. A folder that
    cannot be written leaves the cache off, with one warning (``cache_report`` says why)."""
    global _active, _why_off
    _counts.update(written=0, read=0, skipped=0)
    _active, _why_off = None, "every crop decodes its image (--no_cache)"
    if not enabled:
        return None
    root = os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else default_cache_dir()
    why = writable(os.path.join(root, "decoded"))
    if why:
        _why_off = f"{root} cannot be written ({why}): every crop decodes its whole image"
        warnings.warn(f"decoded-image cache off: {_why_off}; pass --cache_dir to a writable folder, or --no_cache",
                      stacklevel=2)  # fmt: skip
        return None
    _active = DecodedCache(root, int(min_free_gb * GIB))
    return _active


def active() -> DecodedCache | None:
    """The cache that datasets built now read through, or None (decode every access: the library's default)."""
    return _active


def add_cache_args(parser: argparse.ArgumentParser) -> None:
    """``--cache_dir``, ``--no_cache`` and ``--cache_min_free_gb``, for scripts that train on image files."""
    from .flags import non_negative_float

    g = parser.add_argument_group("decoded-image cache")
    g.add_argument("--cache_dir", default=None,
                   help="where training images are cached decoded, once per machine, so that crops are read "
                        f"without decoding (default: ${CACHE_ENV}, else ~/.cache/asym; 3 bytes a pixel)")  # fmt: skip
    g.add_argument("--no_cache", action="store_true",
                   help="decode every image on every access instead (no disk used)")  # fmt: skip
    g.add_argument("--cache_min_free_gb", type=non_negative_float, default=DEFAULT_MIN_FREE_GB,
                   help="GiB the cache leaves free on its disk (for checkpoints and logs): it stops caching, with "
                        "one warning, rather than go below (0: cache until a write fails)")  # fmt: skip


def configure_from_args(args: argparse.Namespace) -> DecodedCache | None:
    """``configure`` from ``--cache_dir`` / ``--no_cache`` / ``--cache_min_free_gb``.

    Raises:
        UserError: ``--cache_dir`` was given and cannot be written (the default folder only warns).
    """
    if args.cache_dir and not args.no_cache:
        root = os.path.abspath(os.path.expanduser(args.cache_dir))
        why = writable(os.path.join(root, "decoded"))
        if why:
            raise UserError(f"--cache_dir {args.cache_dir} cannot be written ({why}): pass a writable folder, or "
                            "--no_cache")  # fmt: skip
    return configure(args.cache_dir, enabled=not args.no_cache, min_free_gb=args.cache_min_free_gb)


def cache_report() -> str:
    """One log line: where the active cache is and how many images this process decoded into it, or why it is off
    or stopped caching."""
    if _active is None:
        return f"decoded-image cache off: {_why_off}"
    stopped = _active.state.get("stopped")
    counts = (f"{_counts['written']} images decoded into it now, {_counts['read']} found there already"
              + (f", {_counts['skipped']} not stored" if _counts["skipped"] else ""))  # fmt: skip
    if stopped:
        return f"decoded-image cache {_active.root}: stopped caching ({stopped}): {counts}"
    if _unused():
        return f"decoded-image cache {_active.root}: unused (the images are in memory already)"
    return f"decoded-image cache {_active.root}: {counts}"


def _unused() -> bool:
    """The active cache neither stopped nor used by this process (its images were in memory already)."""
    return _active is not None and not _active.state.get("stopped") and not any(_counts.values())


def log_cache_report(logger: logging.Logger) -> None:
    """``cache_report()`` as an INFO line, or a DEBUG one where the cache was not needed (the images fit in memory:
    nothing the user must know)."""
    logger.log(logging.DEBUG if _unused() else logging.INFO, cache_report())
