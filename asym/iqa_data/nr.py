"""``load_nr_dataset``: no-reference IQA data (image, score) from builtin, KonIQ-10k as released, any FR layout read
as NR, pyiqa's NR meta-info csvs, or a Hub / local table; and the command-line flags that describe an NR dataset
(``add_nr_dataset_args``) or either kind (``add_iqa_dataset_args``, for train_iqa.py).

The items and dataset (``NRItem``, ``NRDataset``) live in ``dataset`` beside their FR counterparts, with which they
share a base; they are importable from here too.
"""

from __future__ import annotations

import os

from asym.errors import UserError
from asym.images import is_saved_dataset, open_image_table

from .builtin import builtin_fr_items
from .dataset import NRDataset, NRItem, _direction, _Scores
from .files import _score, _stem
from .layouts import FR_RELEASES, LAYOUTS, NR_LAYOUTS, READERS, detect_layout
from .layouts.koniq10k import KONIQ_SCORES, KONIQ_SETS, _koniq, _koniq_files
from .layouts.pyiqa_csv import _pyiqa_csv
from .layouts.pyiqa_nr_csv import _header, _pyiqa_nr_csv, _pyiqa_nr_csvs
from .loading import BUILTIN_WHY, _add_split_and_direction_args, _data_files, _given, _lower_better_flag
from .tables import _hub_items, _table_direction

__all__ = ["NRItem", "NRDataset", "load_nr_dataset", "add_nr_dataset_args", "nr_dataset_kwargs", "add_iqa_dataset_args"]


def _as_nr(found: _Scores) -> _Scores:
    """FR triplets read as NR: each distorted image with its score, grouped for splits by its reference."""
    items = [NRItem(item.dist, item.score, item.ref_id, item.key) for item in found.items]
    return _Scores(items, found.lower_better, found.why)


def _nr_csv_file(path: str, image_column: str | None, score_column: str | None) -> _Scores:
    """A csv named by its path: a KonIQ-10k release file (its folder is read), an FR pyiqa-style csv (read as NR), or
    a pyiqa NR meta-info csv."""
    if os.path.basename(path) in (KONIQ_SCORES, KONIQ_SETS):
        return _koniq(os.path.dirname(os.path.abspath(path)), score_column)
    if {"ref_name", "dist_name"} <= set(_header(path)):
        return _as_nr(_pyiqa_csv(path))
    return _pyiqa_nr_csv(path, image_column, score_column)


def _nr_folder(folder: str, image_column: str, score_column: str | None, split: str, ref_column: str | None,
               ref_id_column: str | None) -> _Scores:  # fmt: skip
    """A folder: KonIQ-10k's files; else an FR release (fixed file names); else its one pyiqa NR csv; else its FR
    pyiqa-style csv; else its data files as a table."""
    if any(_koniq_files(folder)):
        return _koniq(folder, score_column)
    try:
        layout, unknown = detect_layout(folder), None
    except UserError as err:
        layout, unknown = None, err
    if layout in FR_RELEASES:
        return _as_nr(READERS[layout](folder))
    csvs = _pyiqa_nr_csvs(folder)
    if len(csvs) > 1:
        raise UserError(f"{folder} holds {len(csvs)} NR meta-info csvs ({', '.join(map(os.path.basename, csvs))}): "
                        f"pass the path of the one to use")  # fmt: skip
    if csvs:
        return _pyiqa_nr_csv(csvs[0], image_column, score_column)
    if layout:
        return _as_nr(READERS[layout](folder))
    if _data_files(folder):
        return _table_items(folder, image_column, score_column or "score", split, ref_column, ref_id_column)
    if unknown is not None and "no known IQA layout" not in str(unknown):
        raise unknown  # e.g. several FR csvs: its own advice
    known = "; ".join(f"{name}: {files}" for name, files in {**NR_LAYOUTS, **LAYOUTS}.items())
    raise UserError(f"{folder} is in no known IQA layout. Known layouts (FR ones are read as NR): {known}")


