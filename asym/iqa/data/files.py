"""Reading a user's files, shared by the release readers (``layouts``) and the tables (``tables``): UTF-8 text and csv
rows with line numbers for messages, scores, image names, finding a release's images (``FileIndex``) and telling
reference files apart by what they are (``FileIds``). Every failure is a ``UserError`` naming file and line.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterator, Sequence

from asym.core.errors import UserError, list_names

DMOS_NAME = re.compile(r"(?<![a-z])d[-_ ]?mos", re.IGNORECASE)  # a column named like a differential MOS


def parse_score(text: str, where: str) -> float:
    """A subjective score written as text (a file's field, a table's cell): a finite float, else a ``UserError`` at
    ``where`` (file and line, or table row and column), so that a corrupt row is named rather than trained on."""
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{where}: score {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: score is {text!r}, expected a finite number")
    return value


def read_text_file(path: str) -> str:
    """A user's text file, decoded as UTF-8 (a BOM is dropped): an unreadable or non-UTF-8 file is a ``UserError``
    naming the file (and the line of the first bad byte)."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as err:
        raise UserError(f"{path} cannot be read ({err.strerror or err})") from err
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UserError(f"{path} line {line}: not UTF-8 text (byte {data[err.start]:#04x}); save the file as "
                        f"UTF-8") from None  # fmt: skip


def numbered_lines(path: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a user's text file, any line ends: the numbers name the line in messages."""
    yield from enumerate(re.split(r"\r\n|\r|\n", read_text_file(path)), start=1)


def read_csv_rows(path: str, required: Sequence[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the ``(line number, row)`` pairs of a user's csv, the header checked for the ``required``
    columns and every row for its field count (blank lines skipped), so that a malformed file is named by line."""
    reader = csv.reader(io.StringIO(read_text_file(path), newline=""))
    try:
        header = [column.strip() for column in next(reader, [])]
        missing = [column for column in required if column not in header]
        if missing:
            raise UserError(f"{path} line 1: header {','.join(header)} lacks {', '.join(missing)}")
        rows = []
        for fields in reader:
            if not fields or not "".join(fields).strip():
                continue  # blank line
            if len(fields) != len(header):
                raise UserError(f"{path} line {reader.line_num}: {len(fields)} fields, expected {len(header)} "
                                f"({','.join(header)})")  # fmt: skip
            rows.append((reader.line_num, {k: v.strip() for k, v in zip(header, fields)}))
    except csv.Error as err:  # e.g. a field over csv's size limit: not a csv of names and scores
        raise UserError(f"{path} line {reader.line_num}: not a valid csv ({err})") from None
    return header, rows


def csv_header(path: str) -> list[str]:
    """A csv's first row, stripped, read leniently (undecodable bytes replaced) to tell what kind of file it is before
    reading it; ``[]`` where it is no csv (not ours to complain about: the caller passes it over)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as file:
        try:
            return [column.strip() for column in next(csv.reader(file), [])]
        except csv.Error:
            return []


def require_nonempty(name: str, where: str, what: str) -> str:
    """``name`` (a file's field naming an image or a column's value), or a ``UserError`` at ``where`` if it is empty."""
    if not name:
        raise UserError(f"{where}: empty {what}")
    return name


def existing_image(path: str, where: str) -> str:
    """``path``, or a ``UserError`` at ``where`` (the line that lists it) if no such file exists."""
    if not os.path.isfile(path):
        raise UserError(f"{where}: image {path} does not exist")
    return path


def file_stem(name: str) -> str:
    """A path's file name without its folder and extension (``ref/I01.png`` -> ``I01``): the short name of a
    reference, or of a dataset read from one csv."""
    return os.path.splitext(os.path.basename(name))[0]


class FileIds:
    """A reference file's identity: its resolved path (``realpath``, ``normcase``), so that ``ref/I01.png`` and
    ``I01.png`` naming one file are one reference; names of one file that still differ (hard links, case on a
    case-insensitive file system) are merged by (device, inode)."""

    def __init__(self):
        self._by_name: dict[str, str] = {}
        self._by_inode: dict[tuple[int, int], str] = {}

    def __call__(self, path: str) -> str:
        if path not in self._by_name:
            resolved = os.path.normcase(os.path.realpath(path))
            try:
                stat = os.stat(resolved)
            except OSError:
                stat = None
            if stat is not None and stat.st_ino:  # st_ino is 0 where the file system has none
                resolved = self._by_inode.setdefault((stat.st_dev, stat.st_ino), resolved)
            self._by_name[path] = resolved
        return self._by_name[path]


class FileIndex:
    """Finds a release's images: at the listed path (relative to the folder or to one of ``subfolders``), else by
    file name (case-insensitive) anywhere below the folder, for releases that scatter images over subfolders. The
    folder is walked once, on the first name that needs it."""

    def __init__(self, folder: str, subfolders: Sequence[str] = ()):
        self.folder, self.subfolders, self._paths = folder, subfolders, None

    def find(self, name: str, where: str) -> str:
        for sub in ("", *self.subfolders):
            if os.path.isfile(candidate := os.path.join(self.folder, sub, name)):
                return candidate
        if self._paths is None:
            self._paths = {}
            for root, _, files in os.walk(self.folder):
                for file in sorted(files):
                    self._paths.setdefault(file.lower(), []).append(os.path.join(root, file))
        matches = self._paths.get(os.path.basename(name).lower(), [])
        if len(matches) > 1:
            raise UserError(f"{where}: {name} is ambiguous, found {list_names(sorted(matches), 3)}")
        if not matches:
            looked = ", ".join([self.folder, *(f"{sub}/" for sub in self.subfolders), "and below"])
            raise UserError(f"{where}: image {name} does not exist (looked in {looked})")
        return matches[0]
