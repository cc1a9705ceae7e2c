"""What each stage of a backbone responds to in an image (Fig. 14: a GAN discriminator's backbone against an ImageNet
one): ``stage_feature_maps`` gives per stage the channel mean and the most energetic channels; ``load_feature_backbone``
finds that backbone in a saved model (a discriminator, an IQA model, DISTS / LPIPS), a train_sr.py run, or the
registry. ``asym.reporting.figures.plot_stage_features`` draws them.
"""

from __future__ import annotations

import os
import re

import torch
from torch import Tensor

from ..core.errors import UserError
from ..core.hub import saved_class
from ..core.sources import resolve_source


@torch.no_grad()
def stage_feature_maps(backbone: torch.nn.Module, image: Tensor, top_k: int = 4) -> list[dict]:
    """What each stage of a feature backbone responds to in one image (the paper's Fig. 14).

    The backbone runs in eval mode (restored afterwards), so BatchNorm uses its running statistics rather than those
    of a single image. A channel's energy is the mean of its squared activation over space: unlike the plain mean,
    it ranks strongly negative responses (ViT features, pre-activation maps) as strong too.

    Args:
        backbone: an ``asym`` backbone (``create_backbone``, ``model.backbone``): ``[x, stage1, ..., stageN]``.
        image: one image in [0, 1], (3, H, W) or (1, 3, H, W).
        top_k: how many of each stage's most energetic channels to keep (fewer where a stage has fewer channels).

    Returns:
        One dict per stage 1..N: ``stage`` (its number), ``channels``, ``size`` (h, w), ``mean`` (h, w) the channel
        mean, ``top`` the indices of the ``top_k`` channels by energy (highest first), ``energy`` their energies and
        ``maps`` (k, h, w) their activations; all float32 CPU tensors.
    """
    if top_k < 1:
        raise UserError(f"top_k must be at least 1, got {top_k}")
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"stage_feature_maps takes one image, (3, H, W) or (1, 3, H, W); got {tuple(image.shape)}")
    device = next(iter(backbone.parameters()), torch.empty(0)).device
    training = backbone.training
    backbone.eval()
    try:
        feats = backbone(image.to(device))
    finally:
        backbone.train(training)
    stages = []
    for number, feat in enumerate(feats[1:], start=1):
        maps = feat[0].detach().float().cpu()  # (C, h, w)
        energy = maps.square().mean((1, 2))
        top = torch.argsort(energy, descending=True, stable=True)[:top_k]  # ties: the lower channel index first
        stage = {"stage": number, "channels": maps.shape[0], "size": tuple(maps.shape[1:]), "mean": maps.mean(0)}
        stages.append({**stage, "top": top.tolist(), "energy": energy[top], "maps": maps[top]})
    return stages


BACKBONE_MODELS = ("Discriminator", "IQAModel", "DISTS", "LPIPS")  # saved asym classes that hold a ``.backbone``


def slug(text: str) -> str:
    """``text`` fit for a file name: runs of anything but letters, digits and ``._+-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "model"


def _weights_label(weights: str, source: str) -> str:
    """A short file-name label for ``--weights``: random / pretrained (what ``auto`` became), gan-<run>, <file>."""
    from .results import init_label

    if weights == "auto":
        return init_label(source)
    if weights in ("random", "pretrained"):
        return weights
    if weights.startswith("gan:"):
        return "gan-" + os.path.basename(os.path.normpath(weights[4:]))
    return os.path.splitext(os.path.basename(os.path.normpath(weights)))[0]


def load_feature_backbone(model: str | None = None, backbone: str | None = None, weights: str = "auto",
                          device: str | torch.device = "cpu") -> tuple[torch.nn.Module, str, str]:  # fmt: skip
    """The feature backbone to look inside (``stage_feature_maps``): that of a saved asym model, or a fresh one.

    Args:
        model: a folder or Hub id of a saved ``Discriminator``, ``IQAModel``, ``DISTS`` or ``LPIPS`` (dispatched on
            its config.json's ``asym_class``), or a train_sr.py run folder (its ``discriminator/`` is used).
        backbone: instead of ``model``: a registry name (``asym.create_backbone``) ...
        weights: ... with these weights (``auto``, ``random``, ``pretrained``, ``gan:<run>``, a file or Hub id).
        device: where the backbone is put.

    Returns:
        (the backbone in eval mode, a short name for file names, a description with its weights' provenance).

    Raises:
        UserError: neither or both of ``model`` and ``backbone``; a missing folder; a folder or Hub model that is not
            a saved asym model with a backbone; whatever loading or ``create_backbone`` refuses.
    """
    if (model is None) == (backbone is None):
        raise UserError("pass either a saved model (--model) or a backbone name (--backbone), not both or neither")
    if backbone is not None:
        from ..backbones import create_backbone

        net = create_backbone(backbone, weights)
        name = slug(f"{backbone}-{_weights_label(weights, net.weights_source)}")
        return net.to(device).eval(), name, f"{backbone} backbone, weights: {net.weights_source}"
    from ..backbones.gan import FOLDER

    folder, name = model, os.path.basename(os.path.normpath(model))
    if os.path.isdir(model):
        saved = saved_class(model)
        if saved not in BACKBONE_MODELS and os.path.isdir(os.path.join(model, FOLDER)):  # a train_sr.py run folder
            folder = os.path.join(model, FOLDER)
            saved, name = saved_class(folder), f"{name}-{FOLDER}"
        elif name == FOLDER:  # runs/x/discriminator: named after its run
            name = os.path.basename(os.path.dirname(os.path.abspath(model))) + "-" + FOLDER
    elif resolve_source(model).kind != "hub":
        raise UserError(f"--model {model} is neither a folder saved by asym nor a Hub id (owner/name)")
    else:
        saved = saved_class(model)  # its config.json, downloaded
    if saved is None:
        raise UserError(f"{folder} holds no config.json: not a model saved by asym (pass a Discriminator, IQAModel, "
                        "DISTS or LPIPS folder, a train_sr.py run folder, or --backbone NAME --weights W)")  # fmt: skip
    if saved not in BACKBONE_MODELS:
        what = f"an asym {saved}" if saved else "a model of unknown class"
        raise UserError(f"{folder} holds {what}, which has no feature backbone: pass a {', '.join(BACKBONE_MODELS)} "
                        "folder, a train_sr.py run folder (its discriminator/), or --backbone NAME --weights W (e.g. "
                        "--weights gan:<run or Hub id>)")  # fmt: skip
    from ..nets.discriminator import Discriminator
    from ..nets.iqa_model import IQAModel
    from ..nets.perceptual import DISTS, LPIPS

    cls = {"Discriminator": Discriminator, "IQAModel": IQAModel, "DISTS": DISTS, "LPIPS": LPIPS}[saved]
    net = cls.from_pretrained(folder).backbone
    description = f"{saved} {os.path.normpath(folder)}: {net.name} backbone, weights: {net.weights_source}"
    return net.to(device).eval(), slug(name), description


__all__ = [
    "BACKBONE_MODELS",
    "load_feature_backbone",
    "slug",
    "stage_feature_maps",
]
