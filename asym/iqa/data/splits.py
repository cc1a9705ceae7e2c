"""Train/validation/test splits of an FR or NR dataset, and the ``split.json`` files that let two runs be compared on
the same test images.

``choose_split`` decides a run's split: a split file written by an earlier run (``--split_file``) wins; else the
release's own (``--split official``: KonIQ-10k's sets file, a pyiqa csv's split column); else the paper's seeded 6:2:2
split, by reference content where items have one (``ref_id``: KADID-10k, builtin), by image otherwise
(``split_by_reference``). ``save_split`` writes the split by item keys (``IQADataset.keys()``: stable names such as
``I01_01_01.png``, not indices), with a fingerprint of the dataset's keys; ``load_split`` checks it against the
dataset it is applied to and refuses one made for another; ``match_split`` applies a model's own split file only
where it was made for the dataset at hand (evaluate.py nr scores a model on its test split so). A split by image of
a table that names no references warns (``UnknownReferencesWarning``). ``eval_set_record`` / ``dataset_eval_set``
fingerprint the exact set a run was tested on (results.json), so that runs on different test sets are not compared.

    >>> from asym.iqa.data import load_nr_dataset
    >>> data = load_nr_dataset("builtin")
    >>> parts, how = choose_split(data, "random", seed=0)
    >>> how
    'random 6:2:2 by reference, seed 0'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from asym.core.atomic import write_json
from asym.core.errors import UserError, list_names
from asym.core.training import evenly_spaced

from .dataset import IQADataset, split_by_reference
from .files import read_text_file

SPLIT_NAMES = ("train", "validation", "test")
SPLITS = ("random", "official")
Parts = tuple[list[int], list[int], list[int]]  # train, validation, test item indices, each sorted
SPLIT_FILE = "split.json"  # the name a run writes its split under; a folder given as a split file is looked into


class UnknownReferencesWarning(UserWarning):
    """An NR table that names no references is split by image: its distorted versions of one reference may leak."""


def fingerprint(dataset: IQADataset) -> str:
    """sha256 over the dataset's sorted item keys: equal for the same images in any order."""
    return hashlib.sha256("\n".join(sorted(dataset.keys())).encode()).hexdigest()


def eval_set_record(pairs: Sequence[tuple[str, float]], context: str = "") -> dict:
    """What identifies the exact set a run was tested on, for results.json: ``{"fingerprint", "n"}``, the sha256 over
    ``context`` and its sorted ``(key, score)`` pairs (an IQA item's key and MOS, a 2AFC triplet's key and judgement),
    and their number. Two runs share a test set exactly when their records are equal: another seed's split, another
    ``--max_eval_samples``, another score column or direction, another table of the same size all change it."""
    lines = sorted(f"{key}\t{float(score)!r}" for key, score in pairs)
    digest = hashlib.sha256("\n".join([context, *lines]).encode()).hexdigest()
    return {"fingerprint": digest, "n": len(lines)}


def dataset_eval_set(dataset: IQADataset) -> dict:
    """``eval_set_record`` of an IQA dataset (a run's test subset): its items' keys and scores, and their direction
    (correlations against a MOS read the other way round are not comparable)."""
    pairs = list(zip(dataset.keys(), dataset.scores().tolist()))
    return eval_set_record(pairs, f"lower_better={dataset.lower_better}")


def _ratio_text(ratios: Sequence[float]) -> str:
    """``(0.6, 0.2, 0.2)`` as ``6:2:2``; ratios that are not tenths as given (``0.7:0.15:0.15``)."""
    tenths = [r * 10 for r in ratios]
    if all(abs(t - round(t)) < 1e-9 for t in tenths):
        return ":".join(str(round(t)) for t in tenths)
    return ":".join(f"{r:g}" for r in ratios)


def _file(path: str) -> str:
    return os.path.join(path, SPLIT_FILE) if os.path.isdir(path) else path


def save_split(path: str, dataset: IQADataset, parts: Sequence[Sequence[int]], how: str) -> str:
    """Write ``parts`` (train, validation, test index lists) as a JSON split file, atomically (a temporary file
    renamed over ``path``), so a crash never leaves half a file. ``path`` may be a folder (``split.json`` in it).

    The file holds ``dataset`` (its name), ``how`` (e.g. ``"random 6:2:2 by reference, seed 0"``), ``n_items``,
    ``fingerprint`` (``fingerprint(dataset)``) and ``train`` / ``validation`` / ``test`` as lists of item keys.
    Returns the file's path.

    Raises:
        UserError: the file cannot be written.
    """
    if len(parts) != 3:
        raise ValueError(f"expected 3 index lists (train, validation, test), got {len(parts)}")
    keys = dataset.keys()
    record = {"dataset": dataset.name, "how": how, "n_items": len(keys), "fingerprint": fingerprint(dataset)}
    record.update({name: [keys[i] for i in sorted(part)] for name, part in zip(SPLIT_NAMES, parts)})
    path = _file(path)
    try:
        write_json(path, record, indent=1)
    except OSError as err:
        raise UserError(f"split file {path} cannot be written ({err.strerror or err})") from err
    return path


