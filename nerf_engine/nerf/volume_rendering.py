"""Volume rendering (paper eq. 3) as small pure functions, and one wrapper on top.

Shapes: N rays, S samples per ray. ``deltas`` are the lengths of the samples' intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def density_to_alpha(sigma: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Opacity of each interval: α_i = 1 − exp(−σ_i δ_i). [N, S], [N, S] -> [N, S]."""
    return 1.0 - torch.exp(-sigma * deltas)


def transmittance(sigma: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Light reaching each sample: T_i = exp(−Σ_{j<i} σ_j δ_j). [N, S], [N, S] -> [N, S]."""
    optical_depth = torch.cumsum(sigma * deltas, dim=-1)
    exclusive = torch.cat(
        [torch.zeros_like(optical_depth[..., :1]), optical_depth[..., :-1]], dim=-1
    )
    return torch.exp(-exclusive)


def render_weights(sigma: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """w_i = T_i α_i, the contribution of each sample to the pixel. [N, S] -> [N, S]."""
    return transmittance(sigma, deltas) * density_to_alpha(sigma, deltas)


def accumulate(weights: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_i w_i v_i: values [N, S, C] -> [N, C]; without values the accumulated opacity [N, 1]."""
    if values is None:
        return weights.sum(dim=-1, keepdim=True)
    return (weights[..., None] * values).sum(dim=-2)


def expected_depth(weights: torch.Tensor, t: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
    """Weight-normalised mean sample distance [N, 1]: the depth of what the ray hit."""
    return accumulate(weights, t[..., None]) / acc.clamp_min(1e-6)


def median_depth(weights: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Distance along each ray [N, 1] at which half of what the ray hit lies in front: the
    median of the termination distribution that ``weights`` [N, S] put on the intervals
    ``edges`` [N, S + 1] (sorted, the distances' units), normalised by the accumulated opacity.

    Blender's depth pass holds one surface per pixel (Cycles writes it from the pixel's first
    sample), and its Z Combine keeps, per pixel, whichever of two depths is nearer. Where a pixel
    straddles two surfaces, :func:`expected_depth` gives a distance between them, where nothing
    is; the median gives the surface that covers most of it, the estimate of one sampled
    surface's depth with the least expected absolute error. Within the interval where the
    median falls the density is constant (the quadrature of paper eq. 3), so the exact point
    is found there: with opacity α_i and a share q of the interval's weight in front of it,
    s / δ_i = ln(1 − q·α_i) / ln(1 − α_i). A ray with no weight gives its ``edges``' far end.
    """
    weights = weights.float()
    acc = weights.sum(dim=-1, keepdim=True)
    cumulative = torch.cumsum(weights, dim=-1)  # weight up to each interval's far edge [N, S]
    before = cumulative - weights  # weight in front of each interval
    half = 0.5 * acc
    # the first interval whose far edge has half the weight in front (the last one if none)
    index = (cumulative < half).sum(dim=-1, keepdim=True).clamp_max(weights.shape[-1] - 1)
    w_i, front = weights.gather(-1, index), before.gather(-1, index)
    near_i, far_i = edges.gather(-1, index), edges.gather(-1, index + 1)
    q = ((half - front) / w_i.clamp_min(1e-12)).clamp(0.0, 1.0)  # share of the interval's weight
    transmitted = (1.0 - front).clamp_min(1e-12)  # T_i: light reaching the interval
    alpha = (w_i / transmitted).clamp(0.0, 1.0 - 1e-6)
    exact = torch.log1p(-q * alpha) / torch.log1p(-alpha).clamp_max(-1e-12)
    share = torch.where(alpha > 1e-4, exact, q)  # (thin interval: the weight is even along it)
    depth = near_i + share * (far_i - near_i)
    return torch.where(acc > 0, depth, edges[..., -1:])


def composite_background(
    rgb: torch.Tensor, acc: torch.Tensor, background: torch.Tensor
) -> torch.Tensor:
    """Premultiplied ray colour [N, 3] over a background colour [3]: rgb + (1 − acc)·bg."""
    return rgb + (1.0 - acc) * background


@dataclass
class RenderOutput:
    rgb: torch.Tensor  # [N, 3] composited over the background (premultiplied colour if none)
    depth: torch.Tensor  # [N, 1] expected distance along the ray
    acc: torch.Tensor  # [N, 1] accumulated opacity in [0, 1]
    weights: torch.Tensor  # [N, S]
    t_vals: torch.Tensor | None = None  # [N, S] the samples' distances along the rays


def volume_render(
    rgb: torch.Tensor,
    sigma: torch.Tensor,
    t: torch.Tensor,
    edges: torch.Tensor,
    background: torch.Tensor | None = None,
) -> RenderOutput:
    """Render rays from per-sample colour [N, S, 3], density [N, S], points t [N, S] and their
    interval edges [N, S + 1]; composite over ``background`` [3] when given."""
    deltas = edges[..., 1:] - edges[..., :-1]
    weights = render_weights(sigma, deltas)
    acc = accumulate(weights)
    color = accumulate(weights, rgb)
    if background is not None:
        color = composite_background(color, acc, background)
    depth = expected_depth(weights, t, acc)
    return RenderOutput(rgb=color, depth=depth, acc=acc, weights=weights, t_vals=t)
