"""The FR / NR leaderboards (the paper's Table 4): every model scored against MOS on every IQA dataset.

``score_leaderboard`` scores each model (an FR metric on pairs, an NR model on images) on each dataset, each on the
images ``scored_images`` chooses for it: a trained model's own test split where the split.json beside it
(``own_split_file``) was made for the dataset, else all images, or what ``--split`` / ``--split_file``
(``add_image_choice_args``) say. It writes ``<stem>.csv`` / ``.json`` and prints the table with lines saying which
images scored whom.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from ..core.atomic import write_text
from ..core.errors import UserError, summarize
from ..core.training import evenly_spaced
from ..iqa.data.splits import SPLIT_FILE, SPLIT_NAMES, load_split, match_split
from ..metrics.agreement import correlations
from ..metrics.table import metric_info
from ..reporting.tables import OK, markdown_table, write_records

RESULT_KEYS = ("srcc", "plcc", "krcc", "n", "plcc_fit")  # the columns of fr_results.csv after metric, dataset
IMAGE_KEYS = ("status", "split", "split_file", "images")  # then: which images scored the row (or why none did)


def add_image_choice_args(parser: argparse.ArgumentParser, trained: str) -> None:
    """``--split`` / ``--split_file`` of ``fr`` and ``nr``: which images of a dataset score each model."""
    parser.add_argument("--split", default=None, choices=(*SPLIT_NAMES, "all"),
                        help=f"which images of a dataset score a model. Default: {trained}'s test split where its "
                             f"split.json (beside it) or --split_file was made for that dataset, else all images "
                             f"(the table says which); all: every image (a trained model's own training images "
                             f"included); train / validation / test: that part of the split file, refused where none "
                             f"applies")  # fmt: skip
    parser.add_argument("--split_file", default=None, metavar="FILE",
                        help="a split.json (or the run folder holding it) applied to every model, pyiqa ones "
                             "included, so all are scored on the same images; refused for a dataset it was not made "
                             "for")  # fmt: skip


def at_most(dataset, n: int | None):
    """``dataset``, or ``n`` of its items evenly spaced over it (``--max_samples``)."""
    return dataset if n is None else dataset.subset(evenly_spaced(list(range(len(dataset))), n))


def column_names(datasets, source_names: list[str]) -> list[str]:
    """Table columns: the datasets' own names, unless two coincide (two folders called kadid10k): then the
    path-based ``source_names``."""
    names = [d.name for d in datasets]
    return names if len(set(names)) == len(names) else source_names


def create_scorers(names: list[str], sources: list[str], device, kind: str) -> list:
    """Each source's metric (``create_metric``), or for one that exists but cannot be built here (weights offline, a
    missing package: ``MetricUnavailable``) its ``unavailable: <reason>`` status, said once: the leaderboard reports
    it in place of numbers and scores the others, in ``fr`` as in ``nr`` and ``sr``. A bad name still stops it."""
    from ..metrics import MetricUnavailable, create_metric

    scorers: list = []
    for name, source in zip(names, sources):
        try:
            scorers.append(create_metric(source, device, kind=kind))
        except MetricUnavailable as err:
            print(f"{name}: unavailable ({err.reason}); reported as such, the others are still scored", flush=True)
            scorers.append(f"unavailable: {err.reason}")
    return scorers


def own_split_file(source: str, metric) -> tuple[str | None, str]:
    """The split.json that train_iqa.py / train_metric.py wrote beside a model (a run folder, or a Hub repo it was
    pushed to), or None and why there is none."""
    from ..core.hub import HubModel

    if not isinstance(getattr(metric, "model", None), HubModel):  # a train_iqa.py / train_metric.py output
        if metric_info(source).loader == "asym":
            return None, "a fixed index, never trained: no split.json"
        return None, "a pyiqa / VLM model, trained elsewhere: no split.json"
    if os.path.isdir(source):
        path = os.path.join(source, SPLIT_FILE)
        return (path, "") if os.path.isfile(path) else (None, f"no {SPLIT_FILE} beside the model")
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(source, SPLIT_FILE), ""
    except Exception as err:  # noqa: BLE001 - no such file in the repo, or no network: scored on all images, said so
        return None, f"no {SPLIT_FILE} obtainable from {source} ({summarize(err)})"


def scored_images(name: str, own: tuple[str | None, str], dataset, split: str | None = None,
                  split_file: str | None = None) -> tuple[list[int], dict]:  # fmt: skip
    """Which images of ``dataset`` score model ``name``: its indices, and what the record says of them (``split``:
    test / train / validation / all, ``split_file``, ``images``: the table's words). ``own`` is ``own_split_file``'s
    answer; ``split`` / ``split_file`` are ``--split`` / ``--split_file``."""
    everything = list(range(len(dataset)))
    if split == "all":
        return everything, {"split": "all", "split_file": None, "images": "all images (--split all)"}
    part = split or "test"
    if split_file:  # asked for: applied to every model, or refused
        parts, path = load_split(split_file, dataset), split_file
    elif own[0] is None:
        if split:
            raise UserError(f"--split {split}: {name} has no split to take it from ({own[1]}): pass --split_file "
                            f"(a train_iqa.py or train_metric.py run's {SPLIT_FILE}) or --split all")  # fmt: skip
        return everything, {"split": "all", "split_file": None, "images": f"all images ({own[1]})"}
    else:
        parts, why = match_split(own[0], dataset)
        if parts is None:
            if split:
                raise UserError(f"--split {split}: {name}'s {why}")
            return everything, {"split": "all", "split_file": None, "images": f"all images: its {why}"}
        path = own[0]
    return parts[SPLIT_NAMES.index(part)], {"split": part, "split_file": path, "images": f"{part} split of {path}"}


def score_leaderboard(row_key: str, names: list[str], models: list, own_splits: list[tuple[str | None, str]],
                      datasets: list, source_names: list[str], score: Callable, output_dir: str, stem: str, *,
                      split: str | None = None, split_file: str | None = None,
                      max_samples: int | None = None, main: bool = True) -> list[dict]:  # fmt: skip
    """Score each model (a metric, or the status of one that cannot be created) on each dataset, each on the images
    ``scored_images`` chooses for it (all decided, or refused, before any scoring), at most ``max_samples`` of them;
    write ``<stem>.csv`` / ``.json`` in ``output_dir`` and print the table with lines saying which images scored whom.

    Args:
        row_key: ``"metric"`` (FR: datasets of pairs) or ``"model"`` (NR: datasets of images).
        names: the rows' names (``unique_names``), one per model.
        models: the scorers, or the ``unavailable: <reason>`` status of one that cannot be created here.
        own_splits: ``own_split_file`` of each model.
        datasets: the loaded IQA datasets; ``source_names`` their path-based names (columns where names clash).
        score: ``score(model, dataset, desc)`` -> the model's scores of the dataset's items (``sharded`` across the
            processes of an ``accelerate launch``).
        main: whether this process writes the files and prints the table (the main one of a launch).
    """
    unscored = ([], {"split": None, "split_file": None, "images": "not scored"})  # an unavailable model
    chosen = [[unscored if isinstance(model, str) else scored_images(name, own, dataset, split, split_file)
               for name, model, own in zip(names, models, own_splits)]
              for dataset in datasets]  # fmt: skip
    results, notes = [], []
    dataset_names = column_names(datasets, source_names)
    unit = "pairs" if row_key == "metric" else "images"
    for dataset, column, per_model in zip(datasets, dataset_names, chosen):
        print(f"{dataset.name}: {len(dataset)} {unit}, scores {dataset.direction}")
        images: dict[str, list[str]] = {}  # what a model was scored on -> the models scored on it
        for name, model, (indices, facts) in zip(names, models, per_model):
            if isinstance(model, str):
                results.append({**dict.fromkeys(RESULT_KEYS), "status": model, **facts})
                continue
            part = at_most(dataset.subset(indices), max_samples)
            facts = {**facts, "images": f"{facts['images']}, n = {len(part)}"}
            images.setdefault(facts["images"], []).append(name)
            scores = score(model, part, f"{name} on {dataset.name}")
            results.append({**correlations(-scores if model.lower_better else scores, part.quality()), "status": OK,
                            **facts})  # both oriented "higher is better"  # fmt: skip
        scored = "; ".join(f"{', '.join(who)}: {what}" for what, who in images.items())
        notes.append(f"Images of {column}: {scored}")
        if len(images) > 1:
            notes.append(f"{column}: the {row_key}s are scored on different images (each on its own split or all): "
                         f"rows are not comparable; pass --split_file to score all on one split's images")  # fmt: skip
    rows = [(m, d) for d in dataset_names for m in names]
    records = [{row_key: m, "dataset": d, **{k: r[k] for k in (*RESULT_KEYS, *IMAGE_KEYS)}}
               for (m, d), r in zip(rows, results)]  # fmt: skip
    if main:
        write_records(records, output_dir, stem)
        text = markdown_table(records, names, dataset_names, row_key=row_key) + "\n\n" + "\n".join(notes)
        write_text(os.path.join(output_dir, f"{stem}.md"), text + "\n")  # the table as printed, beside its records
        print(text)
    return records


def iqa_leaderboard(args, kind: str) -> list[dict]:
    """``evaluate.py fr`` (``kind`` ``"fr"``: ``--metrics`` on FR datasets of pairs, Table 4) and ``evaluate.py nr``
    (``"nr"``: ``--models`` on NR datasets of images): every scorer on every dataset, each on its own test split where
    its split.json was made for the dataset, those that cannot be built here reported in place of numbers. Everything
    is loaded (a bad name or dataset fails) before any scoring; under ``accelerate launch`` each process scores a
    share and the main one writes ``<kind>_results.csv`` / ``.json`` / ``.md``."""
    from ..core.processes import evaluation_state, sharded
    from ..metrics import score_images, score_pairs
    from ..reporting.tables import unique_names
    from .data import fr_dataset_kwargs, load_fr_dataset, load_nr_dataset, nr_dataset_kwargs

    row_key = "metric" if kind == "fr" else "model"
    load, dataset_kwargs, score_items = ((load_fr_dataset, fr_dataset_kwargs, score_pairs) if kind == "fr" else
                                         (load_nr_dataset, nr_dataset_kwargs, score_images))  # fmt: skip
    state = evaluation_state(args)  # one process unless launched with `accelerate launch`: then each scores a share
    sources = [m for m in getattr(args, f"{row_key}s").split(",") if m]
    dataset_sources = [d for d in args.datasets.split(",") if d]
    if not sources or not dataset_sources:
        raise UserError(f"--{row_key}s and --datasets must each name at least one entry")
    names = unique_names(sources, row_key)
    source_names = unique_names(dataset_sources, "dataset")  # fails early on a dataset listed twice
    scorers = create_scorers(names, sources, args.device, kind)  # a bad name fails here; or "unavailable: ..."
    own_splits = [own_split_file(source, scorer) for source, scorer in zip(sources, scorers)]
    datasets = [load(source, **dataset_kwargs(args)) for source in dataset_sources]  # all before any work
    main = state.is_main_process  # its bar alone is drawn (its share of the items)
    score = sharded(lambda scorer, part, desc: score_items(scorer, part, args.device, desc=desc, progress=main), state)
    return score_leaderboard(row_key, names, scorers, own_splits, datasets, source_names, score, args.output_dir,
                             f"{kind}_results", split=args.split, split_file=args.split_file,
                             max_samples=args.max_samples, main=main)  # fmt: skip


__all__ = [
    "IMAGE_KEYS",
    "RESULT_KEYS",
    "add_image_choice_args",
    "at_most",
    "column_names",
    "iqa_leaderboard",
    "own_split_file",
    "score_leaderboard",
    "scored_images",
]
