"""No trainer outlives Blender or the add-on: unregister stops it (gracefully: a checkpoint),
so does interpreter exit (atexit); a trainer whose Blender was killed stops at its next event."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import (  # noqa: E402
    pid_alive,
    read_events,
    time_limit,
    tiny_dataset,
    tiny_training,
)

import blender_nerf  # noqa: E402
from blender_nerf.jobs import process, watcher  # noqa: E402
from blender_nerf.train import start as train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# A Blender session (bpy as a module) that starts training and then ends as argv[3] says.
SESSION = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import bpy, blender_nerf
    from addon_helpers import tiny_training
    from blender_nerf.train import start as train
    bpy.ops.wm.read_factory_settings(use_empty=False)
    blender_nerf.register()
    scene = bpy.context.scene
    scene.nerf.dataset_dir = sys.argv[4]
    tiny_training(scene, sys.argv[5], steps=100000)
    job = train.start(bpy.context)
    while job.step == 0 and not job.done:
        job.poll()
        time.sleep(0.02)
    print("TRAINER", job.pid, flush=True)
    if sys.argv[3] == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.exit(0)  # quit without unregistering: atexit must stop the trainer
    """
)


def _wait_gone(pid, seconds):
    deadline = time.monotonic() + seconds
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def test_unregister_stops_the_trainer_with_a_checkpoint(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run", steps=100000)
    with time_limit(90):
        job = train.start(bpy.context)
        while job.step == 0 and not job.done:
            train.update_scene(scene, job, job.poll())
            time.sleep(0.02)
        pid = job.pid
        assert pid_alive(pid)
        blender_nerf.unregister()  # the add-on is disabled while training
    try:
        assert not pid_alive(pid), "the trainer outlived the add-on"
        assert process.live_jobs() == [] and not bpy.app.timers.is_registered(watcher.tick)
        assert job.state == "cancelled" and not job.killed
        assert read_events(tmp_path / "run")[-1]["stopped"] == "signal"
        assert (tmp_path / "run" / "checkpoints" / f"step_{job.step:07d}.pt").is_file()
    finally:
        blender_nerf.register()
    assert not scene.nerf.job_running and bpy.ops.nerf.train.poll()


@pytest.mark.parametrize("ending", ["exit", "crash"])
def test_no_trainer_outlives_its_blender(scene, tmp_path, ending):
    data = tiny_dataset(scene, tmp_path / "data")
    script = tmp_path / "session.py"
    script.write_text(SESSION)
    here = str(Path(__file__).parent)
    args = [sys.executable, str(script), str(ROOT), here, ending, str(data), str(tmp_path / "run")]
    session = subprocess.run(args, capture_output=True, text=True, timeout=120)
    lines = session.stdout.splitlines()
    pids = [int(line.split()[1]) for line in lines if line.startswith("TRAINER")]
    assert pids, session.stdout + session.stderr
    if ending == "exit":
        assert session.returncode == 0, session.stderr
        assert not pid_alive(pids[0]), "atexit did not stop the trainer"
        assert read_events(tmp_path / "run")[-1]["stopped"] == "signal"
    else:
        assert session.returncode == -signal.SIGKILL
        # nothing could stop it; its next event finds the pipe broken and it exits
        assert _wait_gone(pids[0], 60), "the trainer of a killed Blender kept running"
