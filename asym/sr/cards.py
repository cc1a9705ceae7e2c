"""What a train_sr.py run's card (the training facts in its config.json) records: written here (``sr_card``,
``sr_eval_results``, ``discriminator_card``; ``describe_validation``, its validation fact and log line) and read here,
as the SR tables read it, so the string contract between writer and readers lives in one module.

``card_loss`` (``--loss``), ``card_per_backbone`` / ``card_disc_backbone`` (the perceptual loss's and the
discriminator's backbone), ``card_disc_type`` (the discriminator's head: vanilla or patch), ``card_feat_weights``
(``--feat_weights``) and ``feat_weights_robustness`` (whether those weights come from adversarial training, by
their own card), ``card_trained_on_builtin`` (trained on the ``builtin`` photographs, which ``evaluate.py sr
--datasets builtin`` would then score); ``read_run_card`` reads a run folder's card; ``metric_for_backbone`` finds
the FR metric named after a card's backbone (Fig. 3 pairs them).
"""

from __future__ import annotations

import json
import os

from ..core.errors import UserError, reading
from ..core.model_card import card_dataset_type, eval_results, model_card_facts
from ..core.sources import resolve_source


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


STANDARD_WEIGHTS = ("auto", "pretrained", "random")  # --feat_weights that are no robust model's weights


def _weights_card(feat_weights: str) -> tuple[dict | None, str]:
    """(config.json, where it was found) of the asym model that ``feat_weights`` names: a folder, the weights file of
    one, or a Hub repo (its config.json from the local cache or the Hub); (None, why not) if there is none."""
    if os.path.isdir(feat_weights) or os.path.isfile(feat_weights):
        folder = feat_weights if os.path.isdir(feat_weights) else os.path.dirname(os.path.abspath(feat_weights))
        path = os.path.join(folder, "config.json")
        if not os.path.isfile(path):
            return None, f"{feat_weights}: weights without a config.json or model card saying how they were trained"
    elif resolve_source(feat_weights).kind == "hub":
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(feat_weights, "config.json")
        except Exception as err:  # noqa: BLE001 - offline, no such repo, no config.json: nothing to read
            return None, f"{feat_weights}: its config.json could not be had ({type(err).__name__})"
    else:
        return None, f"{feat_weights}: not found here (no file, folder or Hub repo to read a card from)"
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, ValueError) as err:
        return None, f"{path} cannot be read ({type(err).__name__})"
    return (config if isinstance(config, dict) else None), path


def feat_weights_robustness(feat_weights: str | None) -> tuple[str, str]:
    """Whether feature-loss weights come from adversarial training, by their own record: (``"yes"`` / ``"no"`` /
    ``"unknown"``, why).

    ``no``: none recorded, ``auto`` / ``pretrained`` / ``random`` (standard or random weights), ``gan:<run>`` (a
    discriminator's backbone), or a train_robust.py output whose card records standard training. ``yes``: a
    train_robust.py output (its folder, its weights file, or its Hub repo) whose card's objective is PGD adversarial
    training. ``unknown``: weights that record neither, such as a robustness-library checkpoint file (it holds the
    network, not how it was trained) or a Hub repo that cannot be read here.
    """
    if feat_weights in (None, "", *STANDARD_WEIGHTS):
        return "no", "standard weights" if feat_weights else "no --feat_weights recorded (the default, auto)"
    if feat_weights.startswith("gan:"):
        return "no", f"{feat_weights}: a GAN discriminator's backbone, not adversarially trained"
    config, where = _weights_card(feat_weights)
    if config is None:
        return "unknown", where
    objective = str((config.get("card") or {}).get("objective") or "")
    if config.get("asym_class") == "Classifier" and "x_adv: PGD" in objective:
        return "yes", f"{where}: {objective.split('x_adv: ', 1)[1]}"
    if config.get("asym_class") == "Classifier" and objective.startswith("standard training"):
        return "no", f"{where}: {objective}"
    return "unknown", f"{where}: its card records no adversarial or standard training objective (train_robust.py's)"


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


# --- The writer: what train_sr.py records, beside the readers above that parse it ---------------------------------


