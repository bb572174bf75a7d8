"""Train NeRF through the operator and through the panel's timer path, with the real engine on a
tiny dataset: the run folder, the scene's progress, the preview images, one job per scene,
cancel and resume."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    RecordingLayout,
    engine_children,
    read_events,
    time_limit,
    tiny_dataset,
    tiny_training,
)

from blender_nerf.jobs import process, watcher  # noqa: E402
from blender_nerf.nerf_engine.checkpoint import read_checkpoint  # noqa: E402
from blender_nerf.scene import scene_io  # noqa: E402
from blender_nerf.train import start as train  # noqa: E402
from blender_nerf.train.job import TrainRequest, parse_extra_args  # noqa: E402
from blender_nerf.ui import panels  # noqa: E402

LIMIT_S = 120


@pytest.fixture(autouse=True)
def _no_hang():
    with time_limit(LIMIT_S):
        yield
    assert process.live_jobs() == [], "a trainer outlived its test"


def _draw(draw=panels.draw_training):
    layout = RecordingLayout()
    draw(layout, bpy.context)
    return layout.calls


def _tick_until(job, condition, seconds=LIMIT_S / 2):
    """What Blender's timer does (at a shorter interval), until ``condition()`` holds."""
    with time_limit(seconds):
        while not condition():
            assert watcher.tick() is not None or job.done
            time.sleep(0.02)
    return job


def test_train_through_the_operator(scene, tmp_path):
    data, run = tiny_dataset(scene, tmp_path / "data"), tmp_path / "run"
    tiny_training(scene, run, steps=20)
    assert bpy.ops.nerf.train() == {"FINISHED"}

    assert (run / "config.json").is_file() and (run / "metrics.json").is_file()
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))[-1] == "step_0000020.pt"
    events = read_events(run)
    assert events[0]["event"] == "start" and events[0]["total_steps"] == 20
    assert events[-1] == {**events[-1], "event": "done", "stopped": "completed", "step": 20}
    assert any(e["event"] == "preview" for e in events)
    nerf = scene.nerf
    assert not nerf.job_running and nerf.job_progress == 1.0
    assert nerf.train_step == nerf.train_total_steps == 20
    assert nerf.train_loss > 0 and nerf.train_psnr > 0 and nerf.train_rays_per_s > 0
    assert nerf.job_status.startswith(f"Trained to step 20 in '{run}'")
    assert str(data) in (run / "config.json").read_text()

    for attr, name in (("preview_image", "latest.png"), ("target_image", "target.png")):
        image = getattr(nerf, attr)
        assert image is not None and image.name in bpy.data.images
        assert bpy.path.abspath(image.filepath) == str(run / "previews" / name)
        expected = scene_io.read_image(run / "previews" / name)
        assert tuple(image.size) == (expected.shape[1], expected.shape[0])
        shown = np.empty(image.size[0] * image.size[1] * 4, dtype=np.float32)
        image.preview.image_pixels_float.foreach_get(shown)
        pixels = np.empty_like(shown)
        image.pixels.foreach_get(pixels)
        assert np.array_equal(shown, pixels), "the preview icon does not show the new pixels"
    calls = _draw()
    assert ("label", "NeRF Preview") in calls and ("label", "NeRF Ground Truth") in calls
    assert ("label", "Run Folder holds step_0000020.pt: Resume, or pick a new folder") in calls


