"""What a training run writes into its model card: the run's settings, the Hub dataset and base model it came from,
its scores as a model-index (``EvalResult`` dicts), and the upload of the run folder (``--push_to_hub``)."""

from __future__ import annotations

import argparse
import os

from .errors import UserError
from .sources import resolve_source


def model_card_facts(args: argparse.Namespace, keys: list[str]) -> dict:
    """The run settings shown in a model card, as ``{flag: value}`` for the given flag names."""
    return {f"--{key}": getattr(args, key) for key in keys if getattr(args, key, None) is not None}


def hub_dataset_id(dataset_name: str | None, train_data_dir: str | None = None) -> str | None:
    """``dataset_name`` if the data came from the Hub: a repo id (``name`` or ``owner/name``) that names nothing on
    disk, neither ``builtin`` nor overridden by ``--train_data_dir``; else None (local data has no Hub page)."""
    if train_data_dir or not dataset_name or dataset_name == "builtin" or os.path.exists(dataset_name):
        return None
    return dataset_name if _is_repo_id(dataset_name) else None


def hub_model_id(source: str | None) -> str | None:
    """``source`` (an init or weights argument) if it is a Hub model id, exactly ``owner/name``, and names nothing on
    disk; None for a local path, a prefixed source (``gan:``, ``timm:``, ...) or a keyword (random, pretrained, auto):
    those are no Hub model to name as the card's ``base_model``."""
    return source if source and resolve_source(source).kind == "hub" else None


def _is_repo_id(name: str) -> bool:
    """Whether huggingface_hub accepts ``name`` as a repo id (``[owner/]name``; no ``:``, no leading ``.``)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def card_dataset_type(dataset_name: str, train_data_dir: str | None = None) -> str:
    """The ``dataset_type`` of a model-index result: the Hub dataset id, else the name given (``builtin``) or the local
    folder's / file's base name (a local path would say nothing on the Hub)."""
    if train_data_dir:
        return os.path.basename(os.path.normpath(train_data_dir))
    return hub_dataset_id(dataset_name) or os.path.basename(os.path.normpath(dataset_name))


def eval_results(task_type: str, task_name: str, dataset_type: str, dataset_name: str, split: str | None,
                 metrics: list[tuple[str, str, float]], dataset_config: str | None = None,
                 metric_args: dict | None = None) -> list[dict]:  # fmt: skip
    """``EvalResult`` keyword dicts (``HubModel.card_results``) for scores of one task on one dataset split, one per
    ``(metric_type, metric_name, value)``; ``dataset_config`` names a subset, ``metric_args`` how they were measured."""
    common = {"task_type": task_type, "task_name": task_name, "dataset_type": dataset_type,
              "dataset_name": dataset_name, "dataset_split": split, "dataset_config": dataset_config}  # fmt: skip
    extra = {"metric_args": dict(metric_args)} if metric_args else {}
    return [common | {"metric_type": kind, "metric_name": name, "metric_value": float(value)} | extra
            for kind, name, value in metrics]  # fmt: skip


IQA_TASKS = {"fr": "Full-reference image quality assessment", "nr": "No-reference image quality assessment"}
CORRELATIONS = (("srcc", "spearmanr", "SRCC"), ("plcc", "pearsonr", "PLCC"), ("krcc", "kendalltau", "KRCC"))


def correlation_results(mode: str, dataset_type: str, dataset_name: str, split: str, scores: dict) -> list[dict]:
    """An FR / NR IQA model's SRCC, PLCC and KRCC (those in ``scores``, as ``correlations`` returns them) on one
    dataset split, as ``eval_results`` dicts (task ``image-quality-assessment``)."""
    metrics = [(kind, f"{split.capitalize()} {name}", scores[key]) for key, kind, name in CORRELATIONS if key in scores]
    return eval_results("image-quality-assessment", IQA_TASKS[mode], dataset_type, dataset_name, split, metrics)


def set_card_metadata(model, args: argparse.Namespace, results: list[dict], base_model: str | None = None) -> None:
    """Give ``model`` (a ``HubModel``) the card metadata of a training run: ``--license``, the Hub dataset of
    ``--dataset_name`` (unless ``--train_data_dir`` replaced it), ``base_model`` (the value of an init / weights
    argument) if it is a Hub model id, and ``results`` (``eval_results`` dicts) as the model-index."""
    model.card_license = getattr(args, "license", None) or None
    dataset = hub_dataset_id(getattr(args, "dataset_name", None), getattr(args, "train_data_dir", None))
    model.card_datasets = [dataset] if dataset else None
    model.card_base_model = hub_model_id(base_model)
    model.card_results = [dict(result) for result in results] or None


def push_to_hub(args: argparse.Namespace) -> None:
    """Upload ``--output_dir`` to ``--hub_model_id`` (default: the folder's name), without the resumable
    ``checkpoints/`` (optimiser states, not part of the model). Without network the local copy stays and the
    failure is one clear line."""
    from huggingface_hub import create_repo, upload_folder

    repo_id = args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))
    try:
        create_repo(repo_id, exist_ok=True)
        upload_folder(repo_id=repo_id, folder_path=args.output_dir, commit_message="Upload asym model",
                      ignore_patterns=["checkpoints/*"])  # fmt: skip
    except Exception as err:  # noqa: BLE001 - any Hub/network failure
        raise UserError(
            f"--push_to_hub to {repo_id!r} failed ({type(err).__name__}); the model is kept in {args.output_dir}"
        ) from err


__all__ = [
    "CORRELATIONS",
    "IQA_TASKS",
    "card_dataset_type",
    "correlation_results",
    "eval_results",
    "hub_dataset_id",
    "hub_model_id",
    "model_card_facts",
    "push_to_hub",
    "set_card_metadata",
]
