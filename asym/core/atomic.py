"""Atomic file writes: a killed run leaves the previous file or the new one, never half of one.

Every file a run reports into (results, tables, charts, split files) is written through ``atomic_path``: a temporary
file in the same folder, renamed over the target when complete (``os.replace`` is atomic on one file system).

The files get the mode any new file gets under the process's umask (``0o666 & ~umask``: 0644 under the usual 022),
as ``open()`` would give them. Temporary-file writers do not: ``tempfile.mkstemp`` and safetensors (>= 0.8, which
writes through a temporary file of its own) create files 0600, readable by their owner only, so a model or a
result shared with a group or a container user became unreadable to them. ``honour_umask`` repairs that.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def new_file_mode() -> int:
    """The permission bits ``open()`` gives a new file: ``0o666`` less the process's umask."""
    umask = os.umask(0o077)  # reading the umask means setting it: set a strict one for that instant, put it back
    os.umask(umask)
    return 0o666 & ~umask


def honour_umask(path: str) -> None:
    """Give the file ``path``, or every file below the folder ``path``, the mode of a new file (``new_file_mode``)."""
    mode = new_file_mode()
    files = [path] if not os.path.isdir(path) else [os.path.join(d, f) for d, _, names in os.walk(path) for f in names]
    for file in files:
        os.chmod(file, mode)


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path`` (its folder created) to write to; on success it replaces ``path``
    with the mode of a new file, on any failure it is removed and ``path`` is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".writing-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        yield tmp
        honour_umask(tmp)  # after the writer: some replace the file with a 0600 one of their own
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path: str, text: str, newline: str | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as file:
        file.write(text)


def write_json(path: str, obj, indent: int = 2) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=indent) + "\n")


__all__ = ["atomic_path", "honour_umask", "new_file_mode", "write_json", "write_text"]
