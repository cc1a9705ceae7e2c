"""Backbones of timm (``timm:<name>``) and transformers (``hf:<id or folder>``, ``clip-vit``, ``dinov2``): ViT-like
models give hidden states as patch maps, hierarchical ones the stage outputs of their ``AutoBackbone`` class."""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import UserError, summarize
from .base import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, Backbone


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


# What a whole CLIP checkpoint holds besides the vision tower: expected when reading the tower alone, never reported
CLIP_OTHER_TOWER = (r"^text_model\.", r"^text_projection\.", r"^visual_projection\.", r"^logit_scale$")


def clip_vit(pretrained: bool, model_id: str = "openai/clip-vit-base-patch16") -> Backbone:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if pretrained:  # the vision tower out of the whole CLIP checkpoint: a missing vision key is still an error
        model = _checked_from_pretrained(CLIPVisionModel, model_id, expected_unexpected=CLIP_OTHER_TOWER)
    else:  # ViT-B/16 architecture, built locally so random weights need no download
        model = CLIPVisionModel(CLIPVisionConfig(patch_size=16))
    return TransformersBackbone(model, mean=CLIP_MEAN, std=CLIP_STD)


def dinov2(pretrained: bool, model_id: str = "facebook/dinov2-base") -> Backbone:
    from transformers import Dinov2Config, Dinov2Model

    # ViT-B/14; float32 whatever dtype the checkpoint is stored in (transformers would keep it)
    model = Dinov2Model.from_pretrained(model_id, dtype=torch.float32) if pretrained else Dinov2Model(Dinov2Config())
    return TransformersBackbone(model)


def hf_backbone(model_id: str, pretrained: bool, layers: list[int] | None = None) -> Backbone:
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


def _checked_from_pretrained(model_class, model_id: str, expected_unexpected: tuple[str, ...] = (),
                             **kwargs) -> nn.Module:  # fmt: skip
    """``model_class.from_pretrained`` in float32 (transformers would keep a checkpoint's half dtype).

    transformers initialises weights missing from the checkpoint at random and only logs it: here that is a
    ``UserError``, except for a backbone class's per-stage output norms and a ViT's pooler (absent from many
    checkpoints; the norms start as plain LayerNorms, the pooler is unused). With ``expected_unexpected`` (regular
    expressions of checkpoint keys the model leaves out on purpose, e.g. CLIP's text tower), transformers' load
    report is not printed: what it would say is checked here, and any other unexpected key is one warning.
    """
    import re
    import warnings

    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    if expected_unexpected:
        transformers_logging.set_verbosity_error()
    try:
        model, info = model_class.from_pretrained(model_id, dtype=torch.float32, output_loading_info=True, **kwargs)
    finally:
        transformers_logging.set_verbosity(verbosity)
    missing = sorted(k for k in info["missing_keys"] if not k.startswith(("hidden_states_norms.", "pooler.")))
    if missing:
        raise UserError(
            f"weights of backbone hf:{model_id} do not fit its {type(model).__name__}: {len(missing)} missing keys, "
            f"e.g. {', '.join(missing[:4])}"
        )
    other = sorted(k for k in info["unexpected_keys"] if not any(re.search(p, k) for p in expected_unexpected))
    if expected_unexpected and other:
        warnings.warn(f"weights of backbone {model_id}: {len(other)} unused keys, e.g. {', '.join(other[:4])}",
                      stacklevel=2)  # fmt: skip
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


__all__ = ["TimmBackbone", "TransformersBackbone", "TransformersStagesBackbone", "clip_vit", "dinov2", "hf_backbone"]
