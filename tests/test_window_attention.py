"""--attention sdpa: SwinIR's window attention through F.scaled_dot_product_attention computes what spandrel's eager
form computes, forward and backward, with the same weights and state-dict keys."""

import copy
import importlib

import pytest
import torch

from asym import SRModel
from asym.core.errors import UserError
from asym.sr.models import quiet_swinir_meshgrid
from asym.sr.window_attention import SDPAWindowAttention, set_attention

SWINIR = importlib.import_module("spandrel.architectures.SwinIR.__arch.SwinIR")


def small_swinir(attn_drop: float = 0.0) -> torch.nn.Module:
    """Two residual groups of an unshifted and a shifted block each, window 4, x2: every attention path of SwinIR."""
    torch.manual_seed(0)
    with quiet_swinir_meshgrid():
        return SWINIR.SwinIR(img_size=16, embed_dim=12, depths=[2, 2], num_heads=[2, 3], window_size=4, mlp_ratio=2.0,
                             drop_path_rate=0.0, attn_drop_rate=attn_drop, upscale=2,
                             upsampler="pixelshuffledirect")  # fmt: skip


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_sdpa_equals_eager_forward_and_backward(dtype, tol):
    """Same weights, float32 and float64, shifted and unshifted blocks, 4 / 12 / 9 windows (the 16x16 training size
    with its stored mask; 16x24 and 10x11, padded, with masks computed for the size): outputs and every parameter's
    gradient agree (relative to their scale)."""
    eager = small_swinir().to(dtype)
    sdpa = copy.deepcopy(eager)
    assert set_attention(sdpa, "sdpa") == 4 and set_attention(eager, "eager") == 4
    assert any(b.shift_size > 0 for b in sdpa.modules() if isinstance(b, SWINIR.SwinTransformerBlock))
    for size in ((16, 16), (16, 24), (10, 11)):
        torch.manual_seed(1)
        x = torch.rand(2, 3, *size, dtype=dtype)
        outputs = []
        for model in (eager, sdpa):
            model.zero_grad()
            out = model(x)
            (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)).sum().backward()
            outputs.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
        (out_e, grads_e), (out_s, grads_s) = outputs
        assert (out_e - out_s).abs().max() <= tol * out_e.abs().max()
        assert grads_e.keys() == grads_s.keys() and any("relative_position_bias_table" in n for n in grads_e)
        for name, grad in grads_e.items():
            assert grad.abs().max() > 0, name  # every parameter is in the graph, the bias table included
            assert (grad - grads_s[name]).abs().max() <= tol * 10 * grad.abs().max(), name


def test_official_layout_loads_into_both_and_dropout_is_honoured(tmp_path):
    """A SwinIR state dict (the official release's keys) loads into an sdpa model and back; attention dropout acts in
    training only, as eager's does."""
    eager = small_swinir(attn_drop=0.5)
    sdpa = small_swinir(attn_drop=0.5)
    set_attention(sdpa, "sdpa")
    assert sdpa.state_dict().keys() == eager.state_dict().keys()
    path = tmp_path / "swinir.pth"
    torch.save({"params": eager.state_dict()}, path)  # the release files' layout
    sdpa.load_state_dict(torch.load(path, weights_only=True)["params"])
    released = SRModel.from_checkpoint(str(path))  # spandrel detects it, as for evaluate.py sr and --init_generator
    assert set_attention(released, "sdpa") == 4
    x = torch.rand(1, 3, 16, 16)
    eager.eval(), sdpa.eval(), released.eval()
    assert torch.allclose(eager(x), sdpa(x), atol=1e-6) and torch.allclose(eager(x), released(x), atol=1e-6)
    sdpa.train()
    assert not torch.allclose(sdpa(x), sdpa(x))  # dropout draws anew each forward
    assert isinstance(next(m for m in sdpa.modules() if "Attention" in type(m).__name__), SDPAWindowAttention)


def test_sdpa_needs_window_attention():
    with pytest.raises(UserError, match="--attention sdpa is for window-attention generators"):
        set_attention(SRModel("tiny", 4), "sdpa")
    with pytest.raises(UserError, match="choose one of eager, sdpa"):
        set_attention(small_swinir(), "flash")
