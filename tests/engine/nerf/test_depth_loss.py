"""The depth loss: zero for all the weight at the true depth, growing as it moves away; rays that
hit nothing push their weights to zero; unknown depth supervises nothing."""

from __future__ import annotations

import itertools
import math

import torch

from nerf_engine.nerf.depth_loss import depth_loss, termination_loss
from nerf_engine.nerf.volume_rendering import render_weights

T_VALS = torch.linspace(2.0, 6.0, 41)[None]  # [1, 41] sample distances along one ray
FAR = torch.tensor([6.5])


def spike_at(index: int) -> torch.Tensor:
    weights = torch.zeros_like(T_VALS)
    weights[0, index] = 1.0
    return weights


def test_a_spike_at_the_true_depth_costs_nothing_and_more_the_further_it_moves():
    true = T_VALS[0, 20]
    depth = true[None]
    assert float(depth_loss(spike_at(20), T_VALS, depth, FAR)) == 0.0
    losses = [float(depth_loss(spike_at(20 + k), T_VALS, depth, FAR)) for k in range(1, 15)]
    assert all(b > a for a, b in itertools.pairwise(losses))
    # the same in front of the surface as behind it, and the squared distance exactly
    behind, in_front = (float(depth_loss(spike_at(20 + s), T_VALS, depth, FAR)) for s in (5, -5))
    assert math.isclose(behind, in_front, rel_tol=1e-5)
    assert math.isclose(behind, float((T_VALS[0, 25] - true) ** 2), rel_tol=1e-5)
    # half the weight missing costs; the same mass spread around the depth costs too
    assert float(depth_loss(0.5 * spike_at(20), T_VALS, depth, FAR)) > 0.2
    spread = 0.5 * (spike_at(15) + spike_at(25))
    assert float(termination_loss(spread, T_VALS, depth)[0]) > 0.0


def test_rays_that_hit_nothing_push_their_weights_to_zero():
    deltas = torch.full_like(T_VALS, 0.1)
    for depth in (torch.tensor([math.inf]), torch.tensor([9.0])):  # nothing, or beyond far
        raw = torch.zeros_like(T_VALS, requires_grad=True)  # σ = softplus(raw + 2): a dense ray
        optimizer = torch.optim.Adam([raw], lr=0.1)
        opacity = []
        for _ in range(100):
            weights = render_weights(torch.nn.functional.softplus(raw + 2.0), deltas)
            loss = depth_loss(weights, T_VALS, depth, FAR)
            opacity.append(float(weights.sum().detach()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert opacity[0] > 0.99 and opacity[-1] < 0.1


def test_unknown_depth_supervises_nothing_and_never_poisons_the_gradients():
    raw = torch.zeros(3, T_VALS.shape[1], requires_grad=True)
    weights = render_weights(torch.nn.functional.softplus(raw), torch.full_like(raw, 0.1))
    depth = torch.tensor([math.nan, math.inf, 4.0])
    loss = depth_loss(weights, T_VALS.expand(3, -1), depth, FAR.expand(3))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(raw.grad).all()
    assert (raw.grad[0] == 0).all() and raw.grad[1].abs().sum() > 0 and raw.grad[2].abs().sum() > 0
