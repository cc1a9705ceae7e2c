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
raise ``asym.errors.UserError`` (a ``ValueError``).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError, summarize
from .gan_weights import PREFIX as GAN_PREFIX
from .gan_weights import load_gan_weights, read_gan_weights
from .hub import CLASS_KEY, CONFIG_NAME, WEIGHTS_NAME, read_config, read_tensor_file
from .offline import hub_reachable

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

WEIGHT_MODES = ("auto", "pretrained", "random")


def check_images(x: torch.Tensor, min_size: int = 1, name: str = "input") -> None:
    """Raise a clear ``ValueError`` unless ``x`` is a (B, 3, H, W) batch at least ``min_size`` pixels high and wide.

    A wrong shape is a caller's bug (``ValueError``); images that are too small are the user's data or settings
    (``UserError``, e.g. a crop size below the backbone's minimum), so a script reports them in one line.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, 3, H, W) image tensor, got {shape}")
    if x.shape[1] != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels, got {x.shape[1]} in shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if min(height, width) < min_size:
        raise UserError(f"{name} of {height}x{width} is too small: this backbone needs at least {min_size}x{min_size}")


class L2Pool(nn.Module):
    """DISTS's L2 pooling: sqrt of a 3x3 Hanning-weighted blur of x^2, stride 2 (replaces max-pooling)."""

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor(np.hanning(5)[1:-1], dtype=torch.float32)  # [0.5, 1, 0.5]
        kernel = taps[:, None] * taps[None, :]
        kernel = kernel / kernel.sum()
        # Not persistent: the filter is a constant, so checkpoints keep torchvision's key layout.
        self.register_buffer("filter", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x.square(), self.filter, stride=2, padding=1, groups=x.shape[1])
        return out.add_(1e-12).sqrt_()  # in place: the conv output is not needed for its backward


