"""What a train_sr.py run's card (the training facts in its config.json) records, as the SR tables read it.

``card_loss`` (``--loss``), ``card_per_backbone`` / ``card_disc_backbone`` (the perceptual loss's and the
discriminator's backbone), ``card_disc_type`` (the discriminator's head: vanilla or patch), ``card_feat_weights``
(``--feat_weights``), ``card_trained_on_builtin`` (trained on the ``builtin`` photographs, which ``evaluate.py sr
--datasets builtin`` would then score); ``read_run_card`` reads a run folder's card; ``metric_for_backbone`` finds
the FR metric named after a card's backbone (Fig. 3 pairs them).
"""

from __future__ import annotations

import json
import os

from .core.errors import UserError, reading


def card_loss(card: dict | None) -> str | None:
    """The loss setting a train_sr.py model card records (``--loss``, e.g. ``rec+per+adv``), None if it has none."""
    loss = (card or {}).get("--loss")
    return str(loss) if loss else None


def _fact_backbone(fact) -> str | None:
    """The backbone in a train_sr.py card fact ``"<what> on <backbone> (<weights>)..."``, None if it has none."""
    if not isinstance(fact, str) or " on " not in fact:
        return None
    rest = fact.split(" on ", 1)[1]
    return rest.split(" (", 1)[0].split(",", 1)[0].strip() or None


class TrainingImagesWarning(UserWarning):
    """A model is scored on the images it trained on (``builtin`` models on the ``builtin`` test set)."""


def card_trained_on_builtin(card: dict | None) -> bool:
    """Whether a train_sr.py card says the model trained on ``builtin`` (``--dataset_name builtin``, no
    ``--train_data_dir``): all but its held-out photographs are then the ``builtin`` test set's images."""
    card = card or {}
    return card.get("--dataset_name") == "builtin" and not card.get("--train_data_dir")


def card_per_backbone(card: dict | None) -> str | None:
    """The perceptual loss backbone of a train_sr.py card (``--per_backbone``, else its ``perceptual loss`` fact)."""
    card = card or {}
    return str(card["--per_backbone"]) if card.get("--per_backbone") else _fact_backbone(card.get("perceptual loss"))


def card_disc_backbone(card: dict | None) -> str | None:
    """The discriminator backbone of a train_sr.py card (``--disc_backbone``, else its ``discriminator`` fact)."""
    card = card or {}
    return str(card["--disc_backbone"]) if card.get("--disc_backbone") else _fact_backbone(card.get("discriminator"))


def card_disc_type(card: dict | None) -> str | None:
    """The discriminator type of a train_sr.py card (``--disc_type``: ``vanilla`` or ``patch``, else the first word of
    its ``discriminator`` fact ``"<type> on <backbone> (<weights>), lr ..."``), None if it has none."""
    card = card or {}
    if card.get("--disc_type"):
        return str(card["--disc_type"])
    fact = card.get("discriminator")
    if not isinstance(fact, str) or " on " not in fact:
        return None
    return fact.split(" on ", 1)[0].strip() or None


def card_feat_weights(card: dict | None) -> str | None:
    """The feature-loss weights a train_sr.py card records (``--feat_weights``: auto, pretrained, random, a file or a
    Hub id), None if it records none."""
    value = (card or {}).get("--feat_weights")
    return None if value is None else str(value)


def read_run_card(run: str) -> dict:
    """The card (train_sr.py facts) in a run folder's config.json."""
    path = os.path.join(run, "config.json")
    if not os.path.isfile(path):
        raise UserError(f"--runs: {run} holds no config.json (pass train_sr.py output folders)")
    with reading(path, "model config", "JSON"), open(path, encoding="utf-8") as file:
        config = json.load(file)
    card = config.get("card") if isinstance(config, dict) else None
    if not isinstance(card, dict):
        raise UserError(f"{path} has no card of training facts: not a train_sr.py output")
    return card


def metric_for_backbone(backbone: str, metrics: list[str]) -> str | None:
    """The FR metric named after ``backbone`` (``vgg16``, ``metric-vgg16``, ``runs/metric_vgg16``); a UserError if
    several are, None if none is."""
    found = [m for m in metrics if m == backbone or any(m.endswith(sep + backbone) for sep in "-_/")]
    if len(found) > 1:
        raise UserError(f"metrics {', '.join(found)} all match backbone {backbone}: pass --pairs metric=model")
    return found[0] if found else None


__all__ = [
    "card_disc_backbone",
    "card_disc_type",
    "card_feat_weights",
    "card_loss",
    "card_per_backbone",
    "metric_for_backbone",
    "read_run_card",
]
