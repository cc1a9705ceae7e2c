"""Perceptual metrics on any registered backbone (the study's losses on features are ``asym.nets.feature_losses``).

* ``DISTS``: texture (mean) and structure (covariance) similarity per stage and channel, weighted by
  alpha/beta (Ding et al. 2020); the ``vgg16`` case is the reference DISTS.
* ``LPIPS``: unit-normalised features, squared difference, per-channel linear weights (Zhang et al. 2018).

All take ``(x, y)`` = (output, reference), images in [0, 1], and return one value per image (B,), lower
is better. The reference features are computed without autograd and the backbone is frozen, so a loss
back-propagates only through ``x``.
"""

from __future__ import annotations

import importlib.util
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import max_pooling_kwargs
from ..core.errors import UserError, summarize
from ..core.hub import HubModel
from .feature_metric import FeatureMetric, upcast_half


def _official_dists_weights() -> tuple[torch.Tensor, torch.Tensor]:
    """alpha/beta of the DISTS release, read from the ``dists-pytorch`` package (no download)."""
    spec = importlib.util.find_spec("DISTS_pytorch")
    if spec is None or spec.origin is None:
        raise ValueError("alpha_beta='dists' needs the dists-pytorch package: pip install dists-pytorch")
    path = os.path.join(os.path.dirname(spec.origin), "weights.pt")
    weights = torch.load(path, map_location="cpu", weights_only=True)
    return weights["alpha"].flatten().float(), weights["beta"].flatten().float()


METRIC_TAGS = ["image-quality-assessment", "full-reference-iqa", "perceptual-loss"]  # model card tags of the metrics


