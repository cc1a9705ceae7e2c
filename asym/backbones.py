"""Feature backbones: one registry, one output convention.

Every backbone maps images in [0, 1] (NCHW, RGB) to a list of feature maps. Stage 0 is the raw input
image itself (as in DISTS), the following stages are the network's feature maps from shallow to deep,
always NCHW. Each backbone applies its own input normalisation, knows its channel count per stage and
the smallest input it accepts.

    >>> backbone = create_backbone("vgg16", weights="random")
    >>> feats = backbone(torch.rand(2, 3, 64, 64))
    >>> [f.shape[1] for f in feats] == backbone.channels
    True

Weights: ``"auto"`` (pretrained when obtainable, otherwise random with one warning), ``"pretrained"``
(fail if not obtainable), ``"random"``, or a local path / Hub id of a safetensors file (how a robust,
adversarially trained VGG-19 is plugged in). The source actually used is ``backbone.weights_source``.
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

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

WEIGHT_MODES = ("auto", "pretrained", "random")


def check_images(x: torch.Tensor, min_size: int = 1, name: str = "input") -> None:
    """Raise a clear ``ValueError`` unless ``x`` is a (B, 3, H, W) batch at least ``min_size`` pixels high and wide."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, 3, H, W) image tensor, got {shape}")
    if x.shape[1] != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels, got {x.shape[1]} in shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if min(height, width) < min_size:
        raise ValueError(f"{name} of {height}x{width} is too small: this backbone needs at least {min_size}x{min_size}")


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
    """A transformers vision model; chosen hidden states become stages, ViT patch tokens reshaped to maps.

    Args:
        model: a transformers ``PreTrainedModel`` taking ``pixel_values``.
        layers: indices into ``hidden_states`` (0 = embeddings); default: four evenly spaced layers.
        mean, std: input normalisation.
    """

    def __init__(self, model: nn.Module, layers: list[int] | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        config = model.config
        num_layers = getattr(config, "num_hidden_layers", None) or len(getattr(config, "depths", [])) or 4
        if layers is None:
            layers = sorted({round(num_layers * k / 4) for k in range(1, 5)} - {0})
        hidden = getattr(config, "hidden_sizes", None)  # conv-style models: one width per stage
        channels = [hidden[i - 1] if hidden else config.hidden_size for i in layers]
        self.patch_size = getattr(config, "patch_size", None)
        min_size = self.patch_size or 32
        super().__init__(mean, std, channels, min_size=min_size)
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


def _forward_params(model: nn.Module) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


def _clip_vit(pretrained: bool, model_id: str = "openai/clip-vit-base-patch16") -> Backbone:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if pretrained:
        model = CLIPVisionModel.from_pretrained(model_id)
    else:  # ViT-B/16 architecture, built locally so random weights need no download
        model = CLIPVisionModel(CLIPVisionConfig(patch_size=16))
    return TransformersBackbone(model, mean=CLIP_MEAN, std=CLIP_STD)


def _dinov2(pretrained: bool, model_id: str = "facebook/dinov2-base") -> Backbone:
    from transformers import Dinov2Config, Dinov2Model

    model = Dinov2Model.from_pretrained(model_id) if pretrained else Dinov2Model(Dinov2Config())  # ViT-B/14
    return TransformersBackbone(model)


def _hf(model_id: str, pretrained: bool, layers: list[int] | None = None) -> Backbone:
    """Any transformers vision model by Hub id or local folder; normalisation from its image processor."""
    from transformers import AutoConfig, AutoModel

    model = (
        AutoModel.from_pretrained(model_id)
        if pretrained
        else AutoModel.from_config(AutoConfig.from_pretrained(model_id))
    )
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    try:
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(model_id)
        mean, std = processor.image_mean, processor.image_std
    except (OSError, ValueError, AttributeError):
        pass  # no preprocessor config: ImageNet statistics
    return TransformersBackbone(model, layers=layers, mean=mean, std=std)


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
        return lambda pretrained, **kw: TimmBackbone(name[5:], pretrained, **kw)
    if name.startswith("hf:") and len(name) > 3:
        return lambda pretrained, **kw: _hf(name[3:], pretrained, **kw)
    raise ValueError(
        f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}, or timm:<timm model name>, hf:<model id>"
    )


