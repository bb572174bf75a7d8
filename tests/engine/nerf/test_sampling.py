"""Sampling invariants: sorted, inside [near, far], inverse CDF reproduces the PDF, no NaN."""

from __future__ import annotations

import torch

from nerf_engine.nerf.sampling import (
    interval_edges,
    merge_samples,
    ray_aabb_intersect,
    sample_pdf,
    stratified_samples,
)


def bounds(n=128):
    g = torch.Generator().manual_seed(0)
    near = torch.rand(n, 1, generator=g) * 2
    far = near + 0.1 + torch.rand(n, 1, generator=g) * 3
    return near, far


def test_stratified_sorted_inside_and_one_per_bin():
    near, far = bounds()
    g = torch.Generator().manual_seed(1)
    t = stratified_samples(near, far, 16, perturb=True, generator=g)
    assert t.shape == (128, 16)
    assert (t[:, 1:] >= t[:, :-1]).all()
    assert (t >= near).all() and (t <= far).all()
    bin_index = ((t - near) / (far - near) * 16).floor().clamp_max(15)
    assert (bin_index == torch.arange(16).float()).all()
    centres = stratified_samples(near, far, 4, perturb=False)
    torch.testing.assert_close(centres[:, :1], near + (far - near) / 8)


def test_interval_edges_tile_near_to_far():
    near, far = bounds()
    t = stratified_samples(near, far, 8, perturb=True, generator=torch.Generator().manual_seed(2))
    edges = interval_edges(t, near, far)
    assert edges.shape == (128, 9)
    assert (edges[:, 1:] >= edges[:, :-1]).all()
    torch.testing.assert_close((edges[:, 1:] - edges[:, :-1]).sum(-1, keepdim=True), far - near)
    assert ((t >= edges[:, :-1]) & (t <= edges[:, 1:])).all()  # each sample inside its interval


def test_inverse_cdf_reproduces_a_piecewise_constant_pdf():
    edges = torch.tensor([[0.0, 1.0, 2.0, 4.0, 5.0]])
    weights = torch.tensor([[0.1, 0.0, 0.6, 0.3]])
    g = torch.Generator().manual_seed(3)
    samples = torch.cat(
        [sample_pdf(edges, weights, 1000, perturb=True, generator=g) for _ in range(40)], -1
    )
    hist = torch.histogram(samples[0], bins=edges[0]).hist / samples.numel()
    torch.testing.assert_close(hist, weights[0] / weights.sum(), atol=0.01, rtol=0)
    # uniform inside a bin: the mean of the samples in [2, 4) is ≈ 3
    in_bin = samples[(samples >= 2) & (samples < 4)]
    assert abs(in_bin.mean().item() - 3.0) < 0.02


def test_deterministic_pdf_samples_are_sorted_and_inside():
    near, far = bounds(64)
    t = stratified_samples(near, far, 8, perturb=False)
    weights = torch.rand(64, 8, generator=torch.Generator().manual_seed(4))
    fine = sample_pdf(interval_edges(t, near, far), weights, 32, perturb=False)
    assert (fine[:, 1:] >= fine[:, :-1]).all()
    assert (fine >= near).all() and (fine <= far).all()
    torch.testing.assert_close(
        fine, sample_pdf(interval_edges(t, near, far), weights, 32, perturb=False)
    )


def test_all_zero_weights_give_no_nan_and_spread_uniformly():
    near, far = torch.zeros(4, 1), torch.ones(4, 1)
    edges = interval_edges(stratified_samples(near, far, 8, perturb=False), near, far)
    fine = sample_pdf(edges, torch.zeros(4, 8), 64, perturb=False)
    assert torch.isfinite(fine).all()
    torch.testing.assert_close(fine[0], (torch.arange(64) + 0.5) / 64, atol=0.02, rtol=0)
    # zero-length rays (missed the scene box) too
    flat = sample_pdf(torch.zeros(2, 9), torch.zeros(2, 8), 4, perturb=True)
    assert torch.isfinite(flat).all() and (flat == 0).all()


def test_merge_is_a_sorted_union():
    a, b = torch.tensor([[0.1, 0.5, 0.9]]), torch.tensor([[0.2, 0.95]])
    torch.testing.assert_close(merge_samples(a, b), torch.tensor([[0.1, 0.2, 0.5, 0.9, 0.95]]))


def test_ray_box_intersection():
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    o = torch.tensor([[0.0, 0.0, -5.0], [0.0, 3.0, -5.0], [0.0, 0.0, 0.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    t_in, t_out = ray_aabb_intersect(o, d, aabb)
    torch.testing.assert_close(t_in[0], torch.tensor([4.0]))
    torch.testing.assert_close(t_out[0], torch.tensor([6.0]))
    assert t_out[1] <= t_in[1]  # miss
    assert t_in[2] < 0 < t_out[2]  # origin inside: exits at 1
    torch.testing.assert_close(t_out[2], torch.tensor([1.0]))
