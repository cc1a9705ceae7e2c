"""asym: perceptual optimisation and image quality assessment toolkit."""

from .backbones import BACKBONES, create_backbone, list_backbones
from .metrics import create_metric, list_metrics, metric_info
from .nets.discriminator import Discriminator
from .nets.feature_losses import FeatureLoss, FeatureTextureLoss, GramTextureLoss
from .nets.iqa_model import IQAModel
from .nets.perceptual import DISTS, LPIPS
from .robust.classifier import Classifier
from .saved_models import from_pretrained
from .sr.data import SRPairDataset, load_sr_images
from .sr.models import SRModel

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
    "create_metric",
    "from_pretrained",
    "list_metrics",
    "metric_info",
    "list_backbones",
]