def test_the_panel_path_polls_from_the_timer_and_trains_one_job_at_a_time(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run", steps=30)
    assert bpy.ops.nerf.train.poll()
    assert ("operator", "nerf.train") in _draw()

    job = train.start(bpy.context)
    assert scene.nerf.job_running and train.running_job(scene) is job
    assert not bpy.ops.nerf.train.poll() and not bpy.ops.nerf.export_dataset.poll()
    with pytest.raises(RuntimeError, match="poll"):  # pressing Train again
        bpy.ops.nerf.train()
    with pytest.raises(scene_io.SceneError, match="already running"):
        train.start(bpy.context)
    assert engine_children() == [job.pid] and process.live_jobs() == [job]

    _tick_until(job, lambda: scene.nerf.train_step > 0)
    calls = _draw()
    assert ("operator", "nerf.cancel_job") in calls and ("operator", "nerf.train") not in calls
    assert any(c[0] == "progress" for c in calls)
    assert ("progress", scene.nerf.job_progress) in _draw(panels.draw_main)
    assert scene.nerf.job_status.startswith("Training: step ")

    _tick_until(job, lambda: not scene.nerf.job_running)
    assert job.state == "finished" and watcher.tick() is None  # the timer stops itself
    assert scene.nerf.job_progress == 1.0 and scene.nerf.train_step == 30
    assert scene.nerf.preview_image is not None
    assert engine_children() == []
    assert bpy.ops.nerf.train.poll()


def test_cancel_keeps_a_checkpoint_and_resume_continues_from_it(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    run = tmp_path / "run"
    tiny_training(scene, run, steps=100000)
    job = train.start(bpy.context)
    _tick_until(job, lambda: job.checkpoint is not None)

    job.cancel()  # graceful: the trainer finishes its step, checkpoints and exits
    assert job.state == "cancelled" and job.returncode == 0 and not job.killed
    assert job.stopped == "signal"
    stopped_at = job.step
    saved = run / "checkpoints" / f"step_{stopped_at:07d}.pt"
    assert job.checkpoint == str(saved) and saved.is_file()
    assert read_checkpoint(saved)["step"] == stopped_at
    watcher.tick()  # the timer notices and finishes the job
    nerf = scene.nerf
    assert not nerf.job_running
    assert f"stopped at step {stopped_at} of 100000" in nerf.job_status
    assert "Resume continues from it" in nerf.job_status

    with pytest.raises(RuntimeError, match="already holds a trained run"):
        bpy.ops.nerf.train()  # a new training would overwrite it: refused
    nerf.train_steps = stopped_at + 6
    assert bpy.ops.nerf.train(resume=True) == {"FINISHED"}
    starts = [e for e in read_events(run) if e["event"] == "start"]
    assert [s["step"] for s in starts] == [0, stopped_at]
    assert starts[-1]["resumed"] is True
    assert read_events(run)[-1]["stopped"] == "completed"
    assert nerf.train_step == stopped_at + 6 and nerf.job_progress == 1.0


def test_cancel_operator_waits_for_the_checkpoint_headless(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run", steps=100000)
    assert not bpy.ops.nerf.cancel_job.poll()
    job = train.start(bpy.context)
    _tick_until(job, lambda: job.step > 0)
    assert bpy.ops.nerf.cancel_job.poll()
    assert bpy.ops.nerf.cancel_job() == {"FINISHED"}
    assert job.state == "cancelled" and not scene.nerf.job_running
    assert (tmp_path / "run" / "checkpoints" / f"step_{job.step:07d}.pt").is_file()
    assert not bpy.ops.nerf.cancel_job.poll() and bpy.ops.nerf.train.poll()


def test_a_time_budget_ends_the_run_and_fills_the_bar(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run", steps=100000)
    scene.nerf.train_seconds = 1.0
    assert bpy.ops.nerf.train() == {"FINISHED"}
    done = read_events(tmp_path / "run")[-1]
    assert done["stopped"] == "time_budget" and 0 < done["step"] < 100000
    assert "(time budget reached)" in scene.nerf.job_status
    assert scene.nerf.job_progress == 1.0 and scene.nerf.train_total_steps == 100000


def test_a_time_budget_without_steps_trains_for_the_whole_budget(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run", steps=0)  # the preset's 6000 steps would end it later
    scene.nerf.train_seconds = 2.0
    job = train.start(bpy.context)
    _tick_until(job, lambda: job.step > 0)
    assert scene.nerf.train_total_steps == 0  # no step count to show
    assert ", " in job.status() and "of 2s" in job.status()
    with time_limit(120):
        while watcher.tick() is not None:
            time.sleep(0.05)
    done = read_events(tmp_path / "run")[-1]
    assert done["stopped"] == "time_budget" and job.total_steps == 0  # the budget ended it
    assert done["step"] > 0 and job.budget_s == 2.0
    assert scene.nerf.job_progress == 1.0


def test_loading_a_file_stops_the_training_of_the_old_one(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    run = tmp_path / "run"
    tiny_training(scene, run, steps=100000)
    job = train.start(bpy.context)
    _tick_until(job, lambda: job.step > 0)
    path = tmp_path / "saved while training.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert job.stop_requested and not bpy.context.scene.nerf.job_running
    with time_limit(60):
        while watcher.tick() is not None:  # the timer reaps the detached trainer
            time.sleep(0.02)
    assert job.state == "cancelled" and job.stopped == "signal" and engine_children() == []
    assert (run / "checkpoints" / f"step_{job.step:07d}.pt").is_file()
    assert bpy.ops.nerf.train.poll()


def test_the_training_panel_draws_through_its_class(scene):
    layout = RecordingLayout()
    panels.NERF_PT_training.draw(SimpleNamespace(layout=layout), bpy.context)
    drawn = {c[2] for c in layout.calls if c[0] == "prop"}
    assert {"dataset_dir", "run_dir", "preset", "train_steps", "train_seconds", "device"} <= drawn
    assert layout.calls.count(("operator", "nerf.train")) == 2  # Train and Resume
    assert panels.NERF_PT_training.bl_parent_id == panels.NERF_PT_main.bl_idname


def test_train_request_command_lines(tmp_path):
    request = TrainRequest("/data", "/run", preset="paper", steps=0, device="cuda")
    assert request.command("py") == [
        "py", "-m", "nerf_engine", "train", "/data", "--out", "/run", "--events", "jsonl",
        "--device", "cuda", "--preset", "paper",
    ]  # fmt: skip
    budget = TrainRequest("/d", "/r", steps=500, max_seconds=90.5, resume=True, extra_args=("-x",))
    assert budget.command("py")[9:] == [
        "--device", "auto", "--steps", "500", "--max-seconds", "90.5", "--resume", "-x",
    ]  # fmt: skip
    whole_budget = TrainRequest("/d", "/r", steps=0, max_seconds=600).command("py")
    assert "--steps" not in whole_budget  # the engine trains for the whole budget by itself
    assert whole_budget[-2:] == ["--max-seconds", "600"]
    assert parse_extra_args("--set 'a=b c' --set x=1") == ("--set", "a=b c", "--set", "x=1")
    for managed in ("--resume", "--events=jsonl", "--out"):
        with pytest.raises(ValueError, match=f"{managed.split('=')[0]} is set by the panel"):
            parse_extra_args(managed)