class DISTS(FeatureMetric, HubModel, tags=["dists", *METRIC_TAGS]):
    """DISTS-style distance ``D = 1 - sum_ij (alpha_ij l_ij + beta_ij s_ij)`` over backbone stages i, channels j.

    Args:
        backbone: registry name (``vgg16`` reproduces the reference DISTS).
        weights: backbone weights (see ``create_backbone``).
        alpha_beta: ``"auto"`` (official DISTS values for ``vgg16``, a seeded random draw for ``vgg16-r``,
            uniform otherwise), ``"dists"``, ``"uniform"`` or ``"random"``.
        seed: seed of the random draw.
        trainable: whether alpha/beta receive gradients (``vgg16-r`` defaults to fixed).
        backbone_kwargs: extra arguments of the backbone constructor.
        card: training facts for the model card.
    """

    c1 = c2 = 1e-6

    def __init__(
        self,
        backbone: str = "vgg16",
        weights: str = "auto",
        alpha_beta: str = "auto",
        seed: int = 0,
        trainable: bool | None = None,
        backbone_kwargs: dict | None = None,
        card: dict | None = None,
    ):
        super().__init__(backbone, weights, backbone_kwargs)
        self.card = dict(card or {})  # training facts shown in the model card (set by train_metric.py)
        n = sum(self.backbone.channels)
        if alpha_beta == "auto":
            alpha_beta = {"vgg16": "dists", "vgg16-r": "random"}.get(backbone, "uniform")
        if alpha_beta == "dists":
            if self.backbone.channels != [3, 64, 128, 256, 512, 512]:
                raise ValueError(f"alpha_beta='dists' needs the vgg16 backbone, not {backbone!r}")
            alpha, beta = _official_dists_weights()
        elif alpha_beta == "uniform":
            alpha = beta = torch.full((n,), 1.0 / (2 * n))
        elif alpha_beta == "random":
            g = torch.Generator().manual_seed(seed)
            alpha, beta = torch.rand(n, generator=g), torch.rand(n, generator=g)
        else:
            raise ValueError(f"alpha_beta must be 'auto', 'dists', 'uniform' or 'random', got {alpha_beta!r}")
        self.alpha_beta_init = "the DISTS release" if alpha_beta == "dists" else alpha_beta
        total = alpha.sum() + beta.sum()
        trainable = backbone != "vgg16-r" if trainable is None else trainable
        self.alpha = nn.Parameter((alpha / total).clone(), requires_grad=trainable)
        self.beta = nn.Parameter((beta / total).clone(), requires_grad=trainable)

    @property
    def alpha_beta_source(self) -> str:
        """Where alpha/beta come from: their initialisation, or the folder / Hub id they were loaded from."""
        loaded = getattr(self, "loaded_from", None)
        return f"as saved in {loaded}" if loaded else self.alpha_beta_init

    def card_description(self) -> str:
        return (
            f"DISTS-style metric on the `{self.backbone.name}` backbone (weights: {self.backbone.weights_source}); "
            f"{self.alpha.numel()} alpha and beta weights over stages with channels {self.backbone.channels}. "
            "Lower is better; 0 for identical images."
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distance per image, shape (B,)."""
        fx, fy = self.features(x, y)
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, self.backbone.channels)
        betas = torch.split(self.beta / total, self.backbone.channels)
        # D = 1 - sum(a l + b s) = sum(a (1 - l) + b (1 - s)) as the weights sum to 1. The second form is exactly 0
        # for identical inputs (l = s = 1 bit for bit), where the first leaves the rounding of a sum of thousands.
        distance = upcast_half(x).new_zeros(x.shape[0])
        for a, b, f0, f1 in zip(alphas, betas, fx, fy):
            # statistics in fp32 even under autocast; (B, C) each
            texture, structure = TextureStructure.apply(upcast_half(f0), upcast_half(f1), self.c1, self.c2)
            distance = distance + (1 - texture) @ a + (1 - structure) @ b
        return distance

    @torch.no_grad()
    def project_(self, stage0_bounds: tuple[float, float] = (0.02, 1.0)) -> None:
        """Project alpha/beta back onto the constraint set after an optimiser step (projected gradient descent).

        The Euclidean projection onto {w >= 0, sum(w) = 1, stage-0 (raw image) weights in ``stage0_bounds``} (the
        paper's [0.02, 1]): the feasible point nearest to the current weights, whatever they are.
        """
        n, c0 = self.alpha.numel(), self.backbone.channels[0]
        lower, upper = torch.zeros(2 * n, dtype=torch.float64), torch.ones(2 * n, dtype=torch.float64)
        for start in (0, n):  # alpha and beta of stage 0
            lower[start : start + c0], upper[start : start + c0] = stage0_bounds
        weights = project_onto_capped_simplex(torch.cat([self.alpha, self.beta]).double().cpu(), lower, upper)
        self.alpha.copy_(weights[:n])
        self.beta.copy_(weights[n:])


def project_onto_capped_simplex(v: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """The point of {w : sum(w) = 1, lower <= w <= upper} nearest to ``v`` in Euclidean distance (1-D, float64).

    By the KKT conditions it is ``clip(v - tau, lower, upper)`` for the one ``tau`` at which it sums to 1; the sum is
    non-increasing and piecewise linear in ``tau``, so bisection brackets the right piece and one linear solve on
    that piece lands on ``tau`` exactly (up to rounding).

    Raises:
        ValueError: the set is empty (``sum(lower) > 1``, ``sum(upper) < 1`` or ``lower > upper`` somewhere).
    """
    if (lower > upper).any() or lower.sum() > 1 or upper.sum() < 1:
        raise ValueError(f"no weights satisfy sum = 1 within [{lower.min()}, {upper.max()}]: bounds too tight")
    if not torch.isfinite(v).all():
        raise ValueError("cannot project non-finite weights (did the optimiser diverge?)")

    def total(tau):
        return (v - tau).clamp(lower, upper).sum()

    lo, hi = (v - upper).min().item(), (v - lower).max().item()  # total(lo) = sum(upper) >= 1 >= total(hi)
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if total(mid) > 1 else (lo, mid)
    free = ((v - hi) > lower) & ((v - lo) < upper)  # entries strictly inside their box on the bracketed piece
    if free.any():
        clipped = (v - hi).clamp(lower, upper)
        tau = (v[free].sum() + clipped[~free].sum() - 1) / free.sum()
        w = (v - tau).clamp(lower, upper)
    else:
        w = (v - hi).clamp(lower, upper)
    return w


class TextureStructure(torch.autograd.Function):
    """Per-channel DISTS texture ``l`` and structure ``s`` of two (B, C, H, W) maps, with a fused backward.

    Autograd through ``var_mean``/``mean`` would run ~10 full-size element-wise kernels per stage; the
    gradient is in fact affine in the maps, ``dL/df0 = A*f0 + B*f1 + C`` with (B, C, 1, 1) coefficients,
    which costs two passes (the main reason the DISTS loss beats the reference implementation).
    """

    @staticmethod
    def forward(ctx, f0: torch.Tensor, f1: torch.Tensor, c1: float, c2: float):
        mx, my = f0.mean([2, 3]), f1.mean([2, 3])
        # Centred moments: E[f0 f1] - mx my would cancel catastrophically on flat regions, so identical
        # inputs would not score exactly 1 (the reference DISTS has that flaw).
        d0, d1 = f0 - mx[..., None, None], f1 - my[..., None, None]
        vx, vy, cov = d0.square().mean([2, 3]), d1.square().mean([2, 3]), (d0 * d1).mean([2, 3])
        del d0, d1
        tn, td = 2 * mx * my + c1, mx.square() + my.square() + c1
        sn, sd = 2 * cov + c2, vx + vy + c2
        ctx.save_for_backward(f0, f1, mx, my, tn, td, sn, sd)
        return tn / td, sn / sd

    @staticmethod
    def backward(ctx, g_texture: torch.Tensor, g_structure: torch.Tensor):
        f0, f1, mx, my, tn, td, sn, sd = ctx.saved_tensors
        n = f0.shape[2] * f0.shape[3]
        d_var = -g_structure * sn / sd.square()  # dL/d(var) for either map
        d_cov = g_structure * 2 / sd

        def affine_grad(m_self, m_other, f_self, f_other):
            d_mean = g_texture * (2 * m_other * td - tn * 2 * m_self) / td.square()
            a, b = 2 * d_var / n, d_cov / n  # coefficients of f_self and f_other
            c = d_mean / n - a * m_self - b * m_other
            a, b, c = a[..., None, None], b[..., None, None], c[..., None, None]
            grad = torch.empty_like(f_self)  # keeps f_self's memory format (channels-last): no copy downstream
            return torch.addcmul(c, b, f_other, out=grad).addcmul_(a, f_self)  # two passes over the map

        g0 = affine_grad(mx, my, f0, f1) if ctx.needs_input_grad[0] else None
        g1 = affine_grad(my, mx, f1, f0) if ctx.needs_input_grad[1] else None
        return g0, g1, None, None


def _official_lpips_weights(net: str = "vgg") -> list[torch.Tensor]:
    """Per-channel linear weights of the LPIPS v0.1 release, read from the ``lpips`` package."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        raise ValueError("linear='lpips' needs the lpips package: pip install lpips")
    path = os.path.join(os.path.dirname(spec.origin), "weights", "v0.1", f"{net}.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return [state[f"lin{i}.model.1.weight"].flatten().float() for i in range(5)]


# The lpips package's nets by their linear layers' channels: an lpips-format file names its net by them.
LPIPS_NETS = {(64, 128, 256, 512, 512): "vgg", (64, 192, 384, 256, 256): "alex",
              (64, 128, 256, 384, 384, 512, 512): "squeeze"}  # fmt: skip
# lpips's VGG-16 and AlexNet slices keep torchvision's layer numbers: net.slice<k>.<n>.* is torchvision's
# features.<n>.*, so those trunks load into asym's vgg16 / alexnet backbones
LPIPS_TRUNKS = ("vgg16", "alexnet")
_LPIPS_VGG_KEY = re.compile(r"^net\.slice[1-5]\.(\d+)\.(weight|bias)$")


def read_lpips_state_dict(path: str) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """An ``lpips``-format state dict (the package's ``weights/v0.1/*.pth``, a checkpoint its trainer saved, the
    published R-LPIPS files): its per-stage linear weights and its backbone tensors (``net.*``, empty if it has none).

    Read with ``weights_only=True`` (or as safetensors); a ``module.`` prefix (DataParallel) is dropped. Linear weights
    are ``lin<k>.model.1.weight`` (trained with dropout) or ``lin<k>.model.0.weight`` (without), ``lins.<k>...``
    being the same tensors.

    Raises:
        UserError: unreadable, not a state dict, or without ``lin0`` weights.
    """
    from ..core.hub import read_tensor_file

    state = read_tensor_file(path, "lpips state dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} is not a state dict of tensors (an lpips .pth file of lin<k>.model.1.weight ...)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    lins = []
    for k in range(len(state)):
        names = (f"lin{k}.model.1.weight", f"lin{k}.model.0.weight", f"lins.{k}.model.1.weight")
        found = [state[name] for name in (*names, f"lins.{k}.model.0.weight") if name in state]
        if not found:
            break
        lins.append(found[0].detach().flatten().float())
    if not lins:
        keys = ", ".join(sorted(state)[:4])
        raise UserError(f"{path} holds no LPIPS linear weights (lin0.model.1.weight ...; found {keys or 'nothing'}): "
                        "not an lpips state dict")  # fmt: skip
    return lins, {k: v for k, v in state.items() if k.startswith("net.")}


class LPIPS(FeatureMetric, HubModel, tags=["lpips", *METRIC_TAGS]):
    """LPIPS-style distance: ``sum_k mean_hw sum_c w_kc (x̂_kc - ŷ_kc)^2`` with x̂ unit-normalised over channels.

    Args:
        backbone: registry name; VGG backbones use max-pooling here, as LPIPS does.
        weights: backbone weights.
        linear: ``"auto"`` (the LPIPS release for ``vgg16``, ones otherwise), ``"lpips"``, ``"ones"`` or
            ``"random"`` (LPIPS's untrained start: PyTorch's default for its 1x1 convolutions, uniform in
            +-1/sqrt(channels); negative weights are clamped away by training). An lpips-format file (LPIPS,
            R-LPIPS checkpoints) loads with ``LPIPS.from_lpips_state_dict``.
        stages: which backbone stages to compare (default: all but the raw image).
        backbone_kwargs: extra arguments of the backbone constructor.
        seed: seed of ``linear="random"``.
        card: training facts for the model card.
    """

    def __init__(
        self,
        backbone: str = "vgg16",
        weights: str = "auto",
        linear: str = "auto",
        stages: list[int] | None = None,
        backbone_kwargs: dict | None = None,
        seed: int = 0,
        card: dict | None = None,
    ):
        super().__init__(backbone, weights, max_pooling_kwargs(backbone, backbone_kwargs))
        self.card = dict(card or {})  # training facts shown in the model card (set by train_metric.py)
        self.stages = list(stages or range(1, len(self.backbone.channels)))
        if linear == "auto":
            linear = "lpips" if backbone == "vgg16" and self.stages == [1, 2, 3, 4, 5] else "ones"
        channels = [self.backbone.channels[k] for k in self.stages]
        if linear == "lpips":
            if backbone != "vgg16" or self.stages != [1, 2, 3, 4, 5]:
                raise ValueError("linear='lpips' needs backbone 'vgg16' with stages 1-5")
            lins = _official_lpips_weights("vgg")
        elif linear == "ones":
            lins = [torch.ones(c) for c in channels]
        elif linear == "random":
            g = torch.Generator().manual_seed(seed)
            lins = [(2 * torch.rand(c, generator=g) - 1) / c**0.5 for c in channels]
        else:
            raise ValueError(f"linear must be 'auto', 'lpips', 'ones' or 'random', got {linear!r}")
        self.lins = nn.ParameterList([nn.Parameter(w.clone()) for w in lins])

    @classmethod
    def from_lpips_state_dict(cls, path: str, backbone: str = "vgg16", weights: str = "auto", **kwargs) -> LPIPS:
        """An LPIPS with the linear weights of an ``lpips``-format state dict (``read_lpips_state_dict``): the lpips
        package's release, a checkpoint its trainer wrote, the published R-LPIPS weights.

        Backbone tensors in the file (``net.slice*``: LPIPS-VGG or -AlexNet, e.g. a trainer checkpoint) replace the
        ``weights`` ones and are its ``weights_source`` (so ``save_pretrained`` stores them); without them the
        backbone is ``weights`` (``"auto"``: ImageNet, what LPIPS's linear layers were trained on).

        Raises:
            UserError: the file is unreadable, its linear weights do not fit the backbone's stages (the message names
                the lpips net they are from: the published R-LPIPS checkpoints are LPIPS-AlexNet, to be loaded with
                ``backbone="alexnet"``), or it holds backbone tensors for another backbone than ``vgg16`` / ``alexnet``.
        """
        lins, net = read_lpips_state_dict(path)
        stored = bool(net) and backbone in LPIPS_TRUNKS  # the file's own backbone: no need to obtain `weights`
        metric = cls(backbone, weights="random" if stored else weights, linear="ones", **kwargs)
        have = tuple(w.numel() for w in lins)
        want = tuple(w.numel() for w in metric.lins)
        if have != want:
            net_name = LPIPS_NETS.get(have)
            what = f"LPIPS-{net_name}" if net_name else "an unknown net"
            hint = {"alex": " (backbone='alexnet')", "vgg": " (backbone='vgg16')",
                    "squeeze": " (asym has no SqueezeNet backbone)"}.get(net_name, "")  # fmt: skip
            raise UserError(f"{path} holds linear weights for channels {list(have)} ({what}), but backbone "
                            f"{backbone!r} stages {metric.stages} have {list(want)}: pass the backbone they were "
                            f"trained on{hint}")  # fmt: skip
        with torch.no_grad():
            for param, w in zip(metric.lins, lins):
                param.copy_(w)
        if net:
            if backbone not in LPIPS_TRUNKS or not all(_LPIPS_VGG_KEY.match(k) for k in net):
                raise UserError(f"{path} holds backbone tensors ({sorted(net)[0]}, ...) that are not LPIPS-VGG's or "
                                f"-AlexNet's net.slice<k>.<n>.weight/bias: load it with backbone 'vgg16' or "
                                f"'alexnet'")  # fmt: skip
            features = {f"model.features.{m.group(1)}.{m.group(2)}": v for k, v in net.items()
                        if (m := _LPIPS_VGG_KEY.match(k))}  # fmt: skip
            try:
                metric.backbone.load_state_dict(features, strict=True)
            except RuntimeError as err:
                raise UserError(f"{path}: its net.* tensors do not fit {backbone} ({summarize(err)})") from err
            metric.backbone.weights_source = f"lpips state dict {path}"
        return metric

    def card_description(self) -> str:
        return f"LPIPS-style metric on `{self.backbone.name}` stages {self.stages}. Lower is better."

    @torch.no_grad()
    def clamp_(self) -> None:
        """Linear weights back to >= 0 after an optimiser step (LPIPS's ``clamp_weights``): a distance stays one."""
        for w in self.lins:
            w.clamp_(min=0)

    def forward(self, x: torch.Tensor, y: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        """Distance per image, shape (B,).

        ``dropout``: probability of zeroing each entry of the normalised squared difference before the linear
        weights (scaled up as usual), LPIPS's training recipe (0.5); off by default, including in training mode.
        """
        fx, fy = self.features(x, y)
        distance = upcast_half(x).new_zeros(x.shape[0])
        for k, w in zip(self.stages, self.lins):
            f0, f1 = upcast_half(fx[k]), upcast_half(fy[k])
            f0 = f0 / (f0.square().sum(1, keepdim=True).sqrt() + 1e-10)
            f1 = f1 / (f1.square().sum(1, keepdim=True).sqrt() + 1e-10)
            diff = (f0 - f1).square()
            if dropout:
                diff = F.dropout(diff, dropout, training=True)
            distance = distance + torch.einsum("bchw,c->b", diff, w) / (f0.shape[2] * f0.shape[3])
        return distance


__all__ = ["DISTS", "LPIPS", "TextureStructure", "project_onto_capped_simplex", "read_lpips_state_dict"]
