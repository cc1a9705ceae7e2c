"""SwinIR's window attention through PyTorch's fused ``scaled_dot_product_attention`` (``--attention sdpa``).

spandrel's SwinIR (as BasicSR's and KAIR's) computes ``softmax(q k^T * scale + bias + mask) v`` by hand. The fused form
here passes the relative-position bias and the shifted-window mask to ``F.scaled_dot_product_attention`` as one
additive ``attn_mask`` (as timm's Swin does), honours the attention dropout, and keeps every parameter in the graph, so
``qkv``, ``proj`` and the bias table get the eager form's gradients. It changes the class of each ``WindowAttention``
in place (``set_attention``): the parameters, buffers and state-dict keys stay spandrel's, so official checkpoints
and models saved either way load into both. Whether it is faster is the GPU's to say (``benchmarks/train_sr_step.py``);
on CPU it is the same computation, no faster.
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import UserError

ATTENTIONS = ("eager", "sdpa")


def _spandrel_window_attention() -> type[nn.Module]:
    """spandrel's SwinIR ``WindowAttention`` class (its module path holds ``__arch``, imported by name)."""
    return importlib.import_module("spandrel.architectures.SwinIR.__arch.SwinIR").WindowAttention


class SDPAWindowAttention(_spandrel_window_attention()):
    """spandrel's ``WindowAttention`` with its forward through ``F.scaled_dot_product_attention``: the same parameters
    and buffers, one additive mask (relative-position bias + shifted-window mask)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: (windows * B, N, C); ``mask``: (windows, N, N) of 0 / -100 for shifted windows, or None."""
        batch_windows, tokens, channels = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).reshape(batch_windows, tokens, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (windows * B, heads, N, head_dim)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(tokens, tokens, heads).permute(2, 0, 1)  # (heads, N, N)
        if mask is None:
            attn_mask = bias.unsqueeze(0).to(q.dtype)  # broadcast over windows and images
        else:  # (B, windows * heads, N, N) against a mask of (1, windows * heads, N, N): broadcast over images
            windows = mask.shape[0]
            attn_mask = (bias.unsqueeze(0) + mask.unsqueeze(1)).reshape(1, windows * heads, tokens, tokens)
            attn_mask = attn_mask.to(q.dtype)
            q, k, v = (t.reshape(-1, windows * heads, tokens, t.shape[-1]) for t in (q, k, v))
        dropout = self.attn_drop.p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout, scale=self.scale)
        out = out.reshape(batch_windows, heads, tokens, -1).transpose(1, 2).reshape(batch_windows, tokens, channels)
        return self.proj_drop(self.proj(out))


def set_attention(model: nn.Module, attention: str) -> int:
    """Every SwinIR window attention of ``model`` computed the ``attention`` way (``eager``: spandrel's own forward,
    ``sdpa``: ``SDPAWindowAttention``); the weights are untouched. Returns how many layers there are.

    Raises:
        UserError: an unknown ``attention``, or ``sdpa`` for a model without window attention.
    """
    if attention not in ATTENTIONS:
        raise UserError(f"--attention {attention!r}: choose one of {', '.join(ATTENTIONS)}")
    eager = _spandrel_window_attention()
    layers = [m for m in model.modules() if isinstance(m, eager)]
    if attention == "sdpa" and not layers:
        raise UserError("--attention sdpa is for window-attention generators (--model swinir, swinir-light, or a "
                        "SwinIR release); this model has none: leave --attention at eager")  # fmt: skip
    for layer in layers:
        layer.__class__ = SDPAWindowAttention if attention == "sdpa" else eager
    return len(layers)


__all__ = ["ATTENTIONS", "SDPAWindowAttention", "set_attention"]
