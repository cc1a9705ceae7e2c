"""The torchvision backbones of the registry: VGG-16/19 (L2 or max pooling), AlexNet, ResNet-50, ConvNeXt-T, Swin-T,
cut after each stage, with torchvision's ImageNet weights when pretrained."""

from __future__ import annotations

import torch
from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD, Backbone, L2Pool


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


def vgg(depth: int, pretrained: bool, pooling: str = "l2") -> Backbone:
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


def alexnet(pretrained: bool) -> Backbone:
    """AlexNet cut after each of its five ReLUs, as LPIPS-AlexNet (and the published R-LPIPS weights) use it."""
    import torchvision

    model = torchvision.models.alexnet(weights="IMAGENET1K_V1" if pretrained else None)
    model.avgpool, model.classifier = nn.Identity(), nn.Identity()
    bounds = [0, 2, 5, 8, 10, 12]  # lpips's slices: conv1-relu | pool-conv2-relu | pool-conv3-relu | conv4 | conv5
    stages = [[f"features.{i}" for i in range(start, end)] for start, end in zip(bounds[:-1], bounds[1:])]
    model.features = model.features[:12]  # drop the final pool
    return TorchvisionBackbone(model, stages, [64, 192, 384, 256, 256], min_size=31, nhwc=False)


def resnet50(pretrained: bool) -> Backbone:
    import torchvision

    model = torchvision.models.resnet50(weights="IMAGENET1K_V2" if pretrained else None)
    model.fc = nn.Identity()
    stages = [["conv1", "bn1", "relu"], ["maxpool", "layer1"], ["layer2"], ["layer3"], ["layer4"]]
    return TorchvisionBackbone(model, stages, [64, 256, 512, 1024, 2048], min_size=32, nhwc=False)


def convnext(pretrained: bool) -> Backbone:
    import torchvision

    model = torchvision.models.convnext_tiny(weights="IMAGENET1K_V1" if pretrained else None)
    model.classifier = nn.Identity()
    stages = [[f"features.{i}", f"features.{i + 1}"] for i in range(0, 8, 2)]
    return TorchvisionBackbone(model, stages, [96, 192, 384, 768], min_size=32, nhwc=False)


def swin_t(pretrained: bool) -> Backbone:
    import torchvision

    model = torchvision.models.swin_t(weights="IMAGENET1K_V1" if pretrained else None)
    model.norm, model.head = nn.Identity(), nn.Identity()
    stages = [[f"features.{i}", f"features.{i + 1}"] for i in range(0, 8, 2)]
    return TorchvisionBackbone(model, stages, [96, 192, 384, 768], min_size=32, nhwc=True)


__all__ = ["TorchvisionBackbone", "alexnet", "convnext", "resnet50", "swin_t", "vgg"]