class Backbone(nn.Module):
    """Base class: normalise the input, run ``stages`` and return ``[x, stage1, ..., stageN]``.

    Subclasses set ``self.model`` (the wrapped network, whose state-dict layout is that of its library)
    and implement ``extract`` (normalised input -> list of NCHW maps).
    """

    channels: list[int]
    min_size: int
    name: str = ""
    weights_source: str = ""

    def __init__(self, mean, std, channels: list[int], min_size: int, channels_last: bool = False):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.channels = [3, *channels]
        self.min_size = min_size
        # oneDNN and cuDNN run convolutions faster in NHWC (~1.2x for VGG-16 on CPU): conv nets stay channels-last.
        self.channels_last = channels_last

    def extract(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_images(x, self.min_size)
        h = (x - self.mean) / self.std
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        return [x, *self.extract(h)]


class TorchvisionBackbone(Backbone):
    """A torchvision classifier cut into stages; each stage is a list of dotted sub-module names run in order."""

    def __init__(self, model: nn.Module, stages: list[list[str]], channels: list[int], min_size: int, nhwc: bool):
        super().__init__(IMAGENET_MEAN, IMAGENET_STD, channels, min_size, channels_last=not nhwc)
        self.model = model
        self.stages = stages
        self.nhwc = nhwc  # torchvision's Swin keeps (B, H, W, C) activations
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def extract(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            for name in stage:
                x = self.model.get_submodule(name)(x)
            feats.append(x.permute(0, 3, 1, 2) if self.nhwc else x)
        return feats


def _vgg(depth: int, pretrained: bool, pooling: str = "l2") -> Backbone:
    """VGG-16/19 cut after the last ReLU of each of its five blocks; ``pooling="l2"`` is DISTS's variant."""
    import torchvision

    if pooling not in ("l2", "max"):
        raise ValueError(f"pooling must be 'l2' or 'max', got {pooling!r}")
    if pretrained:
        model = getattr(torchvision.models, f"vgg{depth}")(weights="IMAGENET1K_V1")
        model.avgpool, model.classifier = nn.Identity(), nn.Identity()
    else:  # conv layers only: skips initialising the 120M-parameter classifier that is thrown away anyway
        from torchvision.models.vgg import cfgs, make_layers

        model = nn.Module()
        model.features = make_layers(cfgs["D" if depth == 16 else "E"])
        for conv in model.features:
            if isinstance(conv, nn.Conv2d):  # torchvision's VGG initialisation
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(conv.bias)
    pools = [i for i, layer in enumerate(model.features) if isinstance(layer, nn.MaxPool2d)]
    channels = [model.features[p - 2].out_channels for p in pools]
    if pooling == "l2":
        for p, c in zip(pools[:-1], channels[:-1]):
            model.features[p] = L2Pool(c)
    model.features = model.features[: pools[-1]]  # drop the final pool: stage 5 ends at relu5_x
    bounds = [0, *pools[:-1], pools[-1]]
    stages = [[f"features.{i}" for i in range(start, end)] for start, end in zip(bounds[:-1], bounds[1:])]
    return TorchvisionBackbone(model, stages, channels, min_size=16, nhwc=False)


def _alexnet(pretrained: bool) -> Backbone:
    """AlexNet cut after each of its five ReLUs, as LPIPS-AlexNet (and the published R-LPIPS weights) use it."""
    import torchvision

    model = torchvision.models.alexnet(weights="IMAGENET1K_V1" if pretrained else None)
    model.avgpool, model.classifier = nn.Identity(), nn.Identity()
    bounds = [0, 2, 5, 8, 10, 12]  # lpips's slices: conv1-relu | pool-conv2-relu | pool-conv3-relu | conv4 | conv5
    stages = [[f"features.{i}" for i in range(start, end)] for start, end in zip(bounds[:-1], bounds[1:])]
    model.features = model.features[:12]  # drop the final pool
    return TorchvisionBackbone(model, stages, [64, 192, 384, 256, 256], min_size=31, nhwc=False)


def _resnet50(pretrained: bool) -> Backbone:
    import torchvision

    model = torchvision.models.resnet50(weights="IMAGENET1K_V2" if pretrained else None)
    model.fc = nn.Identity()
    stages = [["conv1", "bn1", "relu"], ["maxpool", "layer1"], ["layer2"], ["layer3"], ["layer4"]]
    return TorchvisionBackbone(model, stages, [64, 256, 512, 1024, 2048], min_size=32, nhwc=False)


def _convnext(pretrained: bool) -> Backbone:
    import torchvision

    model = torchvision.models.convnext_tiny(weights="IMAGENET1K_V1" if pretrained else None)
    model.classifier = nn.Identity()
    stages = [[f"features.{i}", f"features.{i + 1}"] for i in range(0, 8, 2)]
    return TorchvisionBackbone(model, stages, [96, 192, 384, 768], min_size=32, nhwc=False)


def _swin_t(pretrained: bool) -> Backbone:
    import torchvision

    model = torchvision.models.swin_t(weights="IMAGENET1K_V1" if pretrained else None)
    model.norm, model.head = nn.Identity(), nn.Identity()
    stages = [[f"features.{i}", f"features.{i + 1}"] for i in range(0, 8, 2)]
    return TorchvisionBackbone(model, stages, [96, 192, 384, 768], min_size=32, nhwc=True)


class TimmBackbone(Backbone):
    """Any timm model through ``features_only=True`` (every feature level it reports is a stage)."""

    def __init__(self, model_name: str, pretrained: bool, **kwargs):
        import timm

        model = timm.create_model(model_name, pretrained=pretrained, features_only=True, **kwargs)
        cfg = model.pretrained_cfg
        super().__init__(
            cfg.get("mean", IMAGENET_MEAN),
            cfg.get("std", IMAGENET_STD),
            list(model.feature_info.channels()),
            min_size=max(model.feature_info.reduction()),
        )
        self.model = model

    def extract(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.model(x)
        # Some timm families (Swin, ...) report channels-last maps: bring them to NCHW.
        return [f if f.shape[1] == c else f.permute(0, 3, 1, 2) for f, c in zip(feats, self.channels[1:])]


class TransformersBackbone(Backbone):
    """A ViT-like transformers model: chosen hidden states become stages, their patch tokens reshaped to maps.

    Args:
        model: a transformers ``PreTrainedModel`` taking ``pixel_values``, whose config has ``patch_size``.
        layers: indices into ``hidden_states`` (0 = embeddings); default: four evenly spaced layers.
        mean, std: input normalisation.
    """

    def __init__(self, model: nn.Module, layers: list[int] | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        config = model.config
        num_layers = getattr(config, "num_hidden_layers", None) or 4
        if layers is None:
            layers = sorted({round(num_layers * k / 4) for k in range(1, 5)} - {0})
        self.patch_size = config.patch_size
        super().__init__(mean, std, [config.hidden_size] * len(layers), min_size=self.patch_size)
        self.model = model
        self.layers = list(layers)
        self.interpolate = "interpolate_pos_encoding" in _forward_params(model)

    def extract(self, x: torch.Tensor) -> list[torch.Tensor]:
        kwargs = {"interpolate_pos_encoding": True} if self.interpolate else {}
        hidden = self.model(pixel_values=x, output_hidden_states=True, **kwargs).hidden_states
        feats = []
        for i in self.layers:
            h = hidden[i]
            if h.dim() == 3:  # (B, tokens, C): keep the trailing patch tokens (drop CLS/registers), make a map
                rows, cols = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
                h = h[:, -rows * cols :].transpose(1, 2).reshape(h.shape[0], h.shape[2], rows, cols)
            feats.append(h)
        return feats


class TransformersStagesBackbone(Backbone):
    """A hierarchical transformers model (Swin, ConvNeXt, ResNet, ...) built as its ``AutoBackbone`` class.

    Its NCHW ``feature_maps``, one per ``out_indices`` stage, are the stages. ``min_size`` is the largest stride among
    them (measured once on a blank image of the model's native size), so that the deepest map is at least 1x1.
    """

    def __init__(self, model: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__(mean, std, list(model.channels), min_size=max(_stage_strides(model)))
        self.model = model
        self.layers = list(model.out_indices)

    def extract(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(pixel_values=x).feature_maps)


def _stage_strides(model: nn.Module) -> list[int]:
    """Input pixels per feature-map pixel of each stage of a transformers backbone, from one no-grad forward pass."""
    size = getattr(model.config, "image_size", None)
    size = size if isinstance(size, int) else 224
    training = model.training
    model.eval()  # no BatchNorm statistics updated by the probe
    try:
        with torch.no_grad():
            maps = model(pixel_values=torch.zeros(1, 3, size, size)).feature_maps
    finally:
        model.train(training)
    return [round(size / f.shape[-1]) for f in maps]


def _forward_params(model: nn.Module) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


def _clip_vit(pretrained: bool, model_id: str = "openai/clip-vit-base-patch16") -> Backbone:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if pretrained:
        model = CLIPVisionModel.from_pretrained(model_id, dtype=torch.float32)
    else:  # ViT-B/16 architecture, built locally so random weights need no download
        model = CLIPVisionModel(CLIPVisionConfig(patch_size=16))
    return TransformersBackbone(model, mean=CLIP_MEAN, std=CLIP_STD)


def _dinov2(pretrained: bool, model_id: str = "facebook/dinov2-base") -> Backbone:
    from transformers import Dinov2Config, Dinov2Model

    # ViT-B/14; float32 whatever dtype the checkpoint is stored in (transformers would keep it)
    model = Dinov2Model.from_pretrained(model_id, dtype=torch.float32) if pretrained else Dinov2Model(Dinov2Config())
    return TransformersBackbone(model)


def _hf(model_id: str, pretrained: bool, layers: list[int] | None = None) -> Backbone:
    """Any transformers vision model by Hub id or local folder; normalisation from its image processor.

    Hierarchical models (a config with ``depths`` or ``hidden_sizes``: Swin, ConvNeXt, ResNet, FocalNet, ...) are
    built through their ``AutoBackbone`` class, whose stage outputs are already NCHW maps; ``layers`` are its
    ``out_indices`` (1 = first stage; default: every stage). ViT-like models (ViT, DINOv2, BEiT, ...) are built with
    ``AutoModel`` and give patch maps of hidden states; ``layers`` index ``hidden_states`` (0 = embeddings).
    """
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(model_id)
    except (OSError, ValueError, KeyError) as err:
        raise UserError(
            f"backbone hf:{model_id}: its config cannot be obtained ({summarize(err)}); "
            "check the model id or folder, and the network / HF cache"
        ) from err
    mean, std = _image_processor_stats(model_id)
    if getattr(config, "depths", None) or getattr(config, "hidden_sizes", None):
        return TransformersStagesBackbone(_hf_stages_model(model_id, config, pretrained, layers), mean, std)
    if not isinstance(getattr(config, "patch_size", None), int) or not getattr(config, "hidden_size", None):
        raise UserError(
            f"backbone hf:{model_id} ({config.model_type}) is neither a ViT-like vision model (patch_size, "
            "hidden_size) nor a hierarchical one (depths): try timm:<name> for this architecture"
        )
    _check_layers(model_id, layers, range(0, (getattr(config, "num_hidden_layers", None) or 4) + 1))
    model = _checked_from_pretrained(AutoModel, model_id) if pretrained else AutoModel.from_config(config)
    return TransformersBackbone(model, layers=layers, mean=mean, std=std)


def _hf_stages_model(model_id: str, config, pretrained: bool, layers: list[int] | None) -> nn.Module:
    """The ``AutoBackbone`` class of a hierarchical config, returning stages ``layers`` (default: all of them)."""
    import copy

    from transformers.models.auto.modeling_auto import MODEL_FOR_BACKBONE_MAPPING, MODEL_FOR_BACKBONE_MAPPING_NAMES

    if config.model_type not in MODEL_FOR_BACKBONE_MAPPING_NAMES:
        raise UserError(
            f"backbone hf:{model_id} is a hierarchical {config.model_type} model, and transformers has no backbone "
            "class that returns its stages: use timm:<name> for this architecture instead"
        )
    depths = getattr(config, "depths", None) or config.hidden_sizes
    num_stages = len(getattr(config, "stage_names", None) or [None, *depths]) - 1  # stage_names[0] is the stem
    layers = list(layers) if layers is not None else list(range(1, num_stages + 1))
    _check_layers(model_id, layers, range(1, num_stages + 1))
    # AutoBackbone's own class lookup, minus its from_pretrained's Hub query (which rejects local folders and, for
    # an id missing from the Hub, builds a timm model instead).
    backbone_class = MODEL_FOR_BACKBONE_MAPPING[type(config)]
    if pretrained:
        return _checked_from_pretrained(backbone_class, model_id, out_indices=layers)
    config = copy.deepcopy(config)
    config.out_indices = layers
    return backbone_class(config)


def _checked_from_pretrained(model_class, model_id: str, **kwargs) -> nn.Module:
    """``model_class.from_pretrained`` in float32 (transformers would keep a checkpoint's half dtype).

    transformers initialises weights missing from the checkpoint at random and only logs it: here that is a
    ``UserError``, except for a backbone class's per-stage output norms and a ViT's pooler (absent from many
    checkpoints; the norms start as plain LayerNorms, the pooler is unused).
    """
    model, info = model_class.from_pretrained(model_id, dtype=torch.float32, output_loading_info=True, **kwargs)
    missing = sorted(k for k in info["missing_keys"] if not k.startswith(("hidden_states_norms.", "pooler.")))
    if missing:
        raise UserError(
            f"weights of backbone hf:{model_id} do not fit its {type(model).__name__}: {len(missing)} missing keys, "
            f"e.g. {', '.join(missing[:4])}"
        )
    return model


def _check_layers(model_id: str, layers: list[int] | None, valid: range) -> None:
    if layers is not None and (not layers or any(i not in valid for i in layers)):
        raise UserError(f"layers={layers} for backbone hf:{model_id}: choose among {valid.start}..{valid.stop - 1}")


def _image_processor_stats(model_id: str) -> tuple[tuple, tuple]:
    """Normalisation mean and std of the model's image processor; ImageNet's when it has none."""
    try:
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(model_id)
        return tuple(processor.image_mean), tuple(processor.image_std)
    except (OSError, ValueError, AttributeError, TypeError):
        return IMAGENET_MEAN, IMAGENET_STD  # no (usable) preprocessor config


def max_pooling_kwargs(name: str, kwargs: dict | None = None) -> dict:
    """Constructor arguments that build a VGG backbone with max pooling (its classification form, used by LPIPS and
    ESRGAN-style discriminators) instead of DISTS's L2 pooling, unless ``kwargs`` already chooses a pooling."""
    kwargs = dict(kwargs or {})
    if name in ("vgg16", "vgg16-r", "vgg19"):
        kwargs.setdefault("pooling", "max")
    return kwargs


# name -> constructor(pretrained: bool, **kwargs). The keys double as the CLI's `choices=`.
BACKBONES: dict[str, Callable[..., Backbone]] = {
    "vgg16": lambda pretrained, **kw: _vgg(16, pretrained, **kw),
    "vgg16-r": lambda pretrained, **kw: _vgg(16, False, **kw),  # always random: the paper's VGG-16-R
    "vgg19": lambda pretrained, pooling="max", **kw: _vgg(19, pretrained, pooling=pooling, **kw),
    "resnet50": _resnet50,
    "alexnet": _alexnet,  # LPIPS-AlexNet / R-LPIPS
    "convnext": _convnext,
    "swin-t": _swin_t,
    "clip-vit": _clip_vit,
    "dinov2": _dinov2,
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

        if not timm.is_model(name[5:]):
            similar = timm.list_models(f"*{name[5:].split('.')[0][:6]}*")[:8]
            hint = f"; similar: {', '.join(similar)}" if similar else "; see timm.list_models()"
            raise UserError(f"unknown timm model {name[5:]!r}{hint}")
        return lambda pretrained, **kw: TimmBackbone(name[5:], pretrained, **kw)
    if name.startswith("hf:") and len(name) > 3:
        return lambda pretrained, **kw: _hf(name[3:], pretrained, **kw)
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
            train_sr.py (head dropped; see ``asym.gan_weights``, also for the pooling a VGG gets).
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
        hub_reachable()  # no network: one line, then huggingface_hub fails at once instead of retrying
        try:
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
        _check_saved_backbone(weights, name)  # before building: a mismatch costs nothing
        backbone = build(False, **kwargs)
        load_backbone_weights(backbone, weights)
        source = weights
    backbone.name, backbone.weights_source = name, source
    return backbone


def _has_l2_pooling(backbone: nn.Module) -> bool:
    return any(isinstance(module, L2Pool) for module in backbone.modules())


def _user_stacklevel() -> int:
    """``stacklevel`` that makes a warning point at the first caller outside the asym package."""
    package, frame, level = os.path.dirname(os.path.abspath(__file__)), sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


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
        if path.count("/") != 1 or path.startswith((".", "/")) or os.path.splitext(path)[1]:
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


def _check_saved_backbone(source: str, name: str) -> None:
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


__all__ = ["BACKBONES", "Backbone", "check_images", "create_backbone", "list_backbones", "load_backbone_weights"]