def _read_record(path: str) -> tuple[str, dict]:
    """The split file's path (``path`` or the ``split.json`` in it) and its record, checked for form: JSON, the three
    lists of keys, no key twice."""
    path = _file(path)
    if not os.path.isfile(path):
        raise UserError(f"split file {path} does not exist: pass the {SPLIT_FILE} an earlier run wrote")
    try:
        record = json.loads(read_text_file(path))
    except json.JSONDecodeError as err:
        raise UserError(f"split file {path} is not JSON (line {err.lineno}: {err.msg}); is it truncated or not a "
                        f"{SPLIT_FILE}?") from None  # fmt: skip
    if not isinstance(record, dict):
        raise UserError(f"split file {path} holds a JSON {type(record).__name__}, not a split: pass a {SPLIT_FILE}")
    for name in SPLIT_NAMES:
        keys = record.get(name)
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            problem = "lacks" if keys is None else "has a malformed"
            raise UserError(f"split file {path} {problem} {name!r} (expected a list of image keys): pass an unedited "
                            f"{SPLIT_FILE}")  # fmt: skip
    split_of: dict[str, str] = {}
    for name in SPLIT_NAMES:
        for key in record[name]:
            if key in split_of:
                where = "twice in" if split_of[key] == name else f"in both {split_of[key]} and"
                raise UserError(f"split file {path}: {key!r} is {where} {name}; a split file lists each image once "
                                f"(pass an unedited {SPLIT_FILE})")  # fmt: skip
            split_of[key] = name
    return path, record


def _mismatch(path: str, record: dict, dataset: IQADataset) -> str | None:
    """Why the split file does not cover ``dataset``'s images exactly (keys it lacks or the dataset lacks), or None."""
    keys = dataset.keys()
    listed = [key for name in SPLIT_NAMES for key in record[name]]
    known, given = set(keys), set(listed)
    made_for = record.get("dataset", "another dataset")
    unknown = [key for key in listed if key not in known]
    if unknown:
        return (f"split file {path} was made for dataset {made_for}: {len(unknown)} of its {len(listed)} images are "
                f"not in {dataset.name} (e.g. {list_names(unknown, 3)})")  # fmt: skip
    left = [key for key in keys if key not in given]
    if left:
        return (f"split file {path} (made for {made_for}) puts {len(left)} of the {len(keys)} images of "
                f"{dataset.name} in no split (e.g. {list_names(left, 3)})")  # fmt: skip
    return None


def _parts(record: dict, dataset: IQADataset) -> Parts:
    index = {key: i for i, key in enumerate(dataset.keys())}
    train, validation, test = (sorted(index[key] for key in record[name]) for name in SPLIT_NAMES)
    return train, validation, test


def _read_split(path: str, dataset: IQADataset) -> tuple[Parts, dict]:
    """The split file's (train, validation, test) sorted index lists into ``dataset``, and the file's record."""
    path, record = _read_record(path)
    mismatch = _mismatch(path, record, dataset)
    if mismatch:
        raise UserError(f"{mismatch}: pass the split file written for this dataset, or drop --split_file")
    return _parts(record, dataset), record


def match_split(path: str, dataset: IQADataset) -> tuple[Parts | None, str]:
    """A split file applied only where it was made for ``dataset``: ``(parts, how)`` when it covers exactly the
    dataset's images and names the dataset as it is named now, else ``(None, why not)``: a file made for another
    dataset, or for a table of the same size under another name (``row N`` keys alone cannot tell two tables apart).
    For a model's own ``split.json``, which is applied without being asked for; ``load_split`` applies a file the
    user named, by its keys alone.

    Raises:
        UserError: a missing, unreadable or malformed file (as ``load_split``).
    """
    path, record = _read_record(path)
    mismatch = _mismatch(path, record, dataset)
    if mismatch:
        return None, mismatch
    made_for = record.get("dataset")
    if made_for != dataset.name:
        return None, (f"split file {path} was made for dataset {made_for}, not {dataset.name} (its image keys match: "
                      f"pass it as --split_file to apply it)")  # fmt: skip
    return _parts(record, dataset), f"from {path} ({record.get('how', 'how not recorded')})"


