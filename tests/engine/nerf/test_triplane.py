"""The tri-plane field (``model.encoding="triplane"``, the ``fast`` preset): what the encoding
reads, that the planes learn faster than the MLP, and that everything else (checkpoints, resume,
rendering) works with it as with the paper's field."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from engine_helpers import tiny_config

from nerf_engine.checkpoint import load_run
from nerf_engine.config import ModelConfig, SamplingConfig, from_dict, preset
from nerf_engine.data.dataset import read_split
from nerf_engine.data.run_folder import RunFolder
from nerf_engine.eval.renderer import Renderer
from nerf_engine.nerf.model import NeRF
from nerf_engine.nerf.triplane import TriPlaneEncoding
from nerf_engine.train.trainer import Trainer, train

PLANES = {"model.plane_resolutions": "32,64,128", "model.plane_features": 8}
BOX = torch.tensor([[-1.0, -0.5, -0.25], [1.0, 0.5, 0.25]])  # not a cube: planes span it exactly


def tiny_triplane(**overrides):
    planes = {
        "model.encoding": "triplane",
        "model.plane_resolutions": "8,16",
        "model.plane_features": 4,
        "model.plane_tv": 1e-3,
    }
    return tiny_config(**(planes | overrides))


def test_the_encoding_multiplies_the_three_planes_and_concatenates_resolutions():
    encoding = TriPlaneEncoding((4, 8), features=3, unit_aabb=BOX)
    with torch.no_grad():
        for level, planes in enumerate(encoding.planes):
            planes.fill_(2.0 + level)
    points = torch.rand(50, 3) * (BOX[1] - BOX[0]) + BOX[0]
    out = encoding(points)
    assert out.shape == (50, 6) and encoding.out_dim == 6
    assert torch.allclose(out[:, :3], torch.full((50, 3), 8.0))  # 2 · 2 · 2
    assert torch.allclose(out[:, 3:], torch.full((50, 3), 27.0))  # 3 · 3 · 3


def test_the_planes_span_the_scene_box_whatever_its_shape():
    encoding = TriPlaneEncoding((5,), features=1, unit_aabb=BOX)
    with torch.no_grad():
        encoding.planes[0].fill_(1.0)
        encoding.planes[0][:, :, -1, -1] = 3.0  # the corner cell at (max, max) of every plane
    corner = encoding(BOX[1][None])  # the box's max corner lands on each plane's corner
    assert corner.item() == pytest.approx(27.0)
    outside = encoding(torch.tensor([[5.0, 5.0, 5.0]]))  # clamped to the border, never NaN
    assert outside.item() == pytest.approx(27.0)
    assert encoding(torch.zeros(1, 3)).item() == pytest.approx(1.0)  # the centre


def test_total_variation_is_zero_for_flat_planes_and_grows_with_roughness():
    encoding = TriPlaneEncoding((8, 16), features=2, unit_aabb=BOX)
    with torch.no_grad():
        for planes in encoding.planes:
            planes.fill_(0.3)
    assert encoding.total_variation().item() == 0.0
    with torch.no_grad():
        encoding.planes[1].add_(torch.randn_like(encoding.planes[1]))
    assert encoding.total_variation().item() > 0.1


def test_the_planes_get_their_own_learning_rate_and_gradients():
    config = tiny_triplane()
    model = NeRF(config.model, config.sampling, BOX)
    groups = model.parameter_groups(1e-3)
    assert [g["lr_scale"] for g in groups] == [1.0, config.model.plane_lr_scale]
    assert groups[1]["lr"] == pytest.approx(1e-3 * config.model.plane_lr_scale)
    n_planes = sum(p.numel() for p in groups[1]["params"])
    assert n_planes == 2 * 3 * 4 * (8 * 8 + 16 * 16)  # coarse and fine fields
    loss = model.coarse.density_at(torch.rand(64, 3) - 0.5).sum() + model.regularization()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in groups[1]["params"][:2])
    paper = NeRF(ModelConfig(), SamplingConfig())
    assert len(paper.parameter_groups(1e-3)) == 1 and paper.regularization() is None


def test_a_triplane_run_trains_checkpoints_resumes_and_renders(toy_dataset, tmp_path):
    run = tmp_path / "run"
    result = train(tiny_triplane(steps=30, eval_views=1), toy_dataset, run)
    assert result.stopped == "completed" and result.psnr > 8.0
    loaded = load_run(run, "cpu")
    assert loaded.config.model.encoding == "triplane"
    frame = read_split(toy_dataset, "test").frames[0]
    view = Renderer.for_run(loaded).render(frame.intrinsics, frame.camera_to_world)
    assert view.rgba.shape == (40, 40, 4) and view.rgba[..., 3].max() > 0.1
    resumed = train(tiny_triplane(steps=35), toy_dataset, run, resume=True)
    assert resumed.step == 35


def test_a_tri_plane_field_learns_the_toy_scene(toy_dataset, tmp_path):
    """Its loss falls as the paper's field's does (which field learns more per minute is a
    benchmark question: bench --suite)."""
    sizes = {"steps": 150, "sampling.n_coarse": 16, "sampling.n_fine": 16, "batch_rays": 512}
    sizes |= {"precrop_steps": 0, "model.depth": 1, "model.width": 64, **PLANES}
    trainer = Trainer(tiny_triplane(**sizes), str(toy_dataset), tmp_path / "run")
    mse = [float(trainer.step().fine_mse) for _ in range(150)]
    first, last = sum(mse[:10]) / 10, sum(mse[-10:]) / 10
    assert last < 0.75 * first, (first, last)  # (random backgrounds keep the loss noisy)


def test_runs_written_before_the_plane_settings_existed_still_resume(toy_dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(steps=5, eval_views=0), toy_dataset, run)
    folder = RunFolder(run)
    record = folder.read_config()
    for key in ("encoding", "plane_resolutions", "plane_features", "plane_lr_scale", "plane_tv"):
        del record["config"]["model"][key]  # as an older engine wrote it
    folder.config_path.write_text(json.dumps(record))
    old = from_dict(record["config"])
    assert old.model.encoding == "positional" and old.model.plane_resolutions == (64, 128, 256)
    resumed = train(tiny_config(steps=7, eval_views=0), toy_dataset, run, resume=True)
    assert resumed.step == 7


def test_the_fast_preset_is_the_preview_preset_with_tri_planes():
    fast, preview = preset("fast"), preset("preview")
    assert fast.model.encoding == "triplane" and preview.model.encoding == "positional"
    # the same sampler, batch, learning rates and steps: only the field differs
    assert replace(fast, model=preview.model, preset="preview") == preview
