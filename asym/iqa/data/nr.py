"""``load_nr_dataset``: which reader a no-reference source goes to (builtin, KonIQ-10k as released, any FR layout read
as NR, pyiqa's NR meta-info csvs, or a Hub / local table) and the final score direction. Its command-line flags
(``add_nr_dataset_args``, or ``add_iqa_dataset_args`` for either kind) are in ``asym.iqa.data.cli``.

The items and dataset (``NRItem``, ``NRDataset``) live in ``dataset`` beside their FR counterparts, with which they
share a base; they are importable from here too.
"""

from __future__ import annotations

import os

from asym.core.errors import UserError

from .builtin import read_builtin
from .dataset import NRDataset, NRItem, Scores, fr_scores_as_nr, resolve_direction
from .files import csv_header
from .layouts import FR_RELEASES, LAYOUTS, NR_LAYOUTS, READERS, detect_layout
from .layouts.koniq10k import KONIQ_SCORES, KONIQ_SETS, find_koniq10k_files, read_koniq10k
from .layouts.pyiqa_csv import read_pyiqa_csv
from .layouts.pyiqa_nr_csv import find_pyiqa_nr_csvs, read_pyiqa_nr_csv
from .loading import read_iqa_source
from .tables import read_nr_table, table_data_files

__all__ = ["NRItem", "NRDataset", "load_nr_dataset"]


def _nr_csv_file(path: str, image_column: str | None, score_column: str | None) -> Scores:
    """A csv named by its path: a KonIQ-10k release file (its folder is read), an FR pyiqa-style csv (read as NR), or
    a pyiqa NR meta-info csv."""
    if os.path.basename(path) in (KONIQ_SCORES, KONIQ_SETS):
        return read_koniq10k(os.path.dirname(os.path.abspath(path)), score_column)
    if {"ref_name", "dist_name"} <= set(csv_header(path)):
        return fr_scores_as_nr(read_pyiqa_csv(path))
    return read_pyiqa_nr_csv(path, image_column, score_column)


def _nr_folder(folder: str, image_column: str, score_column: str | None, split: str, ref_column: str | None,
               ref_id_column: str | None) -> Scores:  # fmt: skip
    """A folder: KonIQ-10k's files; else an FR release (fixed file names); else its one pyiqa NR csv; else its FR
    pyiqa-style csv; else its data files as a table."""
    if any(find_koniq10k_files(folder)):
        return read_koniq10k(folder, score_column)
    try:
        layout, unknown = detect_layout(folder), None
    except UserError as err:
        layout, unknown = None, err
    if layout in FR_RELEASES:
        return fr_scores_as_nr(READERS[layout](folder))
    csvs = find_pyiqa_nr_csvs(folder)
    if len(csvs) > 1:
        raise UserError(f"{folder} holds {len(csvs)} NR meta-info csvs ({', '.join(map(os.path.basename, csvs))}): "
                        f"pass the path of the one to use")  # fmt: skip
    if csvs:
        return read_pyiqa_nr_csv(csvs[0], image_column, score_column)
    if layout:
        return fr_scores_as_nr(READERS[layout](folder))
    if table_data_files(folder):
        return read_nr_table(folder, image_column, score_column or "score", split, ref_column, ref_id_column)
    if unknown is not None and "no known IQA layout" not in str(unknown):
        raise unknown  # e.g. several FR csvs: its own advice
    known = "; ".join(f"{name}: {files}" for name, files in {**NR_LAYOUTS, **LAYOUTS}.items())
    raise UserError(f"{folder} is in no known IQA layout. Known layouts (FR ones are read as NR): {known}")


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
        split: the split of a dataset (not the train/validation/test split: see ``asym.iqa.data.splits``).
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
    found, name = read_iqa_source(
        source,
        "images",
        lambda: fr_scores_as_nr(read_builtin()),
        lambda path: _nr_csv_file(path, image_column, score_column),
        lambda folder: _nr_folder(folder, image_column, score_column, split, ref_column, ref_id_column),
        lambda table: read_nr_table(table, image_column, score_column or "score", split, ref_column, ref_id_column),
    )
    lower, direction = resolve_direction(found.lower_better, found.why, lower_better)
    return NRDataset(found.items, name, lower, direction=direction, official_split=found.official_split,
                     references_unknown=found.references_unknown)  # fmt: skip
