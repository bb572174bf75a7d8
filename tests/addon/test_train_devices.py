"""Training on several devices from the add-on: the "Devices" count starts the trainer under
torchrun (an argument list), its progress reaches the end and Resume continues it — the real
operator, the real engine on two CPU processes (one thread each)."""

from __future__ import annotations

import time

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    RecordingLayout,
    read_events,
    time_limit,
    tiny_dataset,
    tiny_training,
)

from blender_nerf import properties_devices as devices  # noqa: E402
from blender_nerf.jobs import process, watcher  # noqa: E402
from blender_nerf.nerf_engine.checkpoint import read_checkpoint  # noqa: E402
from blender_nerf.preferences import draw_preferences  # noqa: E402
from blender_nerf.train import start as train  # noqa: E402
from blender_nerf.train.job import TrainRequest  # noqa: E402
from blender_nerf.ui import panels  # noqa: E402

LIMIT_S = 300


def test_more_than_one_device_launches_torchrun_with_an_argument_list():
    one = TrainRequest("data", "run", steps=5)
    assert one.command("py")[:4] == ["py", "-m", "nerf_engine", "train"]
    two = TrainRequest("data", "run", steps=5, devices=2).command("py")
    assert two[:9] == [
        "py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "nerf_engine", "train",
    ]  # fmt: skip
    cluster = ("torchrun", "--nnodes", "2", "--nproc-per-node=4", "--rdzv-endpoint", "head:1")
    cmd = TrainRequest("data", "run", devices=4, launcher=cluster).command("py")
    assert cmd[: len(cluster) + 2] == [*cluster, "-m", "nerf_engine"]  # (its own process count)


def test_devices_in_the_panel_and_the_preferences(prefs):
    scene = bpy.context.scene
    layout = RecordingLayout()
    panels.draw_training(layout, bpy.context)
    shown = [call[2] for call in layout.calls if call[0] == "prop"]
    assert "count" in shown and "launcher" in shown
    layout = RecordingLayout()
    draw_preferences(layout, prefs)
    shown = [call[2] for call in layout.calls if call[0] == "prop"]
    assert "devices" in shown and "torchrun_command" in shown
    # the scene's 0 / empty take the preferences'; its own values win
    prefs.devices, prefs.torchrun_command = 3, "torchrun --nnodes 2"
    assert devices.chosen(scene.nerf.devices, prefs) == (3, ("torchrun", "--nnodes", "2"))
    scene.nerf.devices.count, scene.nerf.devices.launcher = 2, "srun torchrun"
    assert devices.chosen(scene.nerf.devices, prefs) == (2, ("srun", "torchrun"))
    scene.nerf.devices.launcher = 'torchrun --rdzv-endpoint "head:29500'
    with pytest.raises(ValueError, match="Cluster Command"):
        devices.chosen(scene.nerf.devices, prefs)


def test_two_devices_train_through_the_operator_resume_and_cancel(scene, tmp_path, monkeypatch):
    monkeypatch.setenv("NERF_THREADS", "1")  # (each of the two processes: one of the 2 cores)
    tiny_dataset(scene, tmp_path / "data")
    run = tmp_path / "run"
    tiny_training(scene, run, steps=10)
    scene.nerf.devices.count = 2
    with time_limit(LIMIT_S):
        assert bpy.ops.nerf.train() == {"FINISHED"}
    events = read_events(run)
    assert events[0]["event"] == "start" and events[0]["processes"] == 2
    assert [e["event"] for e in events].count("start") == 1  # rank 0 alone writes the log
    nerf = scene.nerf
    assert not nerf.job_running and nerf.job_progress == 1.0
    assert nerf.train_step == nerf.train_total_steps == 10
    assert nerf.job_status.startswith(f"Trained to step 10 in '{run}'")

    # Resume, then Cancel: the trainers save where they stopped (torchrun forwards SIGTERM)
    nerf.train_steps = 100000
    job = train.start(bpy.context, resume=True)
    with time_limit(LIMIT_S):
        while job.step <= 10 and not job.done:
            watcher.tick()
            time.sleep(0.05)
        job.cancel()
    assert job.state == "cancelled" and job.stopped == "signal" and not job.killed, job.message
    saved = run / "checkpoints" / f"step_{job.step:07d}.pt"
    assert job.checkpoint == str(saved) and read_checkpoint(saved)["step"] == job.step > 10
    assert "Resume continues from it" in job.message
    starts = [e for e in read_events(run) if e["event"] == "start"]
    assert [s["step"] for s in starts] == [0, 10] and starts[-1]["resumed"] is True
    watcher.tick()
    assert process.live_jobs() == [] and not nerf.job_running
