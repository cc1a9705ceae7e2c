"""The decoded-image cache: every training image decoded once, into an uncompressed ``.npy`` that crops read through a
memory map without decoding.

A DIV2K PNG (2040x1356) takes ~40 ms to decode; a 256x256 crop of its cached array takes well under 1 ms, and the
pages the crops touch are shared by every DataLoader worker and every process of the machine (the OS page cache).

An entry is keyed by what the pixels come from, so a changed source is decoded again, never served stale:

* a file: its resolved path, size, modification time (ns) and inode;
* a cell of a ``datasets`` table (``(table, column, row)``): the table's fingerprint, the column and the row
  (``datasets`` gives a table a new fingerprint whenever its data files or its operations change).

Entries are written atomically (a temporary file renamed into place), so processes and workers that decode the same
image at once never read half a file; the training scripts let the main process build first
(``main_process_first``). Only successful decodes are stored: a broken file fails as it does without the cache.

The cache lives under ``$ASYM_CACHE`` (default ``$XDG_CACHE_HOME/asym``, i.e. ``~/.cache/asym``), in ``decoded/``,
and costs the images' decoded size on disk (3 bytes a pixel: DIV2K's 800 training images take 6.6 GB); delete the
folder at any time to reclaim it. The training scripts turn it on (``--cache_dir``, ``--no_cache``); the library
and ``evaluate.py`` read images straight from their files unless ``configure`` is called.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .atomic import atomic_path

CACHE_ENV = "ASYM_CACHE"


def default_cache_dir() -> str:
    """``$ASYM_CACHE``, else ``$XDG_CACHE_HOME/asym``, else ``~/.cache/asym`` (the Hugging Face-style user cache)."""
    if os.environ.get(CACHE_ENV):
        return os.path.expanduser(os.environ[CACHE_ENV])
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "asym")


@dataclass(frozen=True)
class DecodedCache:
    """Decoded images under ``root`` (a folder; made on first write). Picklable, so DataLoader workers get it."""

    root: str

    def entry(self, source) -> str | None:
        """The ``.npy`` path that holds ``source``'s pixels (whether written yet or not); None for what is not cached
        (in-memory arrays, which need no decoding)."""
        if isinstance(source, tuple):
            table, column, row = source
            fingerprint = getattr(table, "_fingerprint", None)
            if not fingerprint:
                return None
            identity = f"table {fingerprint} {column} {row}"
        elif isinstance(source, (str, os.PathLike)):
            path = os.path.realpath(source)
            stat = os.stat(path)
            identity = f"file {path} {stat.st_size} {stat.st_mtime_ns} {stat.st_ino}"
        else:
            return None
        key = hashlib.sha256(identity.encode()).hexdigest()
        return os.path.join(self.root, "decoded", key[:2], f"{key}.npy")

    def holds(self, source) -> bool:
        """Whether ``source`` has an entry (False for a source that cannot be stat'ed: reading it will say why)."""
        try:
            entry = self.entry(source)
        except OSError:
            return False
        found = entry is not None and os.path.isfile(entry)
        if found:
            _count("read")
        return found

    def load(self, source, decode: Callable) -> np.ndarray:
        """``source``'s pixels: a read-only memory map of its entry, decoding (``decode(source)``) and storing first
        when there is none yet."""
        entry = self.entry(source)
        if entry is None:
            return decode(source)
        try:
            return np.load(entry, mmap_mode="r")
        except (FileNotFoundError, ValueError, OSError):  # not written yet, or damaged (a full disk): decode again
            pixels = decode(source)
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
        try:
            with atomic_path(entry) as tmp:  # a temporary .npy renamed into place when complete
                np.save(tmp, np.ascontiguousarray(pixels), allow_pickle=False)
            _count("written")
        except OSError:  # a read-only or full cache costs speed, never the run
            pass


_active: DecodedCache | None = None
_counts = {"written": 0, "read": 0}  # since ``configure``: entries written, entries found (``cache_report``)
_counting = threading.Lock()  # images are checked in threads


def _count(what: str) -> None:
    with _counting:
        _counts[what] += 1


def configure(cache_dir: str | None = None, enabled: bool = True) -> DecodedCache | None:
    """Turn the cache on for this process (under ``cache_dir``, default ``default_cache_dir()``), or off. Datasets
    built afterwards read through it (``active``), and keep it when pickled into DataLoader workers."""
    global _active
    _counts.update(written=0, read=0)
    _active = DecodedCache(os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))) if enabled else None
    return _active


def active() -> DecodedCache | None:
    """The cache that datasets built now read through, or None (decode every access: the library's default)."""
    return _active


def add_cache_args(parser: argparse.ArgumentParser) -> None:
    """``--cache_dir`` and ``--no_cache``, for scripts that train on image files."""
    g = parser.add_argument_group("decoded-image cache")
    g.add_argument("--cache_dir", default=None,
                   help="where training images are cached decoded, once per machine, so that crops are read "
                        f"without decoding (default: ${CACHE_ENV}, else ~/.cache/asym; 3 bytes a pixel)")  # fmt: skip
    g.add_argument("--no_cache", action="store_true",
                   help="decode every image on every access instead (no disk used)")  # fmt: skip


def configure_from_args(args: argparse.Namespace) -> DecodedCache | None:
    """``configure`` from ``--cache_dir`` / ``--no_cache``."""
    return configure(args.cache_dir, enabled=not args.no_cache)


def cache_report() -> str:
    """One log line: where the active cache is and how many images this process decoded into it."""
    if _active is None:
        return "decoded-image cache off: every crop decodes its image (--no_cache)"
    if not any(_counts.values()):
        return f"decoded-image cache {_active.root}: unused (the images are in memory already)"
    return (f"decoded-image cache {_active.root}: {_counts['written']} images decoded into it now, "
            f"{_counts['read']} found there already")  # fmt: skip
