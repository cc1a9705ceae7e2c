"""Two-alternative forced choice (2AFC): the BAPPS task LPIPS and R-LPIPS are trained and scored on.

A triplet is a reference and two distorted versions ``p0``, ``p1``; ``judge`` is the fraction of humans who found
``p1`` closer to the reference. A metric answers with its two distances ``d0 = D(ref, p0)``, ``d1 = D(ref, p1)``:
the reference first, as the ``lpips`` package's trainer and ``score_2afc_dataset`` call it (``func(ref, p)``), which
matters for a metric that is not symmetric (asym's own ``(output, reference)`` order would score another task).

* ``Dist2Logit``: LPIPS's small network from ``(d0, d1)`` to the predicted ``judge``; ``ranking_loss`` is its binary
  cross-entropy against ``judge`` (LPIPS's ``BCERankingLoss``), what the linear weights are trained on.
* ``two_afc_scores``: LPIPS's 2AFC score per triplet, the share of humans the metric agrees with.
* ``perturb_triplet``: R-LPIPS's adversarial inputs, PGD on the ranking loss with the models held fixed.
* Training LPIPS / R-LPIPS on it (train_metric.py --objective 2afc): ``build_lpips`` (``--init``: LPIPS's random or
  ones linear weights, its release, or an lpips-format file), ``lpips_lr_factor`` (LPIPS's schedule),
  ``evaluate_2afc`` (the 2AFC score of each BAPPS val subset), ``two_afc_results`` (the card's model-index),
  ``describe_2afc`` / ``describe_attack`` (log lines and card facts).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from ..core.errors import UserError
from ..core.model_card import eval_results
from ..core.progress import tqdm
from ..core.train_loader import num_workers
from ..nets.perceptual import LPIPS
from ..nets.pgd import default_step_size, pgd_attack
from .data.layouts.bapps import TwoAFCDataset

LPIPS_INITS = ("random", "ones", "lpips")  # linear weights (or an lpips-format file)

TRIPLET = ("ref", "p0", "p1")  # the images of a triplet, in the order the functions here take them


class Dist2Logit(nn.Module):
    """LPIPS's ``Dist2LogitLayer``: ``(d0, d1)`` -> predicted fraction of humans preferring ``p1``, in (0, 1).

    Input features ``[d0, d1, d0 - d1, d0 / (d1 + eps), d1 / (d0 + eps)]``, then 1x1 convolutions 5 -> 32 -> 32 -> 1
    with LeakyReLU(0.2) between and a sigmoid. Its state dict has the ``lpips`` package's keys (``model.0.weight``,
    ...), so LPIPS's saved ``*_net_rank.pth`` files load as they are.
    """

    def __init__(self, chn_mid: int = 32, eps: float = 0.1):
        super().__init__()
        self.eps = eps
        self.model = nn.Sequential(
            nn.Conv2d(5, chn_mid, 1), nn.LeakyReLU(0.2), nn.Conv2d(chn_mid, chn_mid, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(chn_mid, 1, 1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
        """``d0``, ``d1``: (B,) distances -> (B,) probabilities."""
        d0, d1 = d0.reshape(-1, 1, 1, 1), d1.reshape(-1, 1, 1, 1)
        x = torch.cat([d0, d1, d0 - d1, d0 / (d1 + self.eps), d1 / (d0 + self.eps)], dim=1)
        return self.model(x).flatten()


def _bce(predicted: torch.Tensor, judge: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per triplet, in fp32, with ``torch.nn.BCELoss``'s floor of -100 on the logs (written out:
    autocast refuses ``F.binary_cross_entropy`` on CUDA)."""
    p = predicted.float()
    j = judge.reshape(-1).to(p)
    return -(j * p.log().clamp(min=-100) + (1 - j) * (1 - p).log().clamp(min=-100))


def ranking_loss(logit: Dist2Logit, d0: torch.Tensor, d1: torch.Tensor, judge: torch.Tensor) -> torch.Tensor:
    """LPIPS's ``BCERankingLoss``: mean binary cross-entropy of ``logit(d0, d1)`` against ``judge`` (B,) in [0, 1].

    (LPIPS passes ``2 judge - 1`` and maps it back with ``(j + 1) / 2``: the target is ``judge`` itself.)
    """
    return _bce(logit(d0, d1), judge).mean()


def triplet_distances(metric: nn.Module, ref: torch.Tensor, p0: torch.Tensor, p1: torch.Tensor, **kwargs):
    """``(d0, d1)`` = ``metric(ref, p0)``, ``metric(ref, p1)`` (B,) each, in LPIPS's order (its trainer's
    ``forward(var_ref, var_p0)``, ``score_2afc_dataset``'s ``func(ref, p0)``); ``kwargs`` go to the metric."""
    return metric(ref, p0, **kwargs), metric(ref, p1, **kwargs)


def two_afc_scores(d0: torch.Tensor, d1: torch.Tensor, judge: torch.Tensor) -> torch.Tensor:
    """LPIPS's 2AFC score of each triplet (``score_2afc_dataset``): the share of humans the metric agrees with.

    ``1 - judge`` where the metric finds ``p0`` closer (``d0 < d1``), ``judge`` where it finds ``p1`` closer, 0.5 on a
    tie. The dataset's score is the mean.
    """
    d0, d1, judge = d0.reshape(-1).double(), d1.reshape(-1).double(), judge.reshape(-1).to(d0.device).double()
    return (d0 < d1) * (1 - judge) + (d1 < d0) * judge + (d0 == d1) * 0.5


