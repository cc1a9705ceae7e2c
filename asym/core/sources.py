"""What a model, metric or weights argument names: one function, one set of rules, for every source asym reads.

``resolve_source(text)`` decides, in this order, and nowhere else:

1. ``gan:<source>``: a discriminator's backbone weights (``asym.backbones.gan``); ``timm:<name>`` / ``hf:<id>``:
   a backbone of those libraries (``asym.backbones``). The prefix wins over anything on disk.
2. an existing folder -> ``folder``; an existing file -> ``file``.
3. text that can only be a path (starts with ``.``, ``/`` or ``~``; a file suffix; more than one ``/``; an
   ``owner/name`` whose ``owner`` is a folder here, as ``data/kadid10k`` beside ``data/``) but names nothing on
   disk -> ``missing``: a typo or a dataset not placed yet, reported at once instead of being tried as a Hub id.
4. ``owner/name`` that huggingface_hub accepts -> ``hub``.
5. anything else -> ``name`` (a registry or pyiqa name, a keyword such as ``random``; the caller's table decides).

Callers take the kinds they accept and name the others in their error; a Hub id is only ever downloaded where
``kind == "hub"``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

PREFIXES = ("gan:", "timm:", "hf:")
KINDS = ("gan", "timm", "hf", "folder", "file", "missing", "hub", "name")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # huggingface_hub's repo id shape (owner/name)
FILE_SUFFIXES = (
    ".safetensors",
    ".pt",
    ".pth",
    ".bin",
    ".ckpt",
    ".json",
    ".csv",
    ".txt",
    ".parquet",
    ".arrow",
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
)  # what only a file is called


@dataclass(frozen=True)
class Source:
    """A resolved source: ``kind`` (one of ``KINDS``) and ``value`` (the text after a prefix, else the text)."""

    text: str
    kind: str
    value: str

    @property
    def local(self) -> bool:
        """Whether it names something on disk (a folder or a file)."""
        return self.kind in ("folder", "file")


def looks_like_path(text: str) -> bool:
    """Whether ``text`` can only mean a path: it starts with ``.``, ``/`` or ``~``, ends in a file suffix, or has a
    ``/`` but is no ``owner/name`` Hub id."""
    if text.startswith((".", "/", "~")) or os.sep != "/" and os.sep in text:
        return True
    if "/" in text:
        return not is_hub_id(text)
    return text.lower().endswith(FILE_SUFFIXES)


def is_hub_id(text: str) -> bool:
    """Whether ``text`` is a Hub repo id of the ``owner/name`` form (no prefix, no path syntax, no file suffix)."""
    if not _HUB_ID.match(text) or text.lower().endswith(FILE_SUFFIXES):
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def resolve_source(text: str) -> Source:
    """The kind of source ``text`` names, by the rules of this module's docstring."""
    text = str(text)
    for prefix in PREFIXES:
        if text.startswith(prefix):
            return Source(text, prefix[:-1], text[len(prefix) :])
    if os.path.isdir(text):
        return Source(text, "folder", text)
    if os.path.isfile(text):
        return Source(text, "file", text)
    if looks_like_path(text) or os.path.lexists(text) or ("/" in text and os.path.isdir(text.split("/")[0])):
        return Source(text, "missing", text)
    if is_hub_id(text):
        return Source(text, "hub", text)
    return Source(text, "name", text)


def source_label(text: str) -> str:
    """A short label for tables: a folder's last part (``runs/sr/`` -> ``sr``), anything else as given."""
    return os.path.basename(os.path.normpath(text)) if os.path.isdir(text) else text


__all__ = [
    "FILE_SUFFIXES",
    "KINDS",
    "PREFIXES",
    "Source",
    "is_hub_id",
    "looks_like_path",
    "resolve_source",
    "source_label",
]
