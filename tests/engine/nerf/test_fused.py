"""The fused hidden layer (nerf/fused.py) computes what ``F.relu(layer(x))`` computes under bf16
autocast — forward and every gradient — and is used only where it applies."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nerf_engine.nerf import fused
from nerf_engine.nerf.fused import linear_relu

pytestmark = pytest.mark.skipif(not fused.FUSED_AVAILABLE, reason="torch without oneDNN")


def _run(layer: nn.Linear, x0: torch.Tensor, grad_out: torch.Tensor, use_fused: bool):
    layer.zero_grad()
    x = x0.detach().clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = linear_relu(layer, x, fused=use_fused)
    y.backward(grad_out.to(y.dtype))
    return y.float(), x.grad.float(), layer.weight.grad.clone(), layer.bias.grad.clone()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("rows", [4096, 4097])  # split into row blocks, and not divisible
def test_fused_layer_matches_the_plain_layer_forward_and_backward(rows):
    torch.manual_seed(0)
    layer = nn.Linear(63, 128)
    x0 = torch.randn(rows, 63)
    grad_out = torch.randn(rows, 128)
    plain = _run(layer, x0, grad_out, use_fused=False)
    fast = _run(layer, x0, grad_out, use_fused=True)
    assert (plain[0] == 0).float().mean() > 0.3  # the ReLU cuts: the backward must mask
    for name, a, b in zip(("out", "grad_x", "grad_w", "grad_b"), fast, plain, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        # both run in bf16: what is left is bf16 rounding (a wrong mask or transpose is ~1)
        assert _rel(a, b) < 2e-2, (name, _rel(a, b))
    # and the fused weight gradient is as close to the fp32 layer's as the plain bf16 one is
    layer.zero_grad()
    x = x0.clone().requires_grad_()
    F.relu(layer(x)).backward(grad_out)
    assert _rel(fast[2], layer.weight.grad) < 1.2 * _rel(plain[2], layer.weight.grad)


def test_fused_layer_is_used_only_under_bf16_autocast_on_a_cpu():
    layer = nn.Linear(8, 8)
    x = torch.randn(16, 8, requires_grad=True)
    y = linear_relu(layer, x)  # fp32: the plain layer
    assert y.grad_fn.name() == "ReluBackward0"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = linear_relu(layer, x)
        assert y.dtype == torch.bfloat16 and "LinearReLU" in y.grad_fn.name()
        assert linear_relu(layer, x, fused=False).grad_fn.name() == "ReluBackward0"


def test_a_field_trains_the_same_with_and_without_fused_layers():
    """Same seed, same batches: a few Adam steps of a field give the same losses either way."""
    from nerf_engine.config import ModelConfig
    from nerf_engine.nerf.field import NeRFField

    def losses(use_fused: bool) -> list[float]:
        torch.manual_seed(0)
        field = NeRFField(ModelConfig(depth=4, width=64, view_width=32))
        field.fused_layers = use_fused
        opt = torch.optim.Adam(field.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(1)
        out = []
        for _ in range(5):
            x = torch.rand(2048, 3, generator=gen) * 2 - 1
            d = F.normalize(torch.randn(2048, 3, generator=gen), dim=-1)
            target = torch.sigmoid(x * 3)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                rgb, _ = field(field.pos_enc(x), field.direction_term(d))
            loss = F.mse_loss(rgb.float(), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    plain, fast = losses(False), losses(True)
    assert plain[-1] < plain[0]  # it learns
    assert fast == pytest.approx(plain, rel=2e-2)
