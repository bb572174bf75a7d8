"""A Blender export's depth maps, read by the engine, are the scene's surfaces: every pixel's
depth back-projects onto the default cube, pixels that see nothing hit nothing, and the training
grid starts around those surfaces (empty inside and outside the cube)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

bpy = pytest.importorskip("bpy")

from addon_helpers import configure_fast_render, export  # noqa: E402

from blender_nerf.nerf_engine.config import preset, with_overrides  # noqa: E402
from blender_nerf.nerf_engine.data.cameras import image_rays  # noqa: E402
from blender_nerf.nerf_engine.data.dataset import iter_views, read_split  # noqa: E402
from blender_nerf.nerf_engine.data.depth import read_depth  # noqa: E402
from blender_nerf.nerf_engine.train.trainer import Trainer  # noqa: E402


def test_exported_depth_is_the_cube_surface_and_starts_the_grid(scene, tmp_path):
    configure_fast_render(scene, size=(16, 16), samples=1)
    dataset = tmp_path / "data"
    settings = {"rig_views": 6, "export_depth": True, "film_transparent": True}
    assert export(scene, dataset, **settings) == {"FINISHED"}, scene.nerf.job_status
    split, seen = read_split(dataset, "train"), []
    for index, (rgba, _) in enumerate(iter_views(split)):
        depth, frame = read_depth(split, index), split.frames[index]
        rays_o, rays_d = image_rays(frame.intrinsics, frame.camera_to_world)
        surface = np.isfinite(depth)
        points = rays_o[surface] + depth[surface][:, None] * rays_d[surface]
        assert np.abs(np.abs(points).max(axis=-1) - 1.0).max() < 1e-3  # on a face of [-1, 1]³
        assert np.isinf(depth[rgba[..., 3] == 0]).all()  # the exporter's 0: nothing was hit
        assert surface.mean() > 0.2
        seen.append(points)
    config = with_overrides(preset("preview"), {"device": "cpu", "steps": 1})
    trainer = Trainer(config, str(dataset), tmp_path / "run")
    grid = trainer.model.occupancy
    assert trainer.grid_seeded
    box = trainer.box
    points = torch.tensor((np.concatenate(seen) - box.center) / box.scale, dtype=torch.float32)
    assert grid.query(points).all()  # never a cell holding a surface point empty
    inside = torch.tensor((np.zeros((1, 3)) - box.center) / box.scale, dtype=torch.float32)
    assert not grid.query(inside).any()  # the middle of the solid cube is skipped from step 0
    assert grid.occupied_fraction() < 0.6
