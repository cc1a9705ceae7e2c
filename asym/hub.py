"""Hub persistence shared by every asym model: safetensors + ``config.json`` + a ``README.md`` model card.

Built on ``huggingface_hub.PyTorchModelHubMixin`` (so ``save_pretrained``, ``from_pretrained`` and
``push_to_hub`` work on local folders and Hub ids alike), with two asym rules:

* a frozen backbone whose weights can be re-obtained by name (``weights_source == "pretrained"``) is
  not duplicated into the checkpoint; any other backbone (random, fallback, robust file) is stored, so a
  reloaded model is bit-identical wherever it is loaded;
* files are written to a temporary folder and each renamed into place, so a killed run never leaves a
  half-written file, and whatever else the folder holds (checkpoints, logs) is left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from safetensors.torch import load_file, save_file

WEIGHTS_NAME = "model.safetensors"
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
    tags=["asym", "image-quality-assessment"],
    model_card_template=CARD_TEMPLATE,
):
    """Mixin for ``nn.Module`` subclasses; a module's frozen backbone is expected at ``self.backbone``."""

    def card_description(self) -> str:
        """Markdown paragraph for the model card; subclasses describe what they are."""
        return ""

    def generate_model_card(self, *args, **kwargs):
        """The mixin's card, plus the ``datasets`` metadata a model may carry (``self.card_datasets``)."""
        card = super().generate_model_card(*args, **kwargs)
        if getattr(self, "card_datasets", None):
            card.data.datasets = list(self.card_datasets)
        return card

    def extra_config(self) -> dict:
        """Entries added to ``config.json`` at save time: the training facts in ``self.card``, if any."""
        return {"card": dict(self.card)} if getattr(self, "card", None) else {}

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
            if self._backbone_is_stored() and "weights" in config:
                config["weights"] = "random"  # rebuilt offline, then overwritten by the stored tensors
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
    def _from_pretrained(
        cls, *, model_id: str, revision=None, cache_dir=None, force_download=False, local_files_only=False,
        token=None, map_location: str = "cpu", strict: bool = False, **model_kwargs,
    ):  # fmt: skip
        model_kwargs.pop("weights_source", None)
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            path = os.path.join(model_id, WEIGHTS_NAME)
        else:
            path = hf_hub_download(
                model_id, WEIGHTS_NAME, revision=revision, cache_dir=cache_dir, force_download=force_download,
                local_files_only=local_files_only, token=token,
            )  # fmt: skip
        state = load_file(path, device=map_location)
        result = model.load_state_dict(state, strict=False)
        backbone_stored = any(k.startswith("backbone.") for k in state)
        missing = [k for k in result.missing_keys if backbone_stored or not k.startswith("backbone.")]
        if result.unexpected_keys or missing:
            raise ValueError(
                f"{path} does not fit {cls.__name__}: missing {missing[:4]}, unexpected {result.unexpected_keys[:4]}"
            )
        if backbone_stored:
            model.backbone.weights_source = f"stored in {model_id}"
        return model.eval()


__all__ = ["HubModel"]
