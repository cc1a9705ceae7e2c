"""Normalised VGG feature maps (Gatys et al.'s normalised VGG-19), as the robust-loss study applies to both VGG-19s.

Each convolution's weights and bias are divided, per output channel, by that channel's mean activation after the
ReLU over a set of images and positions, so every feature map has mean 1 there; the next layer's input weights are
multiplied by the same factor. ReLU is positively homogeneous (relu(a z) = a relu(z) for a > 0) and max pooling
commutes with a positive per-channel scale, so every later layer, and a classifier's logits, are unchanged: only the
scale of the features a perceptual loss compares changes, which is what its layer weights (0.2, 0.02, 3e-7, ...)
were chosen for.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import UserError

DEAD_FRACTION = 1e-3  # a channel whose mean activation is below this fraction of its layer's median is not rescaled


def _convs_with_relus(features: nn.Sequential) -> list[tuple[nn.Conv2d, nn.Module]]:
    """(conv, the ReLU right after it) pairs of a VGG ``features`` stack, in order."""
    layers = list(features)
    pairs = []
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d):
            relu = layers[i + 1] if i + 1 < len(layers) else None
            if not isinstance(relu, nn.ReLU):
                raise ValueError(f"features[{i}] is a convolution not followed by a ReLU: not a VGG feature stack")
            pairs.append((layer, relu))
    return pairs


@torch.no_grad()
def normalise_feature_maps(
    model: nn.Module, features: nn.Sequential, images: torch.Tensor, head: nn.Linear | None = None
) -> list[torch.Tensor]:
    """Rescale ``features``' convolutions in place so each ReLU map has mean 1 over ``images``; return the means.

    Args:
        model: what ``images`` are fed to (it runs ``features`` inside, with its own input normalisation).
        features: the VGG convolution stack of ``model`` (torchvision's ``vgg.features``, possibly truncated).
        images: calibration images, as ``model`` takes them.
        head: the classifier's first linear layer, whose inputs are the last map flattened (C x positions); its
            input weights absorb the last layer's factors so the logits stay the same. Without it, the last maps
            are left normalised (a feature extractor has no later layer to compensate).

    Channels (almost) never active on ``images`` -- mean below ``DEAD_FRACTION`` of the layer's median mean -- keep
    their weights: dividing by a near-zero mean would blow their maps up on other images (random networks have many;
    pretrained VGG-19 has few). Layers are processed in order, each measured after the previous ones were rescaled
    (the means of a layer do not change when earlier layers are compensated).
    """
    pairs = _convs_with_relus(features)
    means = []
    for index, (conv, relu) in enumerate(pairs):
        captured = []
        handle = relu.register_forward_hook(lambda _m, _i, out, store=captured: store.append(out))
        try:
            model(images)
        finally:
            handle.remove()
        mean = captured[0].double().mean(dim=(0, 2, 3))
        alive = mean > DEAD_FRACTION * mean.median()
        factor = torch.where(alive & (mean > 0), mean, torch.ones_like(mean))
        conv.weight.div_(factor.to(conv.weight).view(-1, 1, 1, 1))
        if conv.bias is not None:
            conv.bias.div_(factor.to(conv.bias))
        if index + 1 < len(pairs):
            following = pairs[index + 1][0]
            following.weight.mul_(factor.to(following.weight).view(1, -1, 1, 1))
        elif head is not None:
            per_channel = head.in_features // factor.numel()
            head.weight.mul_(factor.to(head.weight).repeat_interleave(per_channel).view(1, -1))
        means.append(mean.float())
    return means


def normalise_backbone_feature_maps(backbone: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """``normalise_feature_maps`` on an asym VGG backbone (``create_backbone("vgg19")``), images in [0, 1].

    Raises:
        UserError: the backbone has no VGG ``features`` stack (the normalisation is defined for VGG only).
    """
    features = getattr(getattr(backbone, "model", None), "features", None)
    if not isinstance(features, nn.Sequential) or not any(isinstance(m, nn.Conv2d) for m in features):
        raise UserError(f"feature-map normalisation is defined for VGG backbones, not {getattr(backbone, 'name', '?')}"
                        ": pass --no_feat_normalisation or a vgg16 / vgg19 --feat_backbone")  # fmt: skip
    device = next(backbone.parameters()).device
    return normalise_feature_maps(backbone, features, images.to(device))


__all__ = ["normalise_backbone_feature_maps", "normalise_feature_maps"]
