"""Hub persistence shared by every asym model: safetensors + ``config.json`` + a ``README.md`` model card.

Built on ``huggingface_hub.PyTorchModelHubMixin`` (so ``save_pretrained``, ``from_pretrained`` and
``push_to_hub`` work on local folders and Hub ids alike), with two asym rules:

* a frozen backbone whose weights can be re-obtained by name (``weights_source == "pretrained"``) is
  not duplicated into the checkpoint; any other backbone (random, fallback, robust file) is stored, so a
  reloaded model is bit-identical wherever it is loaded. A model whose backbone is not stored reloads with
  exactly those pretrained weights or fails with a ``UserError``: never with substitute (random) features;
* a folder that is not what the class expects (no ``config.json``, a config of another asym class, unreadable or
  truncated files, tensors that do not fit) is one ``UserError`` naming it;
* files are written to a temporary folder and each renamed into place, so a killed run never leaves a
  half-written file, and whatever else the folder holds (checkpoints, logs) is left alone.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from safetensors.torch import load_file, save_file

from .atomic import honour_umask
from .errors import UserError, reading
from .offline import hub_reachable
from .sources import resolve_source

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CLASS_KEY = "asym_class"  # config.json entry naming the class that wrote it
BOOKKEEPING_KEYS = {CLASS_KEY, "weights_source", "card"}  # config entries that are not constructor arguments
CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title | default("asym model", true) }}

{{ description | default("", true) }}

Saved with `asym` (perceptual optimisation and IQA toolkit). Load it back with:

```python
from asym import {{ class_name | default("DISTS", true) }}
model = {{ class_name | default("DISTS", true) }}.from_pretrained("<this folder or Hub id>")
```
"""


