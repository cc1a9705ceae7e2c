"""Atomic file writes: a killed run leaves the previous file or the new one, never half of one.

Every file a run reports into (results, tables, charts, split files) is written through ``atomic_path``: a temporary
file in the same folder, renamed over the target when complete (``os.replace`` is atomic on one file system).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path`` (its folder created) to write to; on success it replaces ``path``,
    on any failure it is removed and ``path`` is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".writing-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        yield tmp
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


__all__ = ["atomic_path", "write_json", "write_text"]