def _table_items(name: str, image_column: str, score_column: str, split: str, ref_column: str | None = None,
                 ref_id_column: str | None = None) -> _Scores:  # fmt: skip
    """A Hub / local table's images and scores (``row N`` keys); direction from the score column's name. With
    ``ref_column`` its items are grouped by reference as FR tables' are (decoded pixels, or ``ref_id_column``);
    with ``ref_id_column`` alone, by that column's value; with neither, each image is its own content."""
    if ref_column:
        return _as_nr(_hub_items(name, image_column, ref_column, score_column, split, ref_id_column))
    if ref_id_column == image_column:
        raise UserError(f"--ref_id_column {ref_id_column!r} is the image column: name a column that names references")
    table = open_image_table(name, [image_column], split, [score_column, *([ref_id_column] if ref_id_column else [])])
    columns = table.select_columns([score_column, *([ref_id_column] if ref_id_column else [])])
    ref_ids = columns[ref_id_column] if ref_id_column else [None] * len(table)
    items = []
    for row, (value, ref_id) in enumerate(zip(columns[score_column], ref_ids)):
        where = f"{name} row {row}"
        score = _score("None" if value is None else str(value), f"{where}, column {score_column!r}")
        if ref_id_column and (ref_id is None or not str(ref_id).strip()):
            raise UserError(f"{where}, column {ref_id_column!r}: empty reference id")
        items.append(NRItem((table, image_column, row), score, str(ref_id).strip() if ref_id_column else "",
                            key=f"row {row}"))  # fmt: skip
    label = os.path.basename(os.path.normpath(name)) if os.path.exists(name) else name
    lower, why = _table_direction(label, score_column, [item.score for item in items])
    return _Scores(items, lower, why, references_unknown=not ref_id_column)


def load_nr_dataset(source: str, image_column: str | None = "image", score_column: str | None = "score",
                    lower_better: bool | None = None, split: str | None = "train", ref_column: str | None = None,
                    ref_id_column: str | None = None) -> NRDataset:  # fmt: skip
    """No-reference IQA items (image, score) from builtin, a release folder, a csv, or a dataset.

    Args:
        source: ``"builtin"`` (the builtin FR set's distorted images with their pseudo-MOS, grouped by their
            photograph); a KonIQ-10k folder (``koniq10k_scores_and_distributions.csv`` and/or the official-split
            ``koniq10k_distributions_sets.csv``, images in ``1024x768/``, else ``512x384/``); a folder in an FR
            layout (``LAYOUTS``: its distorted images, grouped by reference, named by the folder as for FR); a folder
            holding one pyiqa NR meta-info csv, or the csv's path (image path, then MOS; a ``split`` column of 0/1/2
            is the official split); otherwise a Hub dataset id or a local path ``datasets`` understands.
        image_column: the image column of a dataset (of a csv, where its header has it; else its first column).
        score_column: the score column of a dataset (of a csv, where its header has it; else its second column);
            for KonIQ-10k ``MOS_zscore`` (0..100, the default) or ``MOS``.
        lower_better: whether lower scores mean better quality. None: the source's own convention, stated in the
            result's ``direction`` (KonIQ-10k, builtin, FR layouts as for FR: higher is better; a csv or table by
            its score column's name: ``dmos``-like lower, else higher). True/False override it (recorded).
        split: the split of a dataset (not the train/validation/test split: see ``asym.iqa_data.splits``).
        ref_column: a dataset's reference-image column (KADID-like tables): items are grouped by reference, told
            apart by decoded pixels (or ``ref_id_column``), so a split by reference keeps each content in one split.
        ref_id_column: a dataset's column naming each row's reference (with or without ``ref_column``). A dataset
            with neither is split by image, with a warning (``references_unknown``): it may have references nobody
            named.

    Raises:
        UserError: a missing folder or file, an unknown layout, a malformed row (naming file and line), a missing
            or unreadable image, a missing column, or no items at all.
    """
    image_column, split = image_column or "image", split or "train"
    try:
        if source == "builtin":
            found, name = _as_nr(_Scores(builtin_fr_items(), False, BUILTIN_WHY)), source
        elif source.lower().endswith(".csv") and not os.path.isdir(source):
            if not os.path.isfile(source):
                raise UserError(f"file {source} does not exist")
            found, name = _nr_csv_file(source, image_column, score_column), _stem(source)
        elif os.path.isdir(source) and not is_saved_dataset(source):
            found = _nr_folder(source, image_column, score_column, split, ref_column, ref_id_column)
            name = os.path.basename(os.path.normpath(source))
        elif source.startswith((os.sep, ".", "~")) and not os.path.exists(os.path.expanduser(source)):
            raise UserError(f"folder {source} does not exist")
        else:  # a Hub id (named as such) or a saved local dataset (named by its folder, as the layouts above)
            found = _table_items(source, image_column, score_column or "score", split, ref_column, ref_id_column)
            name = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
    except OSError as err:  # listing or reading the user's folder failed (permissions, I/O)
        raise UserError(f"{source} cannot be read ({err})") from err
    if not found.items:
        raise UserError(f"{source} has no images with scores")
    lower, direction = _direction(found.lower_better, found.why, lower_better)
    return NRDataset(found.items, name, lower, direction=direction, official_split=found.official_split,
                     references_unknown=found.references_unknown)  # fmt: skip


