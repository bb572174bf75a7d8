"""Training learns without collapsing, resumes exactly, stops on budget, keeps good runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import tiny_config

from nerf_engine.checkpoint import CheckpointError, load_run, read_checkpoint
from nerf_engine.config import preset, validate
from nerf_engine.data.dataset import DatasetError, load_rgba, read_split
from nerf_engine.data.events import EVENT_KINDS
from nerf_engine.data.images import composite
from nerf_engine.data.run_folder import RunFolder
from nerf_engine.eval.metrics import psnr
from nerf_engine.eval.renderer import Renderer
from nerf_engine.tools.toy_scene import AABB
from nerf_engine.train.trainer import Trainer, learning_rate, train


def read_events(run_dir):
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def constant_colour_psnr(dataset, background=(1.0, 1.0, 1.0)) -> float:
    """The best a model that ignores the scene can do: every pixel the mean test colour."""
    images = [composite(rgba, background) for rgba in load_rgba(read_split(dataset, "test"))]
    mean = np.mean([im.reshape(-1, 3).mean(0) for im in images], axis=0)
    return float(np.mean([psnr(np.broadcast_to(mean, im.shape), im) for im in images]))


def test_preview_training_learns_the_scene_and_does_not_collapse(toy_dataset, preview_run):
    """The toy scene has a wide flat ground disc and a transparent background — the case where a
    plain NeRF (ReLU density) collapses to an all-background image."""
    run, result = preview_run
    baseline = constant_colour_psnr(toy_dataset)
    metrics = json.loads((run / "metrics.json").read_text())
    print(
        f"toy scene 40x40, preview 400 steps: test PSNR {result.psnr:.2f} dB, "
        f"SSIM {metrics['ssim']:.3f}; constant-colour baseline {baseline:.2f} dB"
    )
    assert result.stopped == "completed" and result.step == 400
    assert metrics["n_views"] == 3 and metrics["psnr"] == pytest.approx(result.psnr)
    assert result.psnr > baseline + 6.0
    # not collapsed: where the ground truth is opaque, the model is too
    renderer = Renderer.for_run(load_run(run, "cpu"))
    split = read_split(toy_dataset, "test")
    for frame, rgba in zip(split.frames, load_rgba(split), strict=True):
        view = renderer.render(frame.intrinsics, frame.camera_to_world)
        opaque = rgba[..., 3] > 0.99
        assert view.rgba[..., 3][opaque].mean() > 0.8
        assert view.rgba[..., 3][rgba[..., 3] == 0].mean() < 0.2


def test_events_follow_the_contract(toy_dataset, tmp_path):
    seen = []
    train(tiny_config(steps=10), toy_dataset, tmp_path / "run", on_event=seen.append)
    events = read_events(tmp_path / "run")
    assert [e["event"] for e in events] == [e["event"] for e in seen]
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert {e["event"] for e in events} >= {
        "start",
        "progress",
        "preview",
        "checkpoint",
        "eval",
        "done",
    }
    for event in events:
        assert event["event"] in EVENT_KINDS and isinstance(event["step"], int)
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [5, 10]
    for e in progress:
        for key in ("loss", "psnr", "rays_per_s", "elapsed_s", "eta_s"):
            assert isinstance(e[key], float) and np.isfinite(e[key]), key
    assert progress[-1]["eta_s"] == 0.0
    preview = next(e for e in events if e["event"] == "preview")
    for key in ("path", "latest", "target"):
        assert Path(preview[key]).is_file()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["config"]["steps"] == 10 and config["dataset"] == str(toy_dataset.resolve())


def stop_at(step: int, seen: list):
    return lambda: any(e["event"] == "progress" and e["step"] >= step for e in seen)


def test_stop_and_resume_equals_an_uninterrupted_run(toy_dataset, tmp_path):
    config = tiny_config(steps=16, log_every=1, checkpoint_every=100, eval_views=0)
    train(config, toy_dataset, tmp_path / "straight")
    seen: list = []
    first = train(
        config,
        toy_dataset,
        tmp_path / "resumed",
        on_event=seen.append,
        should_stop=stop_at(7, seen),
    )
    assert (first.stopped, first.step) == ("cancelled", 7)
    assert [p.name for p in RunFolder(tmp_path / "resumed").checkpoints()] == ["step_0000007.pt"]
    second = train(config, toy_dataset, tmp_path / "resumed", resume=True)
    assert (second.stopped, second.step) == ("completed", 16)
    a = read_checkpoint(RunFolder(tmp_path / "straight").checkpoints()[-1])
    b = read_checkpoint(RunFolder(tmp_path / "resumed").checkpoints()[-1])
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=0, atol=1e-6, msg=key)
    assert torch.equal(a["generator"], b["generator"])
    events = read_events(tmp_path / "resumed")
    starts = [e for e in events if e["event"] == "start"]
    assert [(s["step"], s["resumed"]) for s in starts] == [(0, False), (7, True)]


def test_time_budget_stops_with_a_checkpoint(toy_dataset, tmp_path):
    result = train(tiny_config(steps=100_000, max_seconds=1.5), toy_dataset, tmp_path / "run")
    assert result.stopped == "time_budget" and 0 < result.step < 100_000
    assert RunFolder(tmp_path / "run").checkpoints()[-1].name == f"step_{result.step:07d}.pt"


def test_a_budget_without_steps_trains_on_the_clock_and_decays_over_it(toy_dataset, tmp_path):
    """steps = 0: the time budget alone ends training, and the learning rate reaches its final
    value at the end of the budget, not of a step count."""
    config = tiny_config(steps=0, max_seconds=2.5, log_every=2, eval_views=0)
    seen: list[dict] = []
    result = train(config, toy_dataset, tmp_path / "run", on_event=seen.append)
    assert result.stopped == "time_budget" and result.step > 0
    start = next(e for e in seen if e["event"] == "start")
    assert (start["total_steps"], start["max_seconds"]) == (0, 2.5)
    progress = [e for e in seen if e["event"] == "progress"]
    assert len(progress) >= 2 and all(e["total_steps"] == 0 for e in progress)
    decay = np.log(config.lr_final / config.lr)
    share = [np.log(e["lr"] / config.lr) / decay for e in progress]  # 0 at the start, 1 at the end
    assert share == sorted(share) and share[-1] > 0.8  # the last report is near the budget's end
    for e, s in zip(progress, share, strict=True):
        assert s == pytest.approx(e["elapsed_s"] / 2.5, abs=0.1)  # the clock sets the schedule
    assert learning_rate(config, result.step, 1.0) == pytest.approx(config.lr_final)
    assert progress[-1]["eta_s"] < 1.0  # what is left of the budget


def test_steps_zero_needs_a_budget():
    with pytest.raises(ValueError, match=r"steps must be at least 1 \(or 0 with a time budget"):
        validate(tiny_config(steps=0))
    validate(tiny_config(steps=0, max_seconds=1.0))


def test_an_existing_run_is_never_overwritten(toy_dataset, tmp_path):
    train(tiny_config(steps=5), toy_dataset, tmp_path / "run")
    ckpt = RunFolder(tmp_path / "run").checkpoints()[-1]
    before = ckpt.read_bytes()
    with pytest.raises(CheckpointError, match="--resume"):
        train(tiny_config(steps=5), toy_dataset, tmp_path / "run")
    assert ckpt.read_bytes() == before
    with pytest.raises(CheckpointError, match="different model settings"):
        train(
            tiny_config(steps=10, **{"model.width": 48}), toy_dataset, tmp_path / "run", resume=True
        )
    assert RunFolder(tmp_path / "run").checkpoints() == [ckpt] and ckpt.read_bytes() == before
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        train(tiny_config(), toy_dataset, tmp_path / "fresh", resume=True)


def test_a_bad_dataset_fails_with_an_error_event_and_no_checkpoint(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "transforms_train.json").write_text('{"frames": []}')
    with pytest.raises(DatasetError, match=r"transforms_train\.json.*frames"):
        train(tiny_config(), tmp_path / "data", tmp_path / "run")
    events = read_events(tmp_path / "run")
    assert events[-1]["event"] == "error" and "no frames" in events[-1]["message"]
    assert RunFolder(tmp_path / "run").checkpoints() == []


def test_learning_rate_decays_exponentially_to_its_final_value():
    config = preset("paper")
    assert learning_rate(config, 0) == pytest.approx(5e-4)
    assert learning_rate(config, config.steps) == pytest.approx(5e-5)
    assert learning_rate(config, config.steps // 2) == pytest.approx((5e-4 * 5e-5) ** 0.5)


def test_bounds_estimated_for_datasets_without_them(toy_dataset_no_bounds, tmp_path):
    result = train(tiny_config(steps=4), toy_dataset_no_bounds, tmp_path / "run")
    box = load_run(result.run_dir, "cpu").box
    content = AABB  # the true extent of the ground disc and the spheres
    assert (box.aabb[0] <= content[0]).all() and (box.aabb[1] >= content[1]).all()
    corners = np.array(
        [[x, y, z] for x in content[:, 0] for y in content[:, 1] for z in content[:, 2]]
    )
    for split in ("train", "test"):
        origins = read_split(toy_dataset_no_bounds, split).poses()[:, :3, 3]
        distance = np.linalg.norm(origins[:, None] - corners[None], axis=-1)
        assert box.near <= 0.5 * distance.min()  # nothing of the scene is nearer than near
        assert box.far >= distance.max()  # nor farther than far


def test_final_step_is_saved_and_previewed_once(toy_dataset, tmp_path):
    train(tiny_config(steps=10), toy_dataset, tmp_path / "run")  # 10 is a checkpoint/preview step
    kinds = [(e["event"], e["step"]) for e in read_events(tmp_path / "run")]
    assert kinds.count(("checkpoint", 10)) == 1 and kinds.count(("preview", 10)) == 1
    done = read_events(tmp_path / "run")[-1]
    assert done["checkpoint"].endswith("step_0000010.pt")


def test_stopped_before_the_first_step_writes_no_checkpoint(toy_dataset, tmp_path):
    result = train(tiny_config(steps=10), toy_dataset, tmp_path / "run", should_stop=lambda: True)
    assert (result.stopped, result.step) == ("cancelled", 0)
    assert RunFolder(tmp_path / "run").checkpoints() == []
    assert read_events(tmp_path / "run")[-1]["checkpoint"] is None


def test_bf16_trains_to_the_psnr_of_fp32(toy_dataset, tmp_path):
    """Mixed precision must not cost quality: same seed and steps, within 0.3 dB."""
    psnrs = {}
    for precision in ("off", "bf16"):
        config = tiny_config(
            **{"steps": 200, "model.depth": 4, "model.width": 64, "model.view_width": 32,
               "sampling.n_coarse": 16, "sampling.n_fine": 16, "batch_rays": 256,
               "mixed_precision": precision, "eval_views": 3, "preview_every": 1000}
        )  # fmt: skip
        psnrs[precision] = train(config, toy_dataset, tmp_path / precision).psnr
    print(f"200 steps: fp32 {psnrs['off']:.3f} dB, bf16 {psnrs['bf16']:.3f} dB")
    assert abs(psnrs["bf16"] - psnrs["off"]) < 0.3
    assert psnrs["off"] > 13.0  # it did learn something (constant colour: about 12 dB)


def _alpha_error(run_dir, dataset) -> float:
    """Mean |rendered opacity − ground-truth alpha| over the test views."""
    renderer = Renderer.for_run(load_run(run_dir, "cpu"))
    split = read_split(dataset, "test")
    errors = [
        np.abs(renderer.render(f.intrinsics, f.camera_to_world).rgba[..., 3] - rgba[..., 3]).mean()
        for f, rgba in zip(split.frames, load_rgba(split), strict=True)
    ]
    return float(np.mean(errors))


def test_the_alpha_loss_teaches_opacity_over_a_constant_background(toy_dataset, tmp_path):
    """Over a constant white background, white matter and empty space look alike; the alpha loss
    (rendered opacity against the images' alpha) tells them apart."""
    errors = {}
    for weight in (0.0, 1.0):
        config = tiny_config(
            steps=300, batch_rays=256, random_background=False, alpha_loss=weight,
            eval_views=0, checkpoint_every=300, preview_every=300, **{"model.width": 64},
        )  # fmt: skip
        train(config, toy_dataset, tmp_path / f"run_{weight}")
        errors[weight] = _alpha_error(tmp_path / f"run_{weight}", toy_dataset)
    print(f"alpha error without / with the alpha loss: {errors[0.0]:.3f} / {errors[1.0]:.3f}")
    assert errors[1.0] < 0.85 * errors[0.0]
    with pytest.raises(ValueError, match="alpha_loss must be >= 0"):
        validate(tiny_config(alpha_loss=-1.0))


def test_the_coarse_loss_weight_is_what_the_coarse_network_learns_from(toy_dataset, tmp_path):
    """``coarse_loss`` weighs the coarse render's MSE: the coarse network's first gradient scales
    with it (same seed, same rays), and at 0 (no depth loss either) Adam leaves it as it was."""
    first_grad, moved = {}, {}
    for weight in (0.0, 0.1, 1.0):
        config = tiny_config(coarse_loss=weight, depth_loss=0.0, precrop_steps=0)
        trainer = Trainer(config, str(toy_dataset), tmp_path / f"run_{weight}")
        before = [p.detach().clone() for p in trainer.model.coarse.parameters()]
        trainer.step()
        first_grad[weight] = sum(float(p.grad.norm()) for p in trainer.model.coarse.parameters())
        trainer.step()
        after = list(trainer.model.coarse.parameters())
        moved[weight] = sum(float((a - b).abs().sum()) for a, b in zip(after, before, strict=True))
    print(f"coarse network's first gradient norm by coarse_loss: {first_grad}; change: {moved}")
    assert first_grad[0.0] == 0.0 and moved[0.0] == 0.0
    assert first_grad[0.1] == pytest.approx(0.1 * first_grad[1.0], rel=0.05)
    assert moved[0.1] > 0.0
    with pytest.raises(ValueError, match="coarse_loss must be >= 0"):
        validate(tiny_config(coarse_loss=-0.5))
