"""Volume rendering: weights vs opacity, an opaque slab, hand-computed transmittance, background."""

from __future__ import annotations

import math

import torch

from nerf_engine.nerf.sampling import interval_edges, stratified_samples
from nerf_engine.nerf.volume_rendering import (
    accumulate,
    density_to_alpha,
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
