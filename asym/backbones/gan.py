"""A trained GAN discriminator as a weight source: ``create_backbone(name, weights="gan:<run, folder or Hub id>")``.

The asymmetry study asks whether a discriminator that trained a good SR generator is also a good start for a quality
model. train_sr.py saves its discriminator in ``<output_dir>/discriminator/`` (``Discriminator.save_pretrained``);
``gan:`` takes that folder, the run folder holding it, or a Hub id (whose repo has ``discriminator/`` or is the
discriminator itself), keeps the backbone tensors and drops the logit head.

Pooling: the tensors are loaded into the backbone the caller builds, with the caller's pooling. A ``vgg16`` metric
(DISTS) keeps DISTS's L2 pooling, although discriminators are built with max pooling: DISTS does exactly this with
ImageNet weights (trained with max pooling), so random, ImageNet and ``gan:`` initialisations of one model differ in
their weights only. Pooling has no parameters, so the tensors fit either form; the pooling used is stated in the
weight source string.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..core.errors import UserError, summarize
from ..core.hub import CLASS_KEY, CONFIG_NAME, WEIGHTS_NAME, read_config, read_tensor_file
from ..core.sources import resolve_source

PREFIX = "gan:"
FOLDER = "discriminator"  # where train_sr.py saves it inside a run folder


@dataclass
class GanWeights:
    """The backbone tensors of a saved discriminator and where they come from.

    Attributes:
        state: backbone state dict, keys as in ``Backbone.state_dict()`` (``model.features.0.weight``, ...).
        backbone: the registry name the discriminator was built on.
        disc_type: ``vanilla`` or ``patch``.
        steps: optimisation steps the discriminator trained (None if its card does not say).
        location: the folder or ``<hub id>/discriminator`` the tensors were read from.
        started_from: the discriminator's own initial backbone weights (``random``, ``pretrained``, ...).
    """

    state: dict[str, torch.Tensor]
    backbone: str
    disc_type: str
    steps: int | None
    location: str
    started_from: str

    def describe(self, pooling: str | None = None) -> str:
        """Provenance for configs and model cards, e.g. ``gan:runs/x (vanilla discriminator on vgg16, 400 steps)``."""
        steps = f"{self.steps} steps" if self.steps is not None else "steps unknown"
        extra = f", loaded under {pooling} pooling" if pooling else ""
        return (f"{PREFIX}{self.location} ({self.disc_type} discriminator on {self.backbone}, {steps}, started from "
                f"{self.started_from} weights{extra})")  # fmt: skip


def _locate(source: str) -> tuple[dict, str, str]:
    """(config, weights path, location for people) of the discriminator a ``gan:`` source names, downloaded from the
    Hub if ``source`` is a repo id. Each config is read once."""
    if os.path.isdir(source):
        for folder in (os.path.join(source, FOLDER), source):
            path = os.path.join(folder, CONFIG_NAME)
            if os.path.isfile(path):
                config = read_config(path, "discriminator config")
                if config.get(CLASS_KEY) == "Discriminator":
                    return config, os.path.join(folder, WEIGHTS_NAME), os.path.normpath(folder)
        raise UserError(
            f"gan:{source} holds no discriminator (no {FOLDER}/ folder and no Discriminator config.json): pass the "
            "output folder of a train_sr.py run whose --loss has an adv term, or its discriminator/ folder"
        )
    if resolve_source(source).kind != "hub":
        raise UserError(f"gan:{source} not found: pass a train_sr.py output folder, its discriminator/ folder, or a "
                        "Hub id (owner/name)")  # fmt: skip
    from huggingface_hub import hf_hub_download

    errors = []
    for subfolder in (FOLDER, None):
        try:
            config = hf_hub_download(source, CONFIG_NAME, subfolder=subfolder)
            weights = hf_hub_download(source, WEIGHTS_NAME, subfolder=subfolder)
        except Exception as err:  # noqa: BLE001 - offline, missing repo or file: all mean "not obtainable"
            errors.append(summarize(err))
        else:
            location = f"{source}/{subfolder}" if subfolder else source
            return read_config(config, "discriminator config"), weights, location
    raise UserError(f"gan:{source} is no local folder and its discriminator could not be downloaded from the Hub "
                    f"({errors[-1]}): check the path, the id and the network")  # fmt: skip


def read_gan_weights(source: str, expected_backbone: str) -> GanWeights:
    """The backbone tensors of the discriminator at ``source`` (``gan:`` stripped), checked against the backbone
    they are meant for.

    Raises:
        UserError: no discriminator there, an unreadable config or weights file, or a discriminator built on another
            backbone than ``expected_backbone`` (both names are given).
    """
    config, weights_path, location = _locate(source)
    if config.get(CLASS_KEY) != "Discriminator":
        saved = config.get(CLASS_KEY, "unknown model")
        raise UserError(f"gan:{source} holds an asym {saved}, not a Discriminator: pass a train_sr.py discriminator")
    backbone = config.get("backbone", "vgg16")
    if backbone != expected_backbone:
        raise UserError(
            f"gan:{source} is a discriminator on backbone {backbone!r}, but the backbone asked for is "
            f"{expected_backbone!r}: use --backbone {backbone} or a discriminator trained on {expected_backbone}"
        )
    if not os.path.isfile(weights_path):
        raise UserError(f"{os.path.dirname(weights_path)} holds no {WEIGHTS_NAME}: the discriminator was not "
                        "(completely) saved")  # fmt: skip
    tensors = read_tensor_file(weights_path, "discriminator weights")
    state = {k[len("backbone.") :]: v for k, v in tensors.items() if k.startswith("backbone.")}
    if not state:
        raise UserError(f"{weights_path} holds no backbone tensors: not a discriminator saved by asym")
    card = config.get("card") or {}
    steps = card.get("steps trained")
    return GanWeights(state, backbone, config.get("disc_type", "vanilla"), steps if isinstance(steps, int) else None,
                      location, str(config.get("weights_source", config.get("weights", "unknown"))))  # fmt: skip


def load_gan_weights(backbone: torch.nn.Module, gan: GanWeights) -> None:
    """Copy ``gan.state`` into ``backbone`` (every tensor must fit: same architecture, same shapes)."""
    expected = backbone.state_dict()
    missing = sorted(set(expected) - set(gan.state))
    unexpected = sorted(set(gan.state) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"the discriminator at gan:{gan.location} does not fit this {gan.backbone} backbone: missing "
            f"{missing[:3]}, unexpected {unexpected[:3]} (was it built with other backbone arguments?)"
        )
    mismatched = [k for k, v in gan.state.items() if v.shape != expected[k].shape]
    if mismatched:
        k = mismatched[0]
        raise UserError(f"the discriminator at gan:{gan.location} does not fit this {gan.backbone} backbone: {k} is "
                        f"{tuple(gan.state[k].shape)}, expected {tuple(expected[k].shape)}")  # fmt: skip
    backbone.load_state_dict(gan.state)


__all__ = ["PREFIX", "GanWeights", "load_gan_weights", "read_gan_weights"]