class HubModel(
    PyTorchModelHubMixin,
    library_name="asym",
    tags=["asym"],
    model_card_template=CARD_TEMPLATE,
):
    """Mixin for ``nn.Module`` subclasses; a module's frozen backbone is expected at ``self.backbone``.

    The card's YAML metadata comes from these attributes (None: the field is left out), set on the class or, by the
    training scripts, on the instance (``asym.core.training.set_card_metadata``):

    * ``card_pipeline_tag``: the Hub task the model performs (``image-to-image``); None where no Hub pipeline fits
      (metrics, IQA models);
    * ``card_license``: a Hub license id for the weights;
    * ``card_datasets``: Hub dataset ids trained on;
    * ``card_base_model``: the Hub model id training started from;
    * ``card_results``: ``EvalResult`` keyword dicts, written as the card's ``model-index``.
    """

    card_pipeline_tag: str | None = None
    card_license: str | None = None
    card_datasets: list[str] | None = None
    card_base_model: str | None = None
    card_results: list[dict] | None = None

    def card_description(self) -> str:
        """Markdown paragraph for the model card; subclasses describe what they are."""
        return ""

    def generate_model_card(self, *args, **kwargs):
        """The mixin's card with the metadata of the ``card_*`` attributes, set through huggingface_hub's card data
        (``ModelCardData``, ``EvalResult``) so that the Hub and ``ModelCard.load`` read it back. The model-index is
        named by the card's title; a result whose value is not a finite number (NaN: constant scores) is left out of
        it, as no leaderboard can rank it (the facts list in the text still shows it)."""
        from huggingface_hub import EvalResult

        card = super().generate_model_card(*args, **kwargs)
        data = card.data
        data.pipeline_tag = self.card_pipeline_tag or data.pipeline_tag
        data.license = self.card_license or data.license
        data.datasets = list(self.card_datasets) if self.card_datasets else data.datasets
        data.base_model = self.card_base_model or data.base_model
        results = [EvalResult(**{**r, "metric_value": float(r["metric_value"])}) for r in self.card_results or []]
        results = [r for r in results if math.isfinite(r.metric_value)]
        if results:
            data.model_name = kwargs.get("title") or type(self).__name__
            data.eval_results = results
        return card

    def extra_config(self) -> dict:
        """Entries added to ``config.json`` at save time: the class, and the training facts in ``self.card``."""
        return {CLASS_KEY: type(self).__name__} | ({"card": dict(self.card)} if getattr(self, "card", None) else {})

    def card_facts(self) -> str:
        """``self.card`` (facts a training script records: settings, data, scores) as a Markdown list."""
        return "\n".join(f"- **{key}**: {value}" for key, value in (getattr(self, "card", None) or {}).items())

    def _backbone_is_stored(self) -> bool:
        backbone = getattr(self, "backbone", None)
        return backbone is not None and getattr(backbone, "weights_source", "") != "pretrained"

    def save_pretrained(self, save_directory: str | Path, *, config: dict | None = None, **kwargs):
        """Write config, weights and model card, each file atomically (temp folder, then rename)."""
        config = {**(config or self._hub_mixin_config or {}), **self.extra_config()}
        backbone = getattr(self, "backbone", None)
        if backbone is not None:
            config["weights_source"] = backbone.weights_source  # provenance, shown in the card too
            if "weights" in config:  # stored: rebuilt offline, then overwritten; else exactly the pretrained ones
                config["weights"] = "random" if self._backbone_is_stored() else "pretrained"
        card = dict(kwargs.pop("model_card_kwargs", None) or {})
        card.setdefault(
            "title", f"{type(self).__name__} ({getattr(backbone, 'name', getattr(self, 'model_name', ''))})"
        )
        card.setdefault("description", "\n\n".join(filter(None, [self.card_description(), self.card_facts()])))
        card.setdefault("class_name", type(self).__name__)
        save_directory = Path(save_directory)
        if kwargs.get("push_to_hub"):  # the mixin uploads from a temp folder of its own
            return super().save_pretrained(save_directory, config=config, model_card_kwargs=card, **kwargs)
        save_directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".saving-", dir=save_directory))
        try:
            super().save_pretrained(tmp, config=config, model_card_kwargs=card)
            honour_umask(str(tmp))  # safetensors writes model.safetensors 0600
            for file in tmp.iterdir():  # each file replaced whole; the folder's other contents are kept
                os.replace(file, save_directory / file.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return None

    def _save_pretrained(self, save_directory: Path) -> None:
        state = {
            k: v.detach().contiguous().cpu()
            for k, v in self.state_dict().items()
            if self._backbone_is_stored() or not k.startswith("backbone.")
        }
        save_file(state, str(Path(save_directory) / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs):
        """Load a model saved by ``save_pretrained`` from a folder or a Hub id.

        Raises:
            UserError: the folder does not exist or holds no ``config.json``, the config is unreadable or written by
                another class, the Hub id cannot be downloaded, the weights are unreadable or do not fit, or the
                pretrained backbone weights the model relies on cannot be obtained.
        """
        source = str(pretrained_model_name_or_path)
        kind = resolve_source(source).kind
        if kind == "folder":
            _check_config(cls, source)
        elif kind != "hub":
            raise UserError(f"{source} is not a folder saved by asym (save_pretrained), nor a Hub id (owner/name)")
        else:
            hub_reachable()  # a Hub id; no network: one line, then the cache only, without retries
        try:
            return super().from_pretrained(source, **kwargs)
        except _hub_errors() as err:
            raise UserError(f"{source} is no local folder and could not be downloaded from the Hub "
                            f"({type(err).__name__}): check the path, the id and the network") from err  # fmt: skip

    @classmethod
    def _from_pretrained(
        cls, *, model_id: str, revision=None, cache_dir=None, force_download=False, local_files_only=False,
        token=None, map_location: str = "cpu", strict: bool = False, **model_kwargs,
    ):  # fmt: skip
        if os.path.isdir(model_id):
            path = os.path.join(model_id, WEIGHTS_NAME)
            if not os.path.isfile(path):
                raise UserError(f"{model_id} holds no {WEIGHTS_NAME}: it was not (completely) saved by asym")
        else:
            path = hf_hub_download(
                model_id, WEIGHTS_NAME, revision=revision, cache_dir=cache_dir, force_download=force_download,
                local_files_only=local_files_only, token=token,
            )  # fmt: skip
        state = {k: v.to(map_location) for k, v in read_tensor_file(path, "model weights").items()}
        backbone_stored = any(k.startswith("backbone.") for k in state)
        model_kwargs.pop("weights_source", None)  # (not passed by the mixin: read from the config itself)
        source = _saved_weights_source(os.path.join(os.path.dirname(path), CONFIG_NAME))
        if "weights" in model_kwargs:
            # A stored backbone is rebuilt randomly and overwritten; one that is not stored must be the pretrained
            # weights it was saved with: "auto" could fall back to random features under trained alpha/beta.
            model_kwargs["weights"] = "random" if backbone_stored else "pretrained"
        try:
            model = cls(**model_kwargs)
        except UserError as err:
            if backbone_stored:
                raise
            raise UserError(
                f"{model_id} relies on pretrained backbone weights it does not store (saved with: "
                f"{source or 'pretrained'}), and they could not be obtained: {err}"
            ) from err
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as err:
            shapes = [line.strip() for line in str(err).splitlines() if "size mismatch" in line][:2]
            raise UserError(f"{path} does not fit {cls.__name__}({model_kwargs}): {'; '.join(shapes) or err}") from err
        missing = [k for k in result.missing_keys if backbone_stored or not k.startswith("backbone.")]
        if result.unexpected_keys or missing:
            raise UserError(
                f"{path} does not fit {cls.__name__}: missing {missing[:4]}, unexpected {result.unexpected_keys[:4]}"
            )
        if backbone_stored:  # keeps the provenance: "stored in run/metric, from gan:run/discriminator (...)"
            origin = source.split(", from ", 1)[-1] if source and source.startswith("stored in ") else source
            model.backbone.weights_source = f"stored in {model_id}" + (f", from {origin}" if origin else "")
        model.loaded_from = model_id
        return model.eval()


def state_digest(module) -> str:
    """sha256 over a module's class, parameters and buffers (names, dtypes, shapes, bytes): changes with any weight.

    The SR output cache keys a model's outputs by it, and ``asym.metrics.calibration.scorer_identity`` an asym
    scorer's 1..100 map (``module``: a torch ``nn.Module``)."""
    import torch

    digest = hashlib.sha256(type(module).__name__.encode())
    for key, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"\0{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        flat = tensor.reshape(-1)  # a 0-dim buffer (BatchNorm's counter) cannot be viewed as bytes
        digest.update(flat.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def read_tensor_file(path: str, what: str):
    """What a ``.safetensors`` file holds, or a torch file loaded with ``weights_only=True`` (tensors and plain
    containers; an arbitrary pickle is refused, never executed). A file that cannot be parsed is one ``UserError``
    naming ``what`` and the path."""
    import torch

    with reading(path, what):
        if path.endswith(".safetensors"):
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)


def read_config(path: str, what: str = "model config") -> dict:
    """A ``config.json`` written by asym, as a dict; one ``UserError`` naming ``what`` and the path if it cannot be
    read or is not a JSON object."""
    with reading(path, what), open(path, encoding="utf-8") as file:
        config = json.load(file)
    if not isinstance(config, dict):
        raise UserError(f"{path} is not a JSON object: not a config written by asym")
    return config


def read_saved_config(source: str, what: str = "model config") -> dict:
    """The ``config.json`` of a folder saved by asym, or of a Hub repo (downloaded); one ``UserError`` if there is
    none, it cannot be obtained or read."""
    kind = resolve_source(source).kind
    if kind == "folder":
        path = os.path.join(source, CONFIG_NAME)
        if not os.path.isfile(path):
            raise UserError(f"{source} holds no {CONFIG_NAME}: not a folder written by asym's save_pretrained")
        return read_config(path, what)
    if kind != "hub":
        raise UserError(f"{source} is not a folder saved by asym (save_pretrained), nor a Hub id (owner/name)")
    hub_reachable()
    try:
        path = hf_hub_download(source, CONFIG_NAME)
    except Exception as err:  # noqa: BLE001 - offline, missing repo or file: all mean "not obtainable"
        from .errors import summarize

        raise UserError(f"{source} is no local folder and its {CONFIG_NAME} could not be downloaded from the Hub "
                        f"({summarize(err)}): check the path, the id and the network") from err  # fmt: skip
    return read_config(path, what)


def saved_class(source: str) -> str | None:
    """The asym class that wrote a saved folder or Hub repo, as its ``config.json`` names it (``asym_class``): ``""``
    if the config names none (a foreign model, or a DISTS saved before the class was recorded), None for a folder
    without a ``config.json`` (or a source that is neither a folder nor a Hub id); one ``UserError`` naming the file
    if it cannot be read, or a Hub id whose config cannot be downloaded. The one reader of "what is saved here"."""
    kind = resolve_source(source).kind
    if kind == "folder" and not os.path.isfile(os.path.join(source, CONFIG_NAME)) or kind not in ("folder", "hub"):
        return None
    return str(read_saved_config(source).get(CLASS_KEY) or "")


def _check_config(cls, folder: str) -> None:
    """A saved folder's ``config.json`` exists, parses, and was written by ``cls`` (or, for folders saved before the
    class was recorded, holds only arguments ``cls`` takes)."""
    path = os.path.join(folder, CONFIG_NAME)
    if not os.path.isfile(path):
        raise UserError(f"{folder} holds no {CONFIG_NAME}: not a folder written by asym's save_pretrained")
    config = read_config(path)
    saved = config.get(CLASS_KEY)
    if saved is not None and saved != cls.__name__:
        raise UserError(f"{folder} holds an asym {saved}, not a {cls.__name__}: load it with {saved}.from_pretrained")
    unknown = set(config) - set(inspect.signature(cls.__init__).parameters) - BOOKKEEPING_KEYS
    if unknown:
        raise UserError(f"{path} describes another kind of model (entries {sorted(unknown)} are not "
                        f"{cls.__name__} arguments)")  # fmt: skip


def _saved_weights_source(config_path: str) -> str | None:
    """The ``weights_source`` a saved config records (None if absent or unreadable: provenance is informative only)."""
    try:
        with open(config_path, encoding="utf-8") as file:
            source = json.load(file).get("weights_source")
    except (OSError, ValueError, AttributeError):
        return None
    return source if isinstance(source, str) else None


def _hub_errors() -> tuple[type[BaseException], ...]:
    """What huggingface_hub raises for an id it cannot download (offline, missing, gated)."""
    from huggingface_hub import errors

    return tuple(getattr(errors, name) for name in ("HfHubHTTPError", "LocalEntryNotFoundError", "EntryNotFoundError",
                                                     "OfflineModeIsEnabled", "RepositoryNotFoundError")
                 if hasattr(errors, name))  # fmt: skip


__all__ = ["HubModel", "read_config", "read_saved_config", "read_tensor_file", "saved_class", "state_digest"]
