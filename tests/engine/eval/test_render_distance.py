"""A camera farther away than the training rig, framing kept (focal length scaled with the
distance), sees the same NeRF: rays are bounded by the scene box, not by the training cameras'
near/far. An empty render is reported as such."""

from __future__ import annotations

import dataclasses

import numpy as np

from nerf_engine.checkpoint import load_run
from nerf_engine.data.dataset import read_split
from nerf_engine.eval.renderer import Renderer
from nerf_engine.tools.toy_scene import LOOK_AT, render_toy


def dolly(frame, factor: float):
    """``frame``'s camera moved ``factor`` times as far from the scene centre along its own
    line of sight, zoomed in by the same factor: the framing stays the same."""
    c2w = np.array(frame.camera_to_world, dtype=np.float64)
    c2w[:3, 3] = LOOK_AT + factor * (c2w[:3, 3] - LOOK_AT)
    k = frame.intrinsics
    return dataclasses.replace(k, fl_x=k.fl_x * factor, fl_y=k.fl_y * factor), c2w


def test_the_nerf_stays_whole_from_farther_than_the_rig(toy_dataset, preview_run):
    run = load_run(preview_run[0], "cpu")
    renderer = Renderer.for_run(run)
    frame = read_split(toy_dataset, "test").frames[0]
    sums = {}
    for factor in (1.0, 1.5, 2.0, 3.0):
        intrinsics, c2w = dolly(frame, factor)
        alpha = renderer.render(intrinsics, c2w).rgba[..., 3]
        truth = render_toy(intrinsics, c2w, supersample=1)[..., 3]
        sums[factor] = float(alpha.sum())
        print(f"{factor}x: NeRF alpha sum {alpha.sum():.1f}, ground truth {truth.sum():.1f}")
        # the scene is as big in the frame as from the rig (3× the training far: 7 < 12 - 2.3)
        assert abs(truth.sum() / sums[1.0] - 1.0) < 0.15
        assert np.abs(alpha - truth).mean() < 0.1
    assert min(sums.values()) >= 0.9 * sums[1.0]
