"""Test support: reference implementations (dists-pytorch, pyiqa, lpips) loaded with the weights of an asym metric.

Used by the parity tests and the speed benchmark: the reference packages download ImageNet VGG-16
themselves, so here their ``torchvision.models.vgg16`` is swapped for one that carries our weights,
which makes the comparison exact and offline.
"""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import torch
import torchvision

from asym import DISTS, LPIPS


def _torchvision_vgg16(metric: DISTS | LPIPS) -> torchvision.models.VGG:
    """A torchvision VGG-16 whose conv layers hold the metric backbone's weights."""
    vgg = torchvision.models.vgg16(weights=None)
    features = {k: v.contiguous() for k, v in metric.backbone.model.features.state_dict().items()}
    vgg.features.load_state_dict(features, strict=False)  # our L2Pool layers have no state
    return vgg


@contextmanager
def _vgg16_patched(module, metric):
    vgg = _torchvision_vgg16(metric)
    fake = mock.Mock(wraps=torchvision.models)
    fake.vgg16 = lambda *args, **kwargs: vgg
    with mock.patch.object(module, "models" if hasattr(module, "models") else "tv", fake):
        yield


def dists_pytorch_like(metric: DISTS) -> torch.nn.Module:
    """The ``dists-pytorch`` package's DISTS with ``metric``'s VGG-16 and alpha/beta."""
    import DISTS_pytorch.DISTS_pt as reference

    with _vgg16_patched(reference, metric), mock.patch.object(reference.torch, "load", _weights_only_load):
        model = reference.DISTS(load_weights=False)
    model.alpha.data = metric.alpha.detach().view(1, -1, 1, 1).clone()
    model.beta.data = metric.beta.detach().view(1, -1, 1, 1).clone()
    return model.eval()


def pyiqa_dists_like(metric: DISTS, as_loss: bool = False, device: str = "cpu") -> torch.nn.Module:
    """pyiqa's DISTS (through ``pyiqa.create_metric``) with ``metric``'s VGG-16 and alpha/beta."""
    import pyiqa
    import pyiqa.archs.dists_arch as reference

    with _vgg16_patched(reference, metric):
        model = pyiqa.create_metric("dists", as_loss=as_loss, pretrained=False, device=torch.device(device))
    model.net.alpha.data = metric.alpha.detach().view(1, -1, 1, 1).clone().to(device)
    model.net.beta.data = metric.beta.detach().view(1, -1, 1, 1).clone().to(device)
    return model


def lpips_like(metric: LPIPS) -> torch.nn.Module:
    """The ``lpips`` package's LPIPS-VGG with ``metric``'s VGG-16 and linear weights."""
    import lpips
    import lpips.pretrained_networks as reference

    with _vgg16_patched(reference, metric):
        model = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
    for lin, w in zip(model.lins, metric.lins):
        lin.model[-1].weight.data = w.detach().view(1, -1, 1, 1).clone()
    return model.eval()


def _weights_only_load(*args, **kwargs):
    kwargs["weights_only"] = True
    return torch.load(*args, **kwargs)
