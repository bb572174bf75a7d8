"""Volume rendering: weights vs opacity, an opaque slab, hand-computed transmittance, background."""

from __future__ import annotations

import math

import torch

from nerf_engine.nerf.sampling import interval_edges, stratified_samples
from nerf_engine.nerf.volume_rendering import (
    accumulate,
    density_to_alpha,
    expected_depth,
    median_depth,
    render_weights,
    transmittance,
    volume_render,
)


def test_transmittance_matches_a_hand_computed_case():
    sigma = torch.tensor([[1.0, 2.0, 0.5]])
    deltas = torch.tensor([[0.5, 0.25, 1.0]])
    t = transmittance(sigma, deltas)
    torch.testing.assert_close(t, torch.tensor([[1.0, math.exp(-0.5), math.exp(-1.0)]]))
    alpha = density_to_alpha(sigma, deltas)
    torch.testing.assert_close(alpha, 1 - torch.exp(-torch.tensor([[0.5, 0.5, 0.5]])))
    w = render_weights(sigma, deltas)
    # the small functions agree with each other: w_i = T_i α_i and T_{i+1} = T_i (1 − α_i)
    torch.testing.assert_close(w, t * alpha)
    torch.testing.assert_close(t[:, 1:], t[:, :-1] * (1 - alpha[:, :-1]))


def test_weights_sum_to_opacity_at_most_one():
    g = torch.Generator().manual_seed(0)
    sigma = torch.rand(256, 32, generator=g) * 20
    deltas = torch.rand(256, 32, generator=g) * 0.2
    w = render_weights(sigma, deltas)
    acc = accumulate(w)
    assert (w >= 0).all() and (acc <= 1 + 1e-6).all()
    # 1 − acc is the light that passed every sample
    torch.testing.assert_close(
        1 - acc[:, 0], torch.exp(-(sigma * deltas).sum(-1)), atol=1e-6, rtol=0
    )


def test_opaque_slab_renders_its_depth_and_colour():
    n, d = 8, 2.7
    near, far = torch.full((n, 1), 1.0), torch.full((n, 1), 5.0)
    t = stratified_samples(near, far, 512, perturb=False)
    sigma = torch.where(t > d, torch.tensor(1e4), torch.tensor(0.0))
    rgb = torch.zeros(n, 512, 3)
    rgb[..., 0] = torch.where(t > d, 1.0, 0.3)  # red slab; anything before it would tint
    out = volume_render(rgb, sigma, t, interval_edges(t, near, far), torch.ones(3))
    torch.testing.assert_close(out.acc, torch.ones(n, 1))
    torch.testing.assert_close(out.depth, torch.full((n, 1), d), atol=4.0 / 512, rtol=0)
    torch.testing.assert_close(
        out.rgb, torch.tensor([[1.0, 0.0, 0.0]]).expand(n, 3), atol=1e-4, rtol=0
    )


def test_empty_space_shows_the_background():
    near, far = torch.zeros(3, 1), torch.ones(3, 1)
    t = stratified_samples(near, far, 16, perturb=False)
    edges = interval_edges(t, near, far)
    empty = volume_render(torch.rand(3, 16, 3), torch.zeros(3, 16), t, edges, torch.ones(3))
    torch.testing.assert_close(empty.rgb, torch.ones(3, 3))
    torch.testing.assert_close(empty.acc, torch.zeros(3, 1))
    # half-transparent grey over white and over black
    sigma = torch.full((3, 16), math.log(2.0))  # total optical depth ln 2 -> acc = 0.5
    grey = torch.full((3, 16, 3), 0.2)
    white = volume_render(grey, sigma, t, edges, torch.ones(3))
    black = volume_render(grey, sigma, t, edges, torch.zeros(3))
    torch.testing.assert_close(white.acc, torch.full((3, 1), 0.5))
    torch.testing.assert_close(white.rgb, torch.full((3, 3), 0.1 + 0.5))
    torch.testing.assert_close(black.rgb, torch.full((3, 3), 0.1))


def _uniform_medium(sigma: float, near: float, far: float, n_samples: int):
    """Weights and edges of rays through a medium of constant density ``sigma`` from ``near`` to
    ``far`` (one ray), sampled at ``n_samples`` evenly spaced points."""
    rays_near, rays_far = torch.tensor([[near]]), torch.tensor([[far]])
    t = stratified_samples(rays_near, rays_far, n_samples, perturb=False)
    edges = interval_edges(t, rays_near, rays_far)
    weights = render_weights(torch.full_like(t, sigma), edges[..., 1:] - edges[..., :-1])
    return weights, edges


def test_median_depth_is_exact_in_a_uniform_medium_at_any_sample_count():
    # light terminates at distance s past near with density σ e^(−σ s): half of the opacity
    # acc = 1 − e^(−σ (far − near)) lies in front of near − ln(1 − acc / 2) / σ
    sigma, near, far = 0.8, 1.0, 3.0
    acc = 1 - math.exp(-sigma * (far - near))
    truth = near - math.log(1 - acc / 2) / sigma
    for n_samples in (1, 3, 16, 64):
        weights, edges = _uniform_medium(sigma, near, far, n_samples)
        torch.testing.assert_close(
            median_depth(weights, edges), torch.tensor([[truth]]), atol=1e-5, rtol=0
        )


def test_median_depth_takes_the_surface_covering_most_of_a_pixel():
    # a ray that hits a thin wire with 30 % of its weight and the ground behind with 70 %: the
    # mean lies between them where nothing is; the median is the ground's depth
    t = torch.linspace(0.5, 9.5, 10)[None]  # samples 1 apart
    edges = interval_edges(t, torch.tensor([[0.0]]), torch.tensor([[10.0]]))
    weights = torch.zeros(1, 10)
    weights[0, 2], weights[0, 7] = 0.3, 0.7  # the wire at 2.5, the ground (opaque) at 7.5
    acc = accumulate(weights)
    assert abs(float(expected_depth(weights, t, acc)) - 6.0) < 1e-5  # nowhere near a surface
    median = float(median_depth(weights, edges))
    assert 7.0 <= median <= 8.0  # inside the ground's interval
    # an opaque interval's weight lies at its front (α capped at 1 − 1e-6: σδ ≈ 13.8, so the
    # median is ln(1 − 0.2857) / −13.8 ≈ 2.4 % of the interval in)
    assert median - 7.0 < 0.03
    # with the wire covering most of the pixel, the wire's depth
    weights[0, 2], weights[0, 7] = 0.7, 0.3
    assert 2.0 <= float(median_depth(weights, edges)) <= 3.0


def test_median_depth_ignores_a_see_through_remainder_and_keeps_empty_rays_finite():
    # a half-transparent surface over nothing: normalised by its opacity, the median is on it
    t = torch.linspace(0.5, 9.5, 10)[None].repeat(2, 1)
    edges = interval_edges(t, torch.zeros(2, 1), torch.full((2, 1), 10.0))
    weights = torch.zeros(2, 10)
    weights[0, 4] = 0.2  # the surface's interval [4, 5]; ray 1 hits nothing
    median = median_depth(weights, edges)
    assert 4.0 <= float(median[0]) <= 5.0
    assert float(median[1]) == 10.0  # no weight: the far end, not NaN