def create_backbone(name: str, weights: str = "auto", **kwargs) -> Backbone:
    """Build a registered feature backbone.

    Args:
        name: a key of ``BACKBONES``, ``timm:<name>`` or ``hf:<model id or folder>``.
        weights: ``"auto"``, ``"pretrained"``, ``"random"``, or a safetensors file / folder / Hub id.
        **kwargs: passed to the constructor (e.g. ``pooling="max"`` for VGG, ``layers=[...]`` for ``hf:``).

    Returns:
        A module whose forward maps (B, 3, H, W) images in [0, 1] to ``[x, f1, ..., fN]``, with
        ``channels``, ``min_size``, ``name`` and ``weights_source`` attributes.
    """
    build = _constructor(name)
    if weights in ("auto", "pretrained") and name != "vgg16-r":
        try:
            backbone, source = build(True, **kwargs), "pretrained"
        except Exception as err:  # noqa: BLE001 - any download/cache failure means "not obtainable"
            if weights == "pretrained":
                raise RuntimeError(
                    f"pretrained weights for backbone {name!r} could not be obtained ({type(err).__name__}: {err}); "
                    "check the network / Hub cache, or pass weights='random'"
                ) from err
            warnings.warn(
                f"pretrained weights for backbone {name!r} are unavailable ({type(err).__name__}); "
                "falling back to RANDOM weights",
                stacklevel=_user_stacklevel(),
            )
            backbone, source = build(False, **kwargs), "random (pretrained unavailable)"
    elif weights in WEIGHT_MODES:
        backbone, source = build(False, **kwargs), "random"
    else:
        backbone = build(False, **kwargs)
        load_backbone_weights(backbone, weights)
        source = weights
    backbone.name, backbone.weights_source = name, source
    return backbone


def _user_stacklevel() -> int:
    """``stacklevel`` that makes a warning point at the first caller outside the asym package."""
    package, frame, level = os.path.dirname(os.path.abspath(__file__)), sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _read_state_dict(source: str) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors (or ``weights_only`` torch) file, a folder holding one, or a Hub repo id."""
    from safetensors.torch import load_file

    path = source
    if os.path.isdir(path):
        candidates = [f for f in sorted(os.listdir(path)) if f.endswith((".safetensors", ".pt", ".pth", ".bin"))]
        if not candidates:
            raise ValueError(f"backbone weights folder {source!r} holds no .safetensors/.pt file")
        path = os.path.join(path, candidates[0])
    elif not os.path.isfile(path):
        if path.count("/") != 1 or path.startswith((".", "/")) or os.path.splitext(path)[1]:
            raise ValueError(
                f"backbone weights {source!r} not found: pass 'auto', 'pretrained', 'random', "
                "a .safetensors file or folder, or a Hub repo id (owner/name)"
            )
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(source, "model.safetensors")
    if path.endswith(".safetensors"):
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "params"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def load_backbone_weights(backbone: Backbone, source: str) -> None:
    """Load a checkpoint into ``backbone.model``; wrapper prefixes (``module.``, ``model.``, ...) are stripped.

    Raises ``ValueError`` naming the missing keys when the file does not fit the architecture.
    """
    state = _read_state_dict(source)
    expected = set(backbone.model.state_dict())
    for _ in range(4):  # strip e.g. "module.attacker.model." one prefix at a time until keys fit
        if expected & set(state):
            break
        prefixes = {k.split(".", 1)[0] for k in state if "." in k}
        if len(prefixes) != 1:
            break
        state = {k.split(".", 1)[1]: v for k, v in state.items() if "." in k}
    missing = sorted(expected - set(state))
    if missing:
        raise ValueError(
            f"weights {source!r} do not fit backbone {type(backbone).__name__}: {len(missing)} missing keys, "
            f"e.g. {', '.join(missing[:4])}"
        )
    try:
        backbone.model.load_state_dict({k: v for k, v in state.items() if k in expected})
    except RuntimeError as err:
        raise ValueError(f"weights {source!r} do not fit the backbone: {str(err).splitlines()[-1].strip()}") from err


__all__ = ["BACKBONES", "Backbone", "check_images", "create_backbone", "list_backbones", "load_backbone_weights"]
