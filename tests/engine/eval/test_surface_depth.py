"""The renderer's depth is the median of each hit ray's termination distribution, put back at
the ray's place in the chunk; rays that miss the scene box keep what ``render_rays`` gave them."""

from __future__ import annotations

import torch

from nerf_engine.eval.renderer import _surface_depth
from nerf_engine.nerf.rays import RayBatch
from nerf_engine.nerf.sampling import interval_edges
from nerf_engine.nerf.volume_rendering import RenderOutput, expected_depth, median_depth


def test_hit_rays_get_their_median_depth_and_missed_rays_keep_theirs():
    # four rays: 0 and 2 miss the box (near == far), 1 and 3 hit it on [0, 10]
    near = torch.tensor([[4.0], [0.0], [7.0], [0.0]])
    far = torch.tensor([[4.0], [10.0], [7.0], [10.0]])
    rays = RayBatch(torch.zeros(4, 3), torch.tensor([[0.0, 0.0, 1.0]] * 4), near, far)
    t = torch.linspace(0.5, 9.5, 10)[None].repeat(2, 1)  # the hit rays' samples
    weights = torch.zeros(2, 10)
    weights[0, 2], weights[0, 7] = 0.3, 0.7  # a wire in front of the ground: the ground
    weights[1, 2], weights[1, 7] = 0.7, 0.3  # mostly the wire: the wire
    acc = weights.sum(-1, keepdim=True)
    mean = expected_depth(weights, t, acc)
    out = RenderOutput(
        rgb=torch.zeros(4, 3),
        depth=torch.stack([near[0], mean[0], near[2], mean[1]]),
        acc=torch.cat([torch.zeros(1, 1), acc[:1], torch.zeros(1, 1), acc[1:]]),
        weights=weights,
        t_vals=t,
    )
    depth = _surface_depth(out, rays)
    median = median_depth(weights, interval_edges(t, near[[1, 3]], far[[1, 3]]))
    torch.testing.assert_close(depth[[1, 3]], median)
    assert 7.0 <= float(depth[1]) <= 8.0 and 2.0 <= float(depth[3]) <= 3.0
    torch.testing.assert_close(depth[[0, 2]], near[[0, 2]])  # untouched
