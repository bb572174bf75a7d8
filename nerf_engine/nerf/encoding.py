"""Positional encoding γ(p) of Mildenhall et al. 2020, eq. 4, with the input itself included."""

from __future__ import annotations

import math

import torch
from torch import nn


def encoded_dim(in_dim: int, n_freqs: int, include_input: bool = True) -> int:
    return in_dim * (int(include_input) + 2 * n_freqs)


def positional_encoding(x: torch.Tensor, n_freqs: int, include_input: bool = True) -> torch.Tensor:
    """Encode each coordinate with sines and cosines of octave frequencies.

    Args:
        x: [..., D] coordinates (positions in the unit scene box, or unit view directions).
        n_freqs: L, the number of octaves; frequencies are 2^k·π for k = 0 .. L−1.
    Returns:
        [..., D·(1 + 2L)] ordered (x, sin(2^0·π·x), cos(2^0·π·x), sin(2^1·π·x), cos(2^1·π·x), ...),
        each term a D-vector. Always computed in float32, also under autocast: the high
        frequencies need the precision.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        freqs = (2.0 ** torch.arange(n_freqs, device=x.device, dtype=torch.float32)) * math.pi
        scaled = x[..., None, :] * freqs[:, None]  # [..., L, D]
        sin_cos = torch.stack([torch.sin(scaled), torch.cos(scaled)], dim=-2)  # [..., L, 2, D]
        parts = [x] if include_input else []
        parts.append(sin_cos.flatten(start_dim=-3))
        return torch.cat(parts, dim=-1)


class PositionalEncoding(nn.Module):
    """:func:`positional_encoding` as a module with a known output width."""

    def __init__(self, in_dim: int, n_freqs: int, include_input: bool = True):
        super().__init__()
        self.n_freqs, self.include_input = n_freqs, include_input
        self.out_dim = encoded_dim(in_dim, n_freqs, include_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return positional_encoding(x, self.n_freqs, self.include_input)
