"""Backbone weights from files: a safetensors (or ``weights_only`` torch) file, a folder holding one, or a Hub repo,
with wrapper prefixes (DDP, an asym model, the robustness library) cut off and heads dropped."""

from __future__ import annotations

import os

import torch

from ..core.errors import UserError, summarize
from ..core.hub import CLASS_KEY, CONFIG_NAME, WEIGHTS_NAME, read_config, read_tensor_file
from ..core.sources import resolve_source
from .base import Backbone

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def _read_state_dict(source: str) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors (or ``weights_only`` torch) file, a folder holding one, or a Hub repo id.

    A folder's safetensors file is preferred over a torch one. Raises ``UserError`` naming the file for a path that
    does not exist, a folder without weights, a download that fails, and a file that cannot be parsed or holds no
    tensors (torch files are loaded with ``weights_only=True``: arbitrary pickles are refused, never executed).
    """

    path = source
    if os.path.isdir(path):
        files = sorted(os.listdir(path), key=lambda f: (not f.endswith(".safetensors"), f))
        candidates = [f for f in files if f.endswith(WEIGHT_SUFFIXES)]
        if not candidates:
            raise UserError(f"backbone weights folder {source} holds no {'/'.join(WEIGHT_SUFFIXES)} file")
        path = os.path.join(path, candidates[0])
    elif not os.path.isfile(path):
        if resolve_source(path).kind != "hub":
            raise UserError(
                f"backbone weights {source} not found: pass 'auto', 'pretrained', 'random', "
                "a .safetensors file or folder, or a Hub repo id (owner/name)"
            )
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(source, "model.safetensors")
        except OSError as err:  # includes the Hub's HTTP errors and offline mode
            raise UserError(
                f"backbone weights {source} (a Hub repo id) cannot be downloaded ({summarize(err)}); "
                "check the id, the network / HF cache, or pass a local file"
            ) from err
    state = read_tensor_file(path, "backbone weights")
    for key in ("state_dict", "model", "params"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    if not tensors:
        raise UserError(f"backbone weights {path} hold no state dict of tensors (found a {type(state).__name__})")
    return tensors


def _saved_backbone(source: str) -> tuple[str, str] | None:
    """(class, backbone name) that the ``config.json`` of an asym-saved folder records (the folder itself, or the one
    holding ``source`` if it is that folder's ``model.safetensors``); None for anything else (a plain checkpoint, a
    foreign config, another file that merely lies in such a folder)."""
    saved_weights = os.path.isfile(source) and os.path.basename(source) == WEIGHTS_NAME
    folder = source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source)) if saved_weights else None
    path = os.path.join(folder, CONFIG_NAME) if folder is not None else None
    if path is None or not os.path.isfile(path):
        return None
    try:
        config = read_config(path)
    except UserError:
        return None  # not asym's: the tensors alone decide whether they fit
    saved, backbone = config.get(CLASS_KEY), config.get("backbone")
    return (saved, backbone) if isinstance(saved, str) and isinstance(backbone, str) else None


def check_saved_backbone(source: str, name: str) -> None:
    """An asym model folder (e.g. a train_robust.py ``Classifier``) given as weights must be built on ``name``."""
    saved = _saved_backbone(source)
    if saved is not None and saved[1] != name:
        raise UserError(
            f"backbone weights {source} are those of an asym {saved[0]} on backbone {saved[1]!r}, but the backbone "
            f"asked for is {name!r}: use backbone {saved[1]} (--backbone {saved[1]}) or weights trained on {name}"
        )


def _strip_wrappers(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """``state`` keyed like ``expected``: the wrapper prefix under which most expected keys are found is cut off.

    Checkpoints nest the network under prefixes such as ``module.`` (DDP), ``backbone.model.`` (an asym model) or,
    in the robustness library, ``module.model.`` next to ``module.attacker.model.`` (the same network again) and
    ``module.normalizer.`` (its input normalisation): keys under other prefixes are dropped. Among prefixes that
    provide equally many keys the shortest wins (``module.model.`` over ``module.attacker.model.``).
    """
    found: dict[str, int] = {}
    for key in state:
        parts = key.split(".")
        for i in range(len(parts)):
            if ".".join(parts[i:]) in expected:
                prefix = ".".join(parts[:i])
                found[prefix] = found.get(prefix, 0) + 1
    if not found:
        return state
    prefix = max(found, key=lambda p: (found[p], -len(p)))
    if not prefix:
        return state
    return {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}


def load_backbone_weights(backbone: Backbone, source: str) -> None:
    """Load a checkpoint into ``backbone.model``; wrapper prefixes (``module.``, ``module.model.``,
    ``backbone.model.``, ...) are stripped and tensors outside the backbone (a classifier head, the robustness
    library's attacker copy and normaliser) are ignored.

    Raises ``UserError`` naming the file and the missing keys, or the mismatched shape, when it does not fit the
    architecture.
    """
    state = _read_state_dict(source)
    expected = set(backbone.model.state_dict())
    state = _strip_wrappers(state, expected)
    # BatchNorm fills in a missing counter itself (checkpoints written before PyTorch 0.4.1 lack it)
    missing = sorted(k for k in expected - set(state) if not k.endswith("num_batches_tracked"))
    if missing:
        raise UserError(
            f"backbone weights {source} do not fit backbone {type(backbone).__name__}: {len(missing)} missing keys, "
            f"e.g. {', '.join(missing[:4])}"
        )
    try:
        backbone.model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise UserError(f"backbone weights {source} do not fit the backbone: {lines[-1] if lines else err}") from err
