"""asym: perceptual optimisation and image quality assessment toolkit."""

from .backbones import BACKBONES, create_backbone, list_backbones
from .models import SRModel
from .perceptual import DISTS, LPIPS, FeatureLoss, GramTextureLoss

__version__ = "0.1.0"
__all__ = [
    "BACKBONES",
    "DISTS",
    "LPIPS",
    "FeatureLoss",
    "GramTextureLoss",
    "SRModel",
    "create_backbone",
    "list_backbones",
]