def load_split(path: str, dataset: IQADataset) -> Parts:
    """The (train, validation, test) sorted index lists of a split file written by ``save_split`` (or the folder
    holding it), matched to ``dataset`` by item key.

    Raises:
        UserError: a missing, unreadable or malformed file (not JSON, a list missing or not of strings), a key in
            two splits, keys the dataset does not have (a file made for another dataset), or items in no split.
    """
    return _read_split(path, dataset)[0]


def choose_split(dataset: IQADataset, split: str = "random", split_file: str | None = None, seed: int = 0,
                 ratios: Sequence[float] = (0.6, 0.2, 0.2)) -> tuple[Parts, str]:  # fmt: skip
    """A run's (train, validation, test) index lists and how they were made, for logs and ``save_split``.

    ``split_file`` wins (``load_split``); else ``split="official"`` is the release's own split
    (``dataset.official_split``); ``"random"`` is ``split_by_reference(dataset, ratios, seed)``: by reference
    content where items have one, by image otherwise.

    Raises:
        UserError: an unknown split name, ``official`` for a dataset without one, or a bad split file.
    """
    if split_file:
        parts, record = _read_split(split_file, dataset)
        return parts, f"from {_file(split_file)} ({record.get('how', 'how not recorded')})"
    if split == "official":
        if dataset.official_split is None:
            raise UserError(f"{dataset.name} has no official split: use --split random (a seeded "
                            f"{_ratio_text(ratios)} split) or --split_file")  # fmt: skip
        train, validation, test = (sorted(part) for part in dataset.official_split)
        return (train, validation, test), "official"
    if split == "random":
        unit = dataset.split_unit()
        if unit == "image" and dataset.references_unknown:
            warnings.warn(UnknownReferencesWarning(
                f"{dataset.name} is split by image: the table names no references, so distorted versions of one "
                "reference (a KADID-like table) may land in two splits; pass --ref_column (the reference-image "
                "column) or --ref_id_column to split by reference"), stacklevel=2)  # fmt: skip
        how = f"random {_ratio_text(ratios)} by {unit}, seed {seed}"
        return split_by_reference(dataset, ratios, seed), how
    raise UserError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


def fit_crop_size(crop_size: int, dataset) -> int:
    """``crop_size``, capped (with a warning) at the shortest side of ``dataset``'s images, read from their headers
    before any work: a crop larger than an image would fail mid-run."""
    smallest = dataset.min_side()
    if smallest < crop_size:
        logging.getLogger("asym").warning("--crop_size %d exceeds the smallest training image (%d pixels): training "
                                          "on %dx%d crops", crop_size, smallest, smallest, smallest)  # fmt: skip
        return smallest
    return crop_size


@dataclass
class IQASplit:
    """An IQA training run's data: the split as chosen (``parts``, saved to split.json as is), how it was made, a
    description for the model card, and the datasets built from it (training crops; evaluation on full images, at
    most ``--max_eval_samples`` evenly spaced ones)."""

    parts: tuple[list[int], list[int], list[int]]
    how: str
    description: str
    train: torch.utils.data.Dataset
    validation: torch.utils.data.Dataset
    test: torch.utils.data.Dataset


def split_iqa_dataset(data, args: argparse.Namespace) -> IQASplit:
    """Split an FR/NR dataset for training (``--split``, ``--split_file``, ``--seed``), cap ``args.crop_size`` at the
    smallest training image (headers only, before any work) and build the three datasets."""
    parts, how = choose_split(data, args.split, args.split_file, seed=args.seed)
    train_idx, val_idx, test_idx = parts
    description = f"{how} ({len(train_idx)} / {len(val_idx)} / {len(test_idx)})"
    if args.max_eval_samples:
        val_idx, test_idx = (evenly_spaced(idx, args.max_eval_samples) for idx in (val_idx, test_idx))
        description += f", evaluated on {len(val_idx)} / {len(test_idx)} of them (--max_eval_samples)"
    args.crop_size = fit_crop_size(args.crop_size, data.subset(train_idx))
    train = data.subset(train_idx, crop_size=args.crop_size, train=True)
    return IQASplit(parts, how, description, train, data.subset(val_idx), data.subset(test_idx))


def add_split_args(parser) -> None:
    """``--split {random,official}`` and ``--split_file``: the flags ``choose_split`` reads."""
    g = parser.add_argument_group("train/validation/test split")
    g.add_argument("--split", choices=SPLITS, default="random",
                   help="random: the seeded 6:2:2 split, by reference content where the dataset has references, "
                        "by image otherwise; official: the release's own (KonIQ-10k's sets file, a csv's split "
                        "column)")  # fmt: skip
    g.add_argument("--split_file", default=None, metavar="FILE",
                   help=f"reuse a {SPLIT_FILE} written by an earlier run, so two runs are compared on the same test "
                        f"images (overrides --split)")  # fmt: skip
