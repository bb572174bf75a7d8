"""Depth supervision of the ray termination distribution (after DS-NeRF, Deng et al., CVPR 2022).

A ray with a known surface at distance D should end there: its weights w_i (the termination
distribution, ``volume_rendering.render_weights``) form a spike at t_i = D with total mass 1. The
loss is the expected squared termination error plus the missing mass,

    L_surface = Σ_i w_i (t_i − D)² + (1 − Σ_i w_i)²,

zero exactly for all the weight at D and growing with the square of the distance the spike is
away from it. A ray that hits nothing should hold no weight: L_empty = (Σ_i w_i)².

Why not DS-NeRF's KL term (−Σ log w_i · N(t_i; D, σ) Δt_i): it has a Gaussian width σ that models
the error of COLMAP's keypoint depth, and a Blender depth map has none; and it takes the log of
every sample's weight, where empty-space skipping makes weights exactly 0. The squared error has
neither problem and is bounded by the squared ray length.

Distances are in the unit scene frame (``data/scene_box``), like ``t_vals``.
"""

from __future__ import annotations

import torch


def termination_loss(weights: torch.Tensor, t_vals: torch.Tensor, depth: torch.Tensor):
    """Per ray Σ_i w_i (t_i − D)² + (1 − Σ_i w_i)²: weights, t_vals [N, S], depth D [N] -> [N]."""
    spread = (weights * (t_vals - depth[:, None]) ** 2).sum(dim=-1)
    return spread + (1.0 - weights.sum(dim=-1)) ** 2


def emptiness_loss(weights: torch.Tensor) -> torch.Tensor:
    """Per ray (Σ_i w_i)²: weights [N, S] -> [N]; zero when the ray passes through empty space."""
    return weights.sum(dim=-1) ** 2


def depth_loss(
    weights: torch.Tensor,
    t_vals: torch.Tensor,
    depth: torch.Tensor,
    far: torch.Tensor,
) -> torch.Tensor:
    """The mean depth loss over N rays (a scalar): weights, t_vals [N, S] of rays with the
    bounds' far [N]; depth [N] the known distance along each ray, +inf where it hits nothing,
    NaN where it is not known (those rays add 0 but count in the mean, like unmasked pixels in
    an MSE). A surface beyond ``far`` means the ray is empty within its bounds."""
    empty = depth >= far
    surface = torch.isfinite(depth) & ~empty
    zero = weights.new_zeros(())
    known = torch.where(surface, depth, zero)  # (inf or NaN in an unused branch: NaN gradients)
    loss = torch.where(surface, termination_loss(weights, t_vals, known), zero)
    loss = loss + torch.where(empty, emptiness_loss(weights), zero)
    return loss.mean()
