"""train_sr.py's generator loss: one table of terms (``LOSS_TERMS``), each with its weight, the loss network it reads
and its value on a batch.

A new term is one entry here plus its code: ``--loss`` accepts it, ``--lambda_<name>`` sets its weight, the training
step computes and logs it (``loss/<name>``) and the card records its weight, all from the table (the way
traiNNer-redux adds a loss with one file and one line).

The asymmetry paper's terms are rec (L1), per (a DISTS-style distance on ``--per_backbone`` or a saved metric) and adv
(ESRGAN's relativistic loss against the discriminator); the robust-loss study's mse (E), feat (P) and texture (T), the
last two on one feature network computed once per batch; the autoencoders' kl (the VAE's KL term) is the model's own,
on without ``--loss`` for ``--model autoencoder-kl[-tiny]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..core.flags import non_negative_float
from ..nets.discriminator import Discriminator, relativistic_generator_loss
from ..nets.feature_losses import FEAT_LAYERS, TEXTURE_LAYERS, FeatureTextureLoss
from ..nets.feature_normalisation import normalise_backbone_feature_maps
from ..nets.perceptual import DISTS
from .data import SRPairDataset


class LossInputs(NamedTuple):
    """What a term sees: the generator's output, the HR target, and the generator itself (its own terms, e.g. kl)."""

    sr: torch.Tensor
    hr: torch.Tensor
    generator: torch.nn.Module


@dataclass(frozen=True)
class LossTerm:
    """One term of the generator loss: ``value(loss, inputs)`` is its unweighted value, a scalar."""

    what: str  # for --loss's help and the error that lists the terms
    default_weight: float | None  # --lambda_<name>'s default
    weight_help: str
    value: Callable[[GeneratorLoss, LossInputs], torch.Tensor]
    network: str | None = None  # the loss network it reads (LOSS_NETWORKS), built once for every term reading it
    model_term: bool = False  # the generator's own term: on while its weight is above 0, not named in --loss


def _perceptual(args, train_images) -> DISTS:
    """--per_metric (a saved DISTS) or a DISTS-style distance on --per_backbone; frozen."""
    if args.per_metric:
        loss = DISTS.from_pretrained(args.per_metric)
    else:
        loss = DISTS(args.per_backbone, weights=args.weights, alpha_beta=args.per_alpha_beta)
    return loss.requires_grad_(False)


def _feature_network(args, train_images) -> FeatureTextureLoss:
    """The feat and texture terms on one --feat_backbone, as the study; its feature maps normalised to mean 1 on 16
    training crops unless --no_feat_normalisation."""
    loss = FeatureTextureLoss(args.feat_backbone, args.feat_weights,
                              feat_layers=FEAT_LAYERS if "feat" in args.terms else None,
                              texture_layers=TEXTURE_LAYERS if "texture" in args.terms else None)  # fmt: skip
    if not args.no_feat_normalisation:
        calibration = SRPairDataset(train_images, args.scale, args.crop_size, train=False)
        crops = torch.stack([calibration[i]["hr"] for i in range(min(16, len(calibration)))])
        normalise_backbone_feature_maps(loss.backbone, crops)
    return loss


def _discriminator(args, train_images) -> Discriminator:
    """The --disc_type discriminator on --disc_backbone; trained by train_sr.py's loop, only read by the loss."""
    return Discriminator(args.disc_backbone, args.disc_type, weights=args.disc_weights)


# The loss networks, built in this order (the random ones draw from the seeded generator in it): name -> builder.
LOSS_NETWORKS = {"per": _perceptual, "feat": _feature_network, "disc": _discriminator}


def _adversarial(loss: GeneratorLoss, x: LossInputs) -> torch.Tensor:
    """ESRGAN's relativistic generator loss; the discriminator is only read (frozen for this pass, so no DDP sync)."""
    discriminator = loss.run["disc"]
    loss.networks["disc"].requires_grad_(False)
    real_logits = discriminator(x.hr).detach()
    value = relativistic_generator_loss(real_logits, discriminator(x.sr))
    loss.networks["disc"].requires_grad_(True)
    return value


def _feature_term(name: str) -> Callable[[GeneratorLoss, LossInputs], torch.Tensor]:
    """The feat or texture term, from the one forward of the feature network both read."""
    return lambda loss, x: loss.once("feat", lambda: loss.run["feat"](x.sr.float(), x.hr))[name].mean()


# The terms in the order they are computed and summed.
# fmt: off
LOSS_TERMS: dict[str, LossTerm] = {
    "rec": LossTerm("L1", 1e-2, "weight of the L1 term (0: off)",
                    lambda loss, x: F.l1_loss(x.sr.float(), x.hr)),
    "per": LossTerm("DISTS-style", 1.0, "weight of the perceptual term (0: off)",
                    lambda loss, x: loss.run["per"](x.sr.float(), x.hr).mean(), network="per"),
    "mse": LossTerm("E: mean squared error", 1.0, "weight of the mse (E) term (0: off)",
                    lambda loss, x: F.mse_loss(x.sr.float(), x.hr)),
    "feat": LossTerm("P: VGG-19 features", 1.0,
                     "weight of the feat (P) term (its layer weights 0.2 / 0.02 are inside; 0: off)",
                     _feature_term("feat"), network="feat"),
    "texture": LossTerm("T: patch Gram matrices", 1.0,
                        "weight of the texture (T) term (its layer weights 3e-7 / 1e-6 / 1e-6 are inside; 0: off)",
                        _feature_term("texture"), network="feat"),
    "kl": LossTerm("the VAE's KL term", None,
                   "autoencoders: weight of the VAE's KL term (default 1e-6, latent diffusion's kl_weight: keeps the "
                   "latents a usable distribution without blurring; 0: off)",
                   lambda loss, x: x.generator.net.last_kl.float().mean(), model_term=True),
    "adv": LossTerm("relativistic adversarial", 5e-3,
                    "weight of the adversarial term (0: off; the discriminator still trains)",
                    _adversarial, network="disc"),
}
# fmt: on
KL_DEFAULT = 1e-6  # latent diffusion's kl_weight


