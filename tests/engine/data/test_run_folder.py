"""``RunFolder``: the one reader of a run folder's layout, for the engine and the add-on alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nerf_engine.data.run_folder import RunFolder, RunFolderError


def test_checkpoints_are_listed_by_step_and_debris_apart(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.checkpoints() == [] and run.latest_checkpoint() is None  # no folder yet
    for step in (1000, 20, 300):
        run.checkpoint_path(step).parent.mkdir(parents=True, exist_ok=True)
        run.checkpoint_path(step).write_bytes(b"x")
    debris = run.checkpoint_dir / ".step_0000400.pt.abc123.tmp"  # a write killed half-way
    debris.write_bytes(b"x")
    (run.checkpoint_dir / "step_12.pt").write_bytes(b"x")  # not one of ours: too few digits
    (run.checkpoint_dir / "notes.txt").write_text("mine")
    assert [p.name for p in run.checkpoints()] == [
        "step_0000020.pt", "step_0000300.pt", "step_0001000.pt",
    ]  # fmt: skip
    assert run.latest_checkpoint() == run.checkpoint_path(1000)
    assert run.partial_checkpoints() == [debris]


def test_the_configuration_and_what_it_says(tmp_path):
    run = RunFolder(tmp_path)
    record = {
        "dataset": "/data/lego",
        "scene": {"aabb": [[-1, -2, -3], [1, 2, 3]], "near": 0.5, "far": 9.0},
        "config": {"background": [0.0, 0.5, 1.0], "steps": 10},
    }
    run.config_path.write_text(json.dumps(record))
    assert run.read_config() == record and run.train_settings()["steps"] == 10
    assert str(run.dataset_dir()) == "/data/lego"
    bounds = run.scene_bounds()
    assert np.array_equal(bounds.aabb, [[-1, -2, -3], [1, 2, 3]])
    assert (bounds.near, bounds.far) == (0.5, 9.0)
    assert run.background() == (0.0, 0.5, 1.0)


def test_what_a_run_lacks_gives_defaults_or_a_clear_error(tmp_path):
    run = RunFolder(tmp_path)
    with pytest.raises(RunFolderError, match=r"config.json: not found; is .* a training run"):
        run.read_config()
    assert run.background() == (1.0, 1.0, 1.0)  # white, as eval composites without a run
    run.config_path.write_text("{not json")
    with pytest.raises(RunFolderError, match=r"unreadable .*restore it or train again"):
        run.read_config()
    run.config_path.write_text(json.dumps({"config": {}, "scene": {"aabb": [1, 2], "near": 0}}))
    assert run.scene_bounds() is None and run.dataset_dir() is None
    run.config_path.write_text(json.dumps(["a", "list"]))
    with pytest.raises(RunFolderError, match="not a run configuration"):
        run.train_settings()
