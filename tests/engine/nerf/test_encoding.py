"""Positional encoding: values at known inputs, layout, precision under autocast."""

from __future__ import annotations

import math

import torch

from nerf_engine.nerf.encoding import PositionalEncoding, encoded_dim, positional_encoding


def test_known_values_and_layout():
    x = torch.tensor([[0.25, -0.5, 1.0]])
    out = positional_encoding(x, n_freqs=3)
    assert out.shape == (1, 3 * (1 + 2 * 3)) == (1, encoded_dim(3, 3))
    torch.testing.assert_close(out[0, :3], x[0])  # input included first
    for k in range(3):
        block = out[0, 3 + 6 * k : 3 + 6 * (k + 1)]
        f = (2.0**k) * math.pi
        expected_sin = torch.tensor([math.sin(f * v) for v in (0.25, -0.5, 1.0)])
        expected_cos = torch.tensor([math.cos(f * v) for v in (0.25, -0.5, 1.0)])
        torch.testing.assert_close(block[:3], expected_sin, atol=1e-6, rtol=0)
        torch.testing.assert_close(block[3:], expected_cos, atol=1e-6, rtol=0)
    # sin(π/4), cos(π/4) for x = 0.25 at the lowest octave
    assert abs(out[0, 3].item() - math.sqrt(0.5)) < 1e-6


def test_paper_sizes_and_no_input():
    assert PositionalEncoding(3, 10).out_dim == 63
    assert PositionalEncoding(3, 4).out_dim == 27
    out = positional_encoding(torch.zeros(2, 5, 3), 4, include_input=False)
    assert out.shape == (2, 5, 24)
    torch.testing.assert_close(out[..., 3:6], torch.ones(2, 5, 3))  # cos(0) = 1


def test_stays_float32_under_bf16_autocast():
    x = torch.rand(16, 3) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = positional_encoding(x, 10)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, positional_encoding(x, 10))