def loss_flag_terms() -> list[str]:
    """The terms ``--loss`` may name."""
    return [name for name, term in LOSS_TERMS.items() if not term.model_term]


def add_loss_args(group, default: str = "rec+per+adv") -> None:
    """``--loss`` and one ``--lambda_<name>`` per term."""
    listed = "; ".join(f"{name} ({LOSS_TERMS[name].what})" for name in loss_flag_terms())
    group.add_argument("--loss", default=default, help=f"terms joined by '+': {listed}")
    for name, term in LOSS_TERMS.items():
        group.add_argument(f"--lambda_{name}", type=non_negative_float, default=term.default_weight,
                           help=term.weight_help)  # fmt: skip


def check_loss_args(parser: argparse.ArgumentParser, args, model_has_kl: bool) -> None:
    """Set ``args.terms`` from ``--loss``, and ``args.lambda_kl`` from the model; a parser error for an unknown term, a
    KL weight for a model without one, or a loss whose every term weighs 0."""
    if args.lambda_kl is not None and not model_has_kl:
        parser.error(f"--lambda_kl is the VAE's KL term: it needs --model autoencoder-kl[-tiny], not {args.model}")
    args.lambda_kl = (KL_DEFAULT if args.lambda_kl is None else args.lambda_kl) if model_has_kl else 0.0
    args.terms = [t.strip() for t in args.loss.split("+")]
    unknown = [t for t in args.terms if t not in loss_flag_terms()]
    if unknown or not args.terms:
        parser.error(f"--loss {args.loss!r}: unknown term(s) {unknown}; join {', '.join(loss_flag_terms())} with '+'")
    if not any(getattr(args, f"lambda_{t}") > 0 for t in args.terms):  # a run that trains nothing replaces no model
        parser.error(f"--loss {args.loss}: every term has weight 0 ("
                     + ", ".join(f"--lambda_{t}" for t in args.terms) + "): the generator would not train")  # fmt: skip


class GeneratorLoss:
    """The chosen terms of a run (``--loss``, and the model's own with a weight above 0) with their weights and loss
    networks, built once from the run's flags. ``loss(sr, hr, generator)`` returns each term's unweighted value,
    ``loss.total(values)`` their weighted sum (``--lambda_<name>``). ``networks``: the loss networks by name (``per``,
    ``feat``, ``disc``); ``run``: what the terms call, the same or compiled (``compile``)."""

    def __init__(self, args, train_images):
        weights = {name: getattr(args, f"lambda_{name}") for name in LOSS_TERMS}
        self.weights = {name: weights[name] for name, term in LOSS_TERMS.items()
                        if (weights[name] > 0 if term.model_term else name in args.terms)}  # fmt: skip
        needed = {LOSS_TERMS[name].network for name in self.weights}
        self.networks = {name: build(args, train_images) for name, build in LOSS_NETWORKS.items() if name in needed}
        self.run = dict(self.networks)  # what the terms call: the networks, or their compiled forms (compile)
        self._shared = {}

    @property
    def perceptual(self) -> DISTS | None:
        return self.networks.get("per")

    @property
    def features(self) -> FeatureTextureLoss | None:
        return self.networks.get("feat")

    @property
    def discriminator(self) -> Discriminator | None:
        return self.networks.get("disc")

    def to(self, device) -> GeneratorLoss:
        """The frozen loss networks to ``device``; the discriminator is the training loop's (Accelerate places it)."""
        for name, network in self.networks.items():
            if name != "disc":
                network.to(device)
        return self

    def compile(self, mode: str = "default") -> GeneratorLoss:
        """``torch.compile`` each loss network's forward as the terms call it (``--compile``); ``networks`` stay the
        modules themselves (the discriminator is trained and saved as such)."""
        self.run = {name: torch.compile(network, mode=mode) for name, network in self.networks.items()}
        return self

    def once(self, key: str, compute: Callable):
        """``compute()`` once per call of the loss, for the terms that share it."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor, generator: torch.nn.Module) -> dict[str, torch.Tensor]:
        inputs, self._shared = LossInputs(sr, hr, generator), {}
        try:
            return {name: LOSS_TERMS[name].value(self, inputs) for name in self.weights}
        finally:
            self._shared = {}

    def total(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.weights[name] * value for name, value in values.items())


__all__ = [
    "GeneratorLoss",
    "LOSS_NETWORKS",
    "LOSS_TERMS",
    "LossInputs",
    "LossTerm",
    "add_loss_args",
    "check_loss_args",
    "loss_flag_terms",
]
