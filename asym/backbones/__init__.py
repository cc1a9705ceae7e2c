"""Feature backbones: one registry, one output convention.

Every backbone maps images in [0, 1] (NCHW, RGB) to a list of feature maps. Stage 0 is the raw input
image itself (as in DISTS), the following stages are the network's feature maps from shallow to deep,
always NCHW. Each backbone applies its own input normalisation, knows its channel count per stage and
the smallest input it accepts.

    >>> backbone = create_backbone("vgg16", weights="random")
    >>> feats = backbone(torch.rand(2, 3, 64, 64))
    >>> [f.shape[1] for f in feats] == backbone.channels
    True

``hf:<id or folder>`` takes any transformers vision model: ViT-like ones (ViT, DINOv2, CLIP, BEiT, ...)
give hidden states as patch maps, hierarchical ones (Swin, ConvNeXt, ResNet, ...) the stage outputs of
their ``AutoBackbone`` class.

Weights: ``"auto"`` (pretrained when obtainable, otherwise random with one warning; an error in a
multi-process run, whose processes must not differ), ``"pretrained"`` (fail if not obtainable),
``"random"``, a local path / Hub id of a safetensors file (how a robust, adversarially trained
VGG-19 is plugged in), or ``"gan:<run>"``: the backbone of a GAN discriminator train_sr.py saved.
The source actually used is ``backbone.weights_source``. Mistakes in names, weights or image sizes
raise ``asym.core.errors.UserError`` (a ``ValueError``).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable

from torch import nn

from ..core.errors import UserError, summarize
from ..core.offline import no_download_notices
from ..core.sources import looks_like_path
from .base import WEIGHT_MODES, Backbone, L2Pool, check_images
from .gan import PREFIX as GAN_PREFIX
from .gan import load_gan_weights, read_gan_weights
from .torchvision_nets import alexnet, convnext, resnet50, swin_t, vgg
from .transformers_nets import TimmBackbone, clip_vit, dinov2, hf_backbone
from .weights import check_saved_backbone, load_backbone_weights


def max_pooling_kwargs(name: str, kwargs: dict | None = None) -> dict:
    """Constructor arguments that build a VGG backbone with max pooling (its classification form, used by LPIPS and
    ESRGAN-style discriminators) instead of DISTS's L2 pooling, unless ``kwargs`` already chooses a pooling."""
    kwargs = dict(kwargs or {})
    if name in ("vgg16", "vgg16-r", "vgg19"):
        kwargs.setdefault("pooling", "max")
    return kwargs


# name -> constructor(pretrained: bool, **kwargs). The keys double as the CLI's `choices=`.
BACKBONES: dict[str, Callable[..., Backbone]] = {
    "vgg16": lambda pretrained, **kw: vgg(16, pretrained, **kw),
    "vgg16-r": lambda pretrained, **kw: vgg(16, False, **kw),  # always random: the paper's VGG-16-R
    "vgg19": lambda pretrained, pooling="max", **kw: vgg(19, pretrained, pooling=pooling, **kw),
    "resnet50": resnet50,
    "alexnet": alexnet,  # LPIPS-AlexNet / R-LPIPS
    "convnext": convnext,
    "swin-t": swin_t,
    "clip-vit": clip_vit,
    "dinov2": dinov2,
}
PREFIXES = ("timm:", "hf:")


def list_backbones() -> list[str]:
    """Registered backbone names; ``timm:<name>`` and ``hf:<model id>`` are accepted too."""
    return list(BACKBONES)


def _constructor(name: str) -> Callable[..., Backbone]:
    if name in BACKBONES:
        return BACKBONES[name]
    if name.startswith("timm:") and len(name) > 5:
        import timm

        if looks_like_path(name[5:]):  # timm names have no path syntax: a folder or file is hf:'s, never guessed
            raise UserError(f"timm:{name[5:]} looks like a path, not a timm model name (timm.list_models()): pass a "
                            "local transformers folder or Hub id as hf:<folder or id>")  # fmt: skip

        if not timm.is_model(name[5:]):
            similar = timm.list_models(f"*{name[5:].split('.')[0][:6]}*")[:8]
            hint = f"; similar: {', '.join(similar)}" if similar else "; see timm.list_models()"
            raise UserError(f"unknown timm model {name[5:]!r}{hint}")
        return lambda pretrained, **kw: TimmBackbone(name[5:], pretrained, **kw)
    if name.startswith("hf:") and len(name) > 3:
        return lambda pretrained, **kw: hf_backbone(name[3:], pretrained, **kw)
    raise UserError(
        f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}, or timm:<timm model name>, hf:<model id>"
    )