def describe_validation(scores: dict[str, float]) -> str:
    """Validation scores on Y (BT.601), with bicubic's on the same images when measured."""
    text = f"Y (BT.601): PSNR {scores['psnr_y']:.2f} dB, SSIM {scores['ssim_y']:.4f}"
    if "bicubic_psnr_y" in scores:
        text += f" (bicubic: {scores['bicubic_psnr_y']:.2f} dB, {scores['bicubic_ssim_y']:.4f})"
    return text


def sr_card(args, steps: int, final: dict, n_validation: int, loss) -> dict:
    """A train_sr.py run's card: its flags (``--loss``, each term's weight, data, schedule), one fact per loss network
    (``"<what> on <backbone> (<weights>), ..."``, which ``card_per_backbone`` / ``card_disc_backbone`` /
    ``card_disc_type`` read back), the final validation and the steps trained. ``loss``: the run's ``GeneratorLoss``
    (its ``weights``, ``perceptual``, ``features`` and ``discriminator``)."""
    facts = model_card_facts(args, ["loss", *(f"lambda_{term}" for term in loss.weights), "init_generator",
                                    "dataset_name", "train_data_dir", "crop_size", "train_batch_size",
                                    "learning_rate", "lr_milestones", "max_train_steps", "seed"])  # fmt: skip
    per_loss, feat_loss, discriminator = loss.perceptual, loss.features, loss.discriminator
    if per_loss is not None:
        facts["perceptual loss"] = (f"DISTS-style on {per_loss.backbone.name} ({per_loss.backbone.weights_source}),"
                                    f" alpha/beta: {per_loss.alpha_beta_source}")  # fmt: skip
    if feat_loss is not None:
        facts |= model_card_facts(args, ["feat_backbone", "feat_weights"])
        normalised = "not normalised" if args.no_feat_normalisation else "feature maps normalised to mean 1"
        terms = "+".join(t for t in ("feat", "texture") if t in loss.weights)
        facts["feature loss"] = (f"{terms} on {feat_loss.backbone.name} ({feat_loss.backbone.weights_source}), "
                                 f"{normalised}")  # fmt: skip
    if discriminator is not None:
        weights = discriminator.backbone.weights_source
        facts["discriminator"] = f"{args.disc_type} on {args.disc_backbone} ({weights}), lr {args.disc_learning_rate}"
    rgb = f"RGB: PSNR {final['psnr']:.2f} dB, SSIM {final['ssim']:.4f}"
    facts["validation"] = (f"{describe_validation(final)}; {rgb}; {n_validation} whole images, {args.scale} border "
                           "pixels cropped")  # fmt: skip
    return {**facts, "steps trained": steps}


def sr_eval_results(args, final: dict, n_validation: int) -> list:
    """The card's model-index results: validation Y-PSNR / SSIM on the held-out images or --validation_data_dir."""
    if args.validation_data_dir:
        val_type = card_dataset_type(args.validation_data_dir)
        val_name = f"{val_type} ({n_validation} images)"
    else:
        val_type = card_dataset_type(args.dataset_name, args.train_data_dir)
        val_name = f"{val_type} ({n_validation} held-out images)"
    task = "Image reconstruction (autoencoder)" if args.scale == 1 else f"Super-resolution x{args.scale}"
    measured = {"channel": "Y (BT.601)", "border": args.scale, "images": "whole"}
    return eval_results("image-to-image", task, val_type, val_name, "validation",
                        [("psnr", "Validation PSNR (Y, dB)", final["psnr_y"]),
                         ("ssim", "Validation SSIM (Y)", final["ssim_y"])], metric_args=measured)  # fmt: skip


def discriminator_card(args, steps: int) -> dict:
    """The card of a run's discriminator: what it trained against, read back by ``gan:`` weight sources."""
    return {"steps trained": steps, "generator": args.model, "loss": args.loss,
            "dataset_name": args.train_data_dir or args.dataset_name, "lr": args.disc_learning_rate}  # fmt: skip


__all__ = [
    "describe_validation",
    "discriminator_card",
    "sr_card",
    "sr_eval_results",
    "STANDARD_WEIGHTS",
    "TrainingImagesWarning",
    "card_disc_backbone",
    "card_disc_type",
    "card_feat_weights",
    "card_loss",
    "card_per_backbone",
    "card_trained_on_builtin",
    "feat_weights_robustness",
    "metric_for_backbone",
    "read_run_card",
]