def perturb_triplet(
    metric: nn.Module,
    logit: Dist2Logit,
    ref: torch.Tensor,
    p0: torch.Tensor,
    p1: torch.Tensor,
    judge: torch.Tensor,
    inputs: Sequence[str] = TRIPLET,
    eps: float = 1.33,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "l2",
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """R-LPIPS's adversarial triplet: PGD (``asym.nets.pgd.pgd_attack``) that maximises ``ranking_loss`` with respect
    to the images named in ``inputs`` (a subset of ``"ref", "p0", "p1"``), jointly, each in its own ``eps`` ball and
    in [0, 1]; the others stay clean. ``metric`` and ``logit`` are held fixed (evaluation mode: no dropout; no
    parameter gradients) and restored to the mode they were in.

    Returns:
        ``(ref, p0, p1)``, the chosen ones replaced by their adversarial versions (detached).
    """
    chosen = [name for name in TRIPLET if name in inputs]
    unknown = sorted(set(inputs) - set(TRIPLET))
    if unknown or not chosen:
        raise ValueError(f"inputs must name some of {', '.join(TRIPLET)}, got {list(inputs)}")
    clean = dict(zip(TRIPLET, (ref, p0, p1)))
    batch = ref.shape[0]
    stacked = torch.cat([clean[name] for name in chosen])  # (k B, 3, H, W): every image its own ball

    def loss_fn(adv: torch.Tensor) -> torch.Tensor:
        images = dict(clean, **dict(zip(chosen, adv.split(batch))))
        d0, d1 = triplet_distances(metric, images["ref"], images["p0"], images["p1"])
        return _bce(logit(d0, d1), judge).sum()  # summed: each triplet is attacked on its own loss

    modes = [(m, m.training) for m in (metric, logit)]
    try:
        for module, _ in modes:
            module.eval()
        adv = pgd_attack(loss_fn, stacked, eps, steps, step_size=step_size, norm=norm, random_start=random_start,
                         generator=generator)  # fmt: skip
    finally:
        for module, mode in modes:
            module.train(mode)
    out = dict(clean, **dict(zip(chosen, adv.split(batch))))
    return out["ref"], out["p0"], out["p1"]


def build_lpips(args) -> LPIPS:
    """The LPIPS to train: ``--backbone``/``--weights`` and the ``--init`` linear weights (or an lpips-format file)."""
    if args.init in LPIPS_INITS:
        return LPIPS(args.backbone, weights=args.weights, linear=args.init, seed=args.seed)
    if not os.path.isfile(args.init):
        raise UserError(f"--init {args.init!r} is neither {', '.join(LPIPS_INITS)} nor an lpips-format weights file")
    return LPIPS.from_lpips_state_dict(args.init, backbone=args.backbone, weights=args.weights)


def lpips_lr_factor(step: int, total: int) -> float:
    """LPIPS's schedule: the base rate for the first half of training, then linearly down to 0 (its trainer takes 5
    epochs at the base rate and lowers it by a fifth after each of 5 more: these values at each epoch's start)."""
    return min(1.0, 2.0 * (1.0 - step / max(total, 1)))


@torch.no_grad()
def evaluate_2afc(metric, val_sets: dict, args, device, progress: bool) -> dict:
    """LPIPS's 2AFC score of each val subset (``two_afc_scores`` averaged), their unweighted mean and sizes."""
    was_training = metric.training
    metric.eval()
    scores = {}
    for subset, triplets in val_sets.items():
        loader = torch.utils.data.DataLoader(TwoAFCDataset(triplets, args.load_size), batch_size=args.train_batch_size,
                                             num_workers=num_workers(args, device))  # fmt: skip
        parts = []
        for batch in tqdm(loader, desc=f"2afc {subset}", disable=not progress, leave=False):
            ref, p0, p1 = (batch[k].to(device) for k in TRIPLET)
            parts.append(two_afc_scores(*triplet_distances(metric, ref, p0, p1), batch["judge"]).cpu())
        scores[subset] = float(torch.cat(parts).mean())
    metric.train(was_training)
    return {"2afc": scores, "mean": sum(scores.values()) / len(scores), "n": {s: len(t) for s, t in val_sets.items()}}


def two_afc_results(result: dict, dataset_type: str, dataset_name: str) -> list[dict]:
    """The model card's model-index of ``evaluate_2afc``'s ``result``: the 2AFC score of each val subset (its dataset
    config) and their mean."""
    task = ("image-quality-assessment", "Perceptual similarity (2AFC)", dataset_type, dataset_name, "val")
    scores = [eval_results(*task, [("2afc", f"2AFC score ({subset})", value)], dataset_config=subset)
              for subset, value in result["2afc"].items()]  # fmt: skip
    return [r for rs in scores for r in rs] + eval_results(*task, [("2afc", "2AFC score (mean)", result["mean"])])


def describe_2afc(result: dict) -> str:
    """``evaluate_2afc``'s result as a log line: the mean, then each subset's score."""
    return f"mean {result['mean']:.4f} (" + ", ".join(f"{s} {v:.4f}" for s, v in result["2afc"].items()) + ")"


def describe_attack(args) -> str:
    """R-LPIPS's attack (``--attack_*``) as its card says it."""
    step = args.attack_step_size or default_step_size(args.attack_eps, args.attack_steps)
    start = ", random start" if args.attack_random_start else ""
    return (f"PGD-{args.attack_steps}, {args.attack_norm} eps {args.attack_eps:.6g} (images in [0, 1]), step "
            f"{step:.6g}{start}, on {args.attack_inputs}")  # fmt: skip


__all__ = ["TRIPLET", "Dist2Logit", "perturb_triplet", "ranking_loss", "triplet_distances", "two_afc_scores"]