def create_backbone(name: str, weights: str = "auto", **kwargs) -> Backbone:
    """Build a registered feature backbone.

    Args:
        name: a key of ``BACKBONES``, ``timm:<name>`` or ``hf:<model id or folder>``.
        weights: ``"auto"``, ``"pretrained"``, ``"random"``, a safetensors (or ``weights_only`` torch) file / folder /
            Hub id, e.g. a train_robust.py output folder (its classifier head is dropped; a folder saved on another
            backbone is a ``UserError`` naming both) or a robustness-library checkpoint (``module.model.*`` kept), or
            ``"gan:<run folder, discriminator folder or Hub id>"``: the backbone of a discriminator saved by
            train_sr.py (head dropped; see ``asym.backbones.gan``, also for the pooling a VGG gets).
            ``"auto"`` falls back to random weights with one warning when the pretrained ones cannot be obtained,
            except in a multi-process run (``WORLD_SIZE`` > 1), where that is a ``UserError``: a process that fell
            back would silently train with other weights than the rest.
        **kwargs: passed to the constructor (e.g. ``pooling="max"`` for VGG, ``layers=[...]`` for ``hf:``).

    Returns:
        A module whose forward maps (B, 3, H, W) images in [0, 1] to ``[x, f1, ..., fN]``, with
        ``channels``, ``min_size``, ``name`` and ``weights_source`` attributes.

    Raises:
        UserError: unknown name, pretrained weights that cannot be obtained (``"pretrained"``, or ``"auto"`` in a
            multi-process run), a weights file that is missing, unreadable or does not fit.
    """
    build = _constructor(name)
    if weights in ("auto", "pretrained") and name != "vgg16-r":
        try:  # no network: one line, then huggingface_hub fails at once instead of retrying, without torch.hub's notice
            with no_download_notices():
                backbone, source = build(True, **kwargs), "pretrained"
        except UserError:
            raise  # already a clear message (e.g. an hf: model transformers cannot cut into stages)
        except Exception as err:  # noqa: BLE001 - any download/cache failure means "not obtainable"
            if weights == "pretrained":
                raise UserError(
                    f"pretrained weights for backbone {name!r} could not be obtained ({summarize(err)}); "
                    "check the network / HF cache, or pass weights='random'"
                ) from err
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise UserError(
                    f"pretrained weights for backbone {name!r} could not be obtained ({summarize(err)}) in this "
                    "multi-process run, and every process must use the same weights: make them available (network "
                    "/ HF cache) or pass weights='random' (--weights random) explicitly"
                ) from err
            warnings.warn(
                f"pretrained weights for backbone {name!r} are unavailable ({type(err).__name__}); "
                "falling back to RANDOM weights",
                stacklevel=_user_stacklevel(),
            )
            backbone, source = build(False, **kwargs), "random (pretrained unavailable)"
    elif weights in WEIGHT_MODES:
        backbone, source = build(False, **kwargs), "random"
    elif weights.startswith(GAN_PREFIX):
        gan = read_gan_weights(weights[len(GAN_PREFIX) :], name)
        backbone = build(False, **kwargs)
        load_gan_weights(backbone, gan)
        pooling = None if not name.startswith("vgg") else "L2" if _has_l2_pooling(backbone) else "max"
        source = gan.describe(pooling)
    else:
        check_saved_backbone(weights, name)  # before building: a mismatch costs nothing
        backbone = build(False, **kwargs)
        load_backbone_weights(backbone, weights)
        source = weights
    backbone.name, backbone.weights_source = name, source
    return backbone


def _has_l2_pooling(backbone: nn.Module) -> bool:
    return any(isinstance(module, L2Pool) for module in backbone.modules())


def _user_stacklevel() -> int:
    """``stacklevel`` that makes a warning point at the first caller outside the asym package."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # asym/, not asym/backbones/
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


__all__ = [
    "BACKBONES",
    "Backbone",
    "check_images",
    "create_backbone",
    "list_backbones",
    "load_backbone_weights",
    "max_pooling_kwargs",
]
