"""A Blender export's depth maps, read by the engine, are the scene's surfaces: every pixel's
depth back-projects onto the default cube, pixels that see nothing hit nothing, and the training
grid starts from them (the cube's surfaces and inside kept); with them the same steps give a lower
depth error on held-out views."""

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
from blender_nerf.nerf_engine.eval.evaluate import evaluate_views  # noqa: E402
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
    # the inside of the solid cube is never seen, so never carved: a young field needs its
    # samples there to turn opaque (the space in front of surfaces is carved: test_occupancy.py)
    inside = torch.tensor((np.zeros((1, 3)) - box.center) / box.scale, dtype=torch.float32)
    assert grid.query(inside).all()


def test_an_exported_scene_trains_to_a_lower_depth_error_with_its_depth(scene, tmp_path):
    """Issue 16: the default cube exported with depth maps (16×16 pixels, 40 views), trained the
    same steps with them (the depth loss and the grid started from them: the defaults) and
    without (``depth_loss=0``); the rendered depth on its held-out views is nearer Blender's
    (measured: 2.1 % against 2.9 % of the box diagonal, with the footprint carving of small
    exports; the margin asked, 0.85×, leaves room for another machine's rounding)."""
    configure_fast_render(scene, size=(16, 16), samples=16)
    dataset = tmp_path / "data"
    settings = {"rig_views": 40, "export_depth": True, "film_transparent": True}
    assert export(scene, dataset, **settings) == {"FINISHED"}, scene.nerf.job_status
    errors = {}
    for name, weight in (("with", 0.1), ("without", 0.0)):
        config = with_overrides(
            preset("preview"),
            {"device": "cpu", "steps": 300, "batch_rays": 256, "depth_loss": weight,
             "eval_views": 0},
        )  # fmt: skip
        trainer = Trainer(config, str(dataset), tmp_path / name)
        for _ in range(config.steps):
            trainer.step()
        errors[name] = evaluate_views(trainer.renderer, read_split(dataset, "test"))["depth_error"]
    assert errors["with"] < 0.85 * errors["without"], errors
