"""``from_pretrained(source)``: whatever asym model a folder or Hub repo holds, as its config.json names it.

Each training script saves one class (``asym.core.training.RUN_SCRIPTS``): ``SRModel`` (train_sr.py), ``DISTS`` /
``LPIPS`` (train_metric.py), ``IQAModel`` (train_iqa.py), ``Classifier`` (train_robust.py), and train_sr.py's
``Discriminator`` in its run's ``discriminator/`` folder. The class is read once, by ``asym.core.hub.saved_class``.
"""

from __future__ import annotations

from .core.errors import UserError
from .core.hub import HubModel, saved_class
from .nets.discriminator import Discriminator
from .nets.iqa_model import IQAModel
from .nets.perceptual import DISTS, LPIPS
from .robust.classifier import Classifier
from .sr.models import SRModel

SAVED_CLASSES: dict[str, type[HubModel]] = {
    cls.__name__: cls for cls in (SRModel, DISTS, LPIPS, IQAModel, Discriminator, Classifier)
}


def from_pretrained(source: str) -> HubModel:
    """The asym model saved in a folder or Hub repo (``save_pretrained`` / ``--push_to_hub``), of the class its
    config.json names (a config naming none is a ``DISTS`` saved before the class was recorded).

    Raises:
        UserError: nothing saved by asym there, a class asym does not have, or whatever that class's
            ``from_pretrained`` refuses.
    """
    name = saved_class(str(source))
    if name is None:
        raise UserError(f"{source} holds no config.json: not a folder saved by asym (save_pretrained), nor a Hub id")
    cls = SAVED_CLASSES.get(name or "DISTS")
    if cls is None:
        raise UserError(f"{source} holds a {name}, which is no asym class ({', '.join(SAVED_CLASSES)})")
    return cls.from_pretrained(str(source))


__all__ = ["SAVED_CLASSES", "from_pretrained"]
