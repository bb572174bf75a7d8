"""A hidden layer, ``relu(x @ weight.T + bias)``, in one oneDNN call on CPUs under bf16.

Why: on a CPU a bf16 ``nn.Linear`` + ReLU makes three passes over its [M, width] output besides the
matmul — the bias broadcast copied into the output before the GEMM (``addmm``), the ReLU into a
new tensor, and in the backward the bias gradient and the weight gradient, whose reduction over
M rows (tens of thousands of samples) oneDNN spreads poorly over the threads. Here the forward is
oneDNN's linear with the bias and the ReLU as post-ops (``mkldnn._linear_pointwise``), and the
backward masks the gradient once, then computes the weight gradient as a batched matmul over one
block of rows per thread (the blocks summed in fp32, the result rounded to bf16 as the plain
layer's is). Same maths as ``F.relu(layer(x))`` under autocast, to bf16 rounding. Measured per
layer and in whole training steps in docs/benchmarks.md.

Used only where it applies (CPU, bf16 autocast on, oneDNN present, not inside ``torch.compile``);
everything else — CUDA, MPS, fp32 — runs the plain layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _fused_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


FUSED_AVAILABLE = _fused_available()


def _row_blocks(rows: int) -> int:
    """The number of equal row blocks (≤ the thread count) that the weight gradient's reduction
    is split into; 1 when no such split divides ``rows``."""
    for blocks in range(max(torch.get_num_threads(), 1), 1, -1):
        if rows % blocks == 0 and rows // blocks >= 1024:
            return blocks
    return 1


class _LinearReLU(torch.autograd.Function):
    """relu(x @ weight.T + bias) for bf16 CPU tensors, with the backward described above."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.bfloat16)
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        out = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu", [], "")
        ctx.save_for_backward(x, weight, out)
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_out: torch.Tensor):
        x, weight, out = ctx.saved_tensors
        grad = torch.ops.aten.threshold_backward(grad_out.contiguous(), out, 0)
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            blocks = _row_blocks(grad.shape[0])
            if blocks > 1:
                per_block = torch.bmm(
                    grad.view(blocks, -1, grad.shape[1]).transpose(1, 2),
                    x.view(blocks, -1, x.shape[1]),
                )
                grad_w = per_block.float().sum(0).to(weight.dtype)
            else:
                grad_w = grad.t() @ x
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(0)  # bf16 sums accumulate in fp32 inside; a float32 dtype is slower
        return grad_x, grad_w, grad_b


def linear_relu(layer: nn.Linear, x: torch.Tensor, fused: bool = True) -> torch.Tensor:
    """``F.relu(layer(x))``: x [M, in_features] -> [M, out_features].

    With ``fused`` (and a CPU, bf16 autocast, oneDNN, outside ``torch.compile``) in one oneDNN
    call with a hand-written backward (see the module's docstring); otherwise the plain layer.
    """
    if (
        fused
        and FUSED_AVAILABLE
        and x.device.type == "cpu"
        and layer.bias is not None
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and not torch.compiler.is_compiling()
    ):
        return _LinearReLU.apply(x, layer.weight, layer.bias)
    return F.relu(layer(x))