def add_nr_dataset_args(parser) -> None:
    """The command-line flags that describe an NR dataset: the score direction override (any source) and the
    columns of a Hub / ``datasets`` dataset. ``nr_dataset_kwargs(args)`` turns them into ``load_nr_dataset``
    keywords."""
    g = parser.add_argument_group("NR dataset (columns: Hub ids, local datasets and csvs; direction: any source)")
    g.add_argument("--image_column", default="image", help="image column")
    g.add_argument("--score_column", default="score",
                   help="subjective score (MOS) column; KonIQ-10k: MOS_zscore (default) or MOS")  # fmt: skip
    _add_split_and_direction_args(g)


def nr_dataset_kwargs(args) -> dict:
    """``load_nr_dataset`` keywords from ``add_nr_dataset_args``' (or ``add_iqa_dataset_args``') flags:
    ``lower_better`` True, False or None (the source decides); a column flag that is None or absent is left to the
    loader's default."""
    columns = _given(args, image_column="image_column", score_column="score_column", split="dataset_split",
                     ref_column="ref_column", ref_id_column="ref_id_column")  # fmt: skip
    return {**columns, "lower_better": _lower_better_flag(args)}


def add_iqa_dataset_args(parser) -> None:
    """The flags of an FR or an NR dataset, declared once (train_iqa.py, which picks the kind by its mode): column
    defaults are None, so ``fr_dataset_kwargs`` / ``nr_dataset_kwargs`` leave each to its loader's default."""
    g = parser.add_argument_group("IQA dataset (columns: Hub ids, local datasets and csvs; direction: any source)")
    g.add_argument("--image_column", default=None, help="(distorted-)image column (default: FR dist_image, NR image)")
    g.add_argument("--ref_column", default=None,
                   help="reference-image column. FR: default ref_image; NR: optional, a KADID-like table's references, "
                        "so that the split by reference keeps each content in one split (without it or "
                        "--ref_id_column an NR table is split by image, with a warning)")  # fmt: skip
    g.add_argument("--score_column", default=None,
                   help="subjective score (MOS) column (default: score; KonIQ-10k: MOS_zscore, or MOS)")  # fmt: skip
    g.add_argument("--ref_id_column", default=None,
                   help="column naming each row's reference image, for the split by reference (FR and NR; "
                        "default: references are told apart by their decoded pixels)")  # fmt: skip
    _add_split_and_direction_args(g)
