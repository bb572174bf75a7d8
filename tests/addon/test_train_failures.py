"""When training cannot start or the trainer fails, the job ends with a clear message in
``job_status`` and an ERROR report; nothing hangs, no process is left, no exception escapes."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import engine_children, time_limit, tiny_dataset, tiny_training  # noqa: E402

from blender_nerf.jobs import engine_python, process, watcher  # noqa: E402
from blender_nerf.train import start as train  # noqa: E402
from blender_nerf.train.job import TrainJob, TrainRequest  # noqa: E402

LIMIT_S = 90


@pytest.fixture(autouse=True)
def _no_hang():
    with time_limit(LIMIT_S):
        yield
    assert process.live_jobs() == [] and engine_children() == []


def _fails(scene, match, **operator_args):
    """Train expecting an ERROR report matching ``match``; the scene shows the same message."""
    with pytest.raises(RuntimeError, match=match) as info:
        bpy.ops.nerf.train(**operator_args)
    assert str(info.value).startswith("Error: ")
    nerf = scene.nerf
    assert not nerf.job_running
    assert nerf.job_status and nerf.job_status in str(info.value)
    assert train.running_job(scene) is None and bpy.ops.nerf.train.poll()
    return nerf.job_status


@pytest.mark.parametrize(
    "damage, match",
    [
        ("transforms", r"Training failed: .*transforms_train\.json: malformed JSON at line 1"),
        ("image", r"Training failed: .*r_0\.png: cannot read the image header"),
    ],
)
def test_a_corrupt_dataset_fails_with_the_engines_message(scene, tmp_path, damage, match):
    data = tiny_dataset(scene, tmp_path / "data")
    if damage == "transforms":
        (data / "transforms_train.json").write_text("{not json")
    else:
        (data / "train" / "r_0.png").write_bytes(b"not a png")
    tiny_training(scene, tmp_path / "run")
    _fails(scene, match)


def test_an_unknown_engine_argument_fails_with_argparses_message(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run", extra="--bogus")
    _fails(scene, "Training failed: unrecognized arguments: --bogus")


@pytest.mark.parametrize(
    "setting, value, match",
    [
        ("train_extra_args", "--out /tmp/x", "--out is set by the panel"),
        ("train_extra_args", "--set 'unclosed", "No closing quotation"),
        ("dataset_dir", "EMPTY", "has no transforms_train.json: export a dataset first"),
        ("run_dir", "//run/", "relative to the .blend file, which is not saved"),
    ],
)
def test_bad_settings_are_refused_before_starting(scene, tmp_path, setting, value, match):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run")
    if value == "EMPTY":
        (tmp_path / "empty").mkdir()
        value = str(tmp_path / "empty")
    setattr(scene.nerf, setting, value)
    _fails(scene, match)
    assert not (tmp_path / "run").exists()


def test_resume_without_a_checkpoint_is_refused(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run")
    _fails(scene, "has no checkpoint to resume; press Train instead", resume=True)


def test_a_missing_engine_python(prefs, scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run")
    prefs.python_path = str(tmp_path / "nowhere" / "python3")
    status = _fails(scene, "Engine Python '.*nowhere/python3' does not exist")
    assert "Preferences > Add-ons > blender-nerf" in status


def test_an_engine_python_without_torch(prefs, scene, tmp_path, python_without_torch):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run")
    prefs.python_path = str(python_without_torch)
    _fails(scene, "cannot import torch: install PyTorch into it")
    with pytest.raises(RuntimeError, match="cannot import torch"):
        bpy.ops.nerf.check_engine()
    assert "cannot import torch" in prefs.engine_info


def test_the_trainer_itself_fails_without_torch(tmp_path, python_without_torch):
    """Past the add-on's checks (e.g. torch removed meanwhile): the crash is explained."""
    request = TrainRequest(str(tmp_path), str(tmp_path / "run"), device="cpu")
    env = engine_python.EnginePython(str(python_without_torch), (engine_python.addon_dir(),), "")
    job = TrainJob(request, str(python_without_torch), env=env.env()).start()
    assert job.wait(timeout=60)
    assert job.state == "failed" and job.returncode == 1
    # the engine imports numpy or torch first, depending on the command; neither is there
    assert re.match(
        r"Training failed: ModuleNotFoundError: No module named '(torch|numpy)'", job.message
    )
    assert "Install Dependencies" in job.message


def test_a_trainer_killed_by_a_signal(scene, tmp_path):
    tiny_dataset(scene, tmp_path / "data")
    tiny_training(scene, tmp_path / "run", steps=100000)
    job = train.start(bpy.context)
    while job.step == 0 and not job.done:
        train.update_scene(scene, job, job.poll())
        time.sleep(0.02)
    os.kill(job.pid, 9)  # the out-of-memory killer, say
    level, message = watcher.run_scene_blocking(scene, train.KIND)
    assert (level, job.state) == ("ERROR", "failed")
    assert message == "Training failed: killed by signal SIGKILL"
    assert scene.nerf.job_status == message and not scene.nerf.job_running


def test_cancel_while_the_trainer_starts_up(tmp_path, scene):
    """Before the engine installs its signal handlers SIGTERM ends it at once: no checkpoint,
    and the message says so."""
    data = tiny_dataset(scene, tmp_path / "data")
    request = TrainRequest(str(data), str(tmp_path / "run"), device="cpu", steps=50)
    engine = engine_python.EnginePython(sys.executable, (engine_python.addon_dir(),), "")
    job = TrainJob(request, sys.executable, env=engine.env()).start()
    job.cancel(timeout=30)
    assert job.state == "cancelled" and job.total_steps == 0 and not job.killed
    assert job.message.startswith("Training stopped: the trainer stopped while starting up")
