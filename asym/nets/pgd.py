"""Projected gradient descent (PGD) adversarial examples under an L2 or L-inf ball, for robust training and R-LPIPS.

The robustness library's recipe (Madry et al.): ``steps`` signed (L-inf) or normalised (L2) gradient-ascent steps
of ``step_size`` on a loss, each followed by projection onto the ``eps`` ball around the clean input and onto the
valid pixel range. Its default step size is ``2.5 * eps / steps``. Images live in [0, 1] here; an eps given for
[-1, 1] images (the public R-LPIPS code) is halved.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

NORMS = ("l2", "linf")


def _per_image_norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm of each image of a batch, shaped to broadcast over it."""
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """``delta`` moved onto the ``norm`` ball of radius ``eps`` (per image)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _per_image_norm(delta)).clamp(max=1.0)


def default_step_size(eps: float, steps: int, factor: float = 2.5) -> float:
    """``factor * eps / steps`` (the robustness library trains with 2.5; the study's PGD-50 evaluation uses 2), 0 if
    no steps."""
    return factor * eps / steps if steps else 0.0


def pgd_attack(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float | None = None,
    norm: str = "l2",
    random_start: bool = False,
    bounds: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """An adversarial version of ``x`` that (locally) maximises ``loss_fn``, within ``eps`` of ``x`` in ``norm``.

    Args:
        loss_fn: maps a batch like ``x`` to the loss to increase; its sum over the batch is differentiated, so it
            should be a sum (or mean) of per-image terms for the images to be attacked independently.
        x: clean inputs (B, ...); not modified.
        eps: radius of the ball (per image).
        steps: gradient steps (0 returns ``x``, or its random start).
        step_size: length of each step; default ``2.5 * eps / steps`` (the robustness library's choice).
        norm: ``"l2"`` (the step is the gradient normalised per image) or ``"linf"`` (its sign).
        random_start: start from a random point of the ball's surface (L2) or of the box (L-inf) instead of ``x``.
        bounds: the valid input range; every iterate is clamped to it.
        generator: randomness of the start, for reproducible attacks.

    Returns:
        The last iterate, detached, same shape and dtype as ``x``. Gradients of parameters used by ``loss_fn`` are
        not accumulated (the attack differentiates with respect to the input only).
    """
    if norm not in NORMS:
        raise ValueError(f"unknown attack norm {norm!r}: use one of {', '.join(NORMS)}")
    if eps < 0 or steps < 0:
        raise ValueError(f"eps and steps must be non-negative, got eps={eps}, steps={steps}")
    step_size = step_size if step_size is not None else default_step_size(eps, steps)
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start and eps > 0:
        noise = torch.randn(x.shape, generator=generator, device="cpu", dtype=torch.float32).to(x)
        if norm == "l2":
            delta = eps * noise / _per_image_norm(noise)
        else:
            uniform = torch.rand(x.shape, generator=generator, device="cpu", dtype=torch.float32).to(x)
            delta = eps * (2 * uniform - 1)
    adv = (x + delta).clamp(*bounds)
    for _ in range(steps):
        adv.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(loss_fn(adv).sum(), adv)
        with torch.no_grad():
            step = grad.sign() if norm == "linf" else grad / _per_image_norm(grad)
            adv = (x + project(adv + step_size * step - x, eps, norm)).clamp(*bounds)
    return adv.detach()


__all__ = ["NORMS", "pgd_attack", "project"]
