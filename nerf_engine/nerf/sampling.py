"""Where along each ray to evaluate the field.

Samples are points ``t`` along unit-direction rays. Each point owns the interval between the
midpoints to its neighbours, closed by ``near`` and ``far`` (:func:`interval_edges`), so the
intervals tile [near, far] exactly and the last sample never gets the paper's infinite width
(which, with an always-positive density, would make every ray opaque).
"""

from __future__ import annotations

import torch


def stratified_samples(
    near: torch.Tensor,
    far: torch.Tensor,
    n_samples: int,
    *,
    perturb: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One sample in each of ``n_samples`` equal bins between near and far (paper eq. 2).

    Args:
        near, far: [N, 1] ray bounds.
        perturb: uniform jitter inside each bin (training); bin centres otherwise.
    Returns:
        t: [N, n_samples], sorted, inside [near, far].
    """
    n_rays = near.shape[0]
    shape = (n_rays, n_samples)
    if perturb:
        u = torch.rand(shape, device=near.device, dtype=near.dtype, generator=generator)
    else:
        u = torch.full(shape, 0.5, device=near.device, dtype=near.dtype)
    bins = torch.arange(n_samples, device=near.device, dtype=near.dtype)
    return near + (far - near) * ((bins + u) / n_samples)


def interval_edges(t: torch.Tensor, near: torch.Tensor, far: torch.Tensor) -> torch.Tensor:
    """Edges of each sample's interval: [N, S] sorted points -> [N, S + 1] edges, near to far."""
    mids = 0.5 * (t[..., 1:] + t[..., :-1])
    return torch.cat([near, mids, far], dim=-1)


def sample_pdf(
    edges: torch.Tensor,
    weights: torch.Tensor,
    n_samples: int,
    *,
    perturb: bool,
    generator: torch.Generator | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Inverse-CDF sampling of the piecewise-constant PDF given by ``weights`` on ``edges``.

    Args:
        edges: [N, M + 1] sorted bin edges; weights: [N, M] non-negative bin weights (detached).
        perturb: stratified random ``u`` (training); evenly spaced ``u`` otherwise.
        eps: added to every weight, as in the paper's code, so all-zero weights give a uniform PDF.
    Returns:
        [N, n_samples] sorted samples inside [edges[:, 0], edges[:, -1]].
    """
    weights = weights.detach().float() + eps
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cumsum(pdf, dim=-1).clamp(max=1.0)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], dim=-1)  # [N, M + 1]
    n_rays = edges.shape[0]
    steps = torch.arange(n_samples, device=edges.device, dtype=cdf.dtype)
    if perturb:
        jitter = torch.rand((n_rays, n_samples), device=edges.device, generator=generator)
    else:
        jitter = torch.full((n_rays, n_samples), 0.5, device=edges.device)
    u = ((steps + jitter) / n_samples).contiguous()
    above = torch.searchsorted(cdf.contiguous(), u, right=True).clamp(1, cdf.shape[-1] - 1)
    below = above - 1
    cdf_lo, cdf_hi = cdf.gather(-1, below), cdf.gather(-1, above)
    edge_lo, edge_hi = edges.gather(-1, below), edges.gather(-1, above)
    span = cdf_hi - cdf_lo
    frac = torch.where(span > 1e-12, (u - cdf_lo) / span.clamp_min(1e-12), torch.zeros_like(u))
    return (edge_lo + frac.clamp(0.0, 1.0) * (edge_hi - edge_lo)).detach()


def merge_samples(t_a: torch.Tensor, t_b: torch.Tensor) -> torch.Tensor:
    """The sorted union of two sample sets: [N, A], [N, B] -> [N, A + B]."""
    return torch.sort(torch.cat([t_a, t_b], dim=-1), dim=-1).values


def ray_aabb_intersect(
    rays_o: torch.Tensor, rays_d: torch.Tensor, aabb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab test of rays against an axis-aligned box.

    Args:
        rays_o, rays_d: [N, 3]; aabb: [2, 3] min and max corners.
    Returns:
        t_enter, t_exit: [N, 1]; a ray misses the box where t_exit <= max(t_enter, 0).
    """
    inv_d = 1.0 / torch.where(rays_d.abs() < 1e-12, torch.full_like(rays_d, 1e-12), rays_d)
    t0 = (aabb[0] - rays_o) * inv_d
    t1 = (aabb[1] - rays_o) * inv_d
    t_enter = torch.minimum(t0, t1).amax(dim=-1, keepdim=True)
    t_exit = torch.maximum(t0, t1).amin(dim=-1, keepdim=True)
    return t_enter, t_exit
