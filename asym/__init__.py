"""asym: perceptual optimisation and image quality assessment toolkit."""

from .adversarial import Discriminator
from .backbones import BACKBONES, create_backbone, list_backbones
from .data import SRPairDataset, load_sr_images
from .iqa_model import IQAModel
from .models import SRModel
from .perceptual import DISTS, LPIPS, FeatureLoss, FeatureTextureLoss, GramTextureLoss
from .robust import Classifier

__version__ = "0.1.0"
__all__ = [
    "BACKBONES",
    "Classifier",
    "DISTS",
    "LPIPS",
    "Discriminator",
    "IQAModel",
    "SRPairDataset",
    "load_sr_images",
    "FeatureLoss",
    "FeatureTextureLoss",
    "GramTextureLoss",
    "SRModel",
    "create_backbone",
    "list_backbones",
]
