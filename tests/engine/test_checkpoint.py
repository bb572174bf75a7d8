"""Checkpoints from elsewhere: truncated, foreign, other versions and architectures, pickles that
would run code — all refused with a message naming the file, and nothing ever executes."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import pytest
import torch
from engine_helpers import tiny_config

from nerf_engine.checkpoint import CheckpointError, load_run, read_checkpoint
from nerf_engine.data.run_folder import RunFolder
from nerf_engine.train.trainer import train


@pytest.fixture(scope="module")
def trained_run(toy_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("ckpt") / "run"
    train(tiny_config(steps=5, eval_views=0), toy_dataset, run)
    return run


def copy_run(trained_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(trained_run, target)
    return target, RunFolder(target).checkpoints()[-1]


def test_a_good_checkpoint_loads(trained_run):
    run = load_run(trained_run, "cpu")
    assert run.step == 5 and run.config.model.width == 32
    assert not run.model.training


def test_truncated_checkpoint(trained_run, tmp_path):
    run, ckpt = copy_run(trained_run, tmp_path)
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as err:
        load_run(run, "cpu")
    assert str(ckpt) in str(err.value) and "truncated" in str(err.value)


def test_checkpoint_for_another_architecture(trained_run, tmp_path):
    run, ckpt = copy_run(trained_run, tmp_path)
    state = torch.load(ckpt, weights_only=True)
    cfg = json.loads(state["config"])
    cfg["model"]["width"] = 64
    state["config"] = json.dumps(cfg)
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match="do not fit the architecture") as err:
        load_run(run, "cpu")
    assert str(ckpt) in str(err.value) and "size mismatch" in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(version=99), "format version 99"),
        (lambda s: s.pop("format"), "not a blender-nerf checkpoint"),
        (lambda s: s.pop("optimizer"), "lacks 'optimizer'"),
    ],
)
def test_foreign_or_other_version_checkpoints(trained_run, tmp_path, change, message):
    _, ckpt = copy_run(trained_run, tmp_path)
    state = torch.load(ckpt, weights_only=True)
    change(state)
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(ckpt)


class Payload:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("container", ["torch", "raw_pickle"])
def test_a_pickle_that_runs_code_is_refused_and_never_runs(trained_run, tmp_path, container):
    run, ckpt = copy_run(trained_run, tmp_path)
    marker = tmp_path / "pwned"
    if container == "torch":
        state = torch.load(ckpt, weights_only=True)
        state["model"]["evil"] = Payload(marker)
        torch.save(state, ckpt)
    else:
        ckpt.write_bytes(pickle.dumps({"format": Payload(marker)}))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_run(run, "cpu")
    assert not marker.exists()
    # sanity: the payload is real — plain pickle.load would have run it
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_missing_run_and_empty_run(tmp_path):
    with pytest.raises(CheckpointError, match="run folder not found"):
        load_run(tmp_path / "nope", "cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoints"):
        load_run(tmp_path / "empty", "cpu")


def rewrite(ckpt, change) -> None:
    state = torch.load(ckpt, weights_only=True)
    change(state)
    torch.save(state, ckpt)


def poison_a_weight(state) -> None:
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name].view(-1)[0] = float("nan")


def zero_width(state) -> None:
    config = json.loads(state["config"])
    config["model"]["width"] = 0
    state["config"] = json.dumps(config)


MORE_BROKEN = {
    "zero bytes": (lambda p: p.write_bytes(b""), "not a readable checkpoint"),
    "random bytes": (lambda p: p.write_bytes(os.urandom(4096)), "not a readable checkpoint"),
    "NaN weights": (lambda p: rewrite(p, poison_a_weight), "weights contain NaN or infinity"),
    "step not a number": (
        lambda p: rewrite(p, lambda s: s.update(step="five")),
        "'step' is 'five', not a step number",
    ),
    "lr_scale out of range": (
        lambda p: rewrite(p, lambda s: s.update(lr_scale=-1.0)),
        "'lr_scale' is -1.0",
    ),
    "impossible configuration": (
        lambda p: rewrite(p, zero_width),
        "configuration is unreadable (invalid configuration: model.depth and width",
    ),
    "configuration not JSON": (
        lambda p: rewrite(p, lambda s: s.update(config="{width: 32")),
        "configuration is unreadable",
    ),
}


@pytest.mark.parametrize("case", MORE_BROKEN.values(), ids=MORE_BROKEN.keys())
def test_more_broken_checkpoints_are_refused_by_name(trained_run, tmp_path, case):
    damage, message = case
    run, ckpt = copy_run(trained_run, tmp_path)
    damage(ckpt)
    with pytest.raises(CheckpointError) as err:
        load_run(run, "cpu")
    assert type(err.value) is CheckpointError
    assert str(err.value).startswith(f"{ckpt}: ") and message in str(err.value)
    assert "use an earlier checkpoint or retrain" in str(err.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_resuming_from_a_pickle_that_runs_code_refuses_and_never_runs_it(
    toy_dataset, trained_run, tmp_path
):
    run, ckpt = copy_run(trained_run, tmp_path)
    marker = tmp_path / "pwned"
    ckpt.write_bytes(pickle.dumps({"format": Payload(marker)}))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(tiny_config(steps=8, eval_views=0), toy_dataset, run, resume=True)
    assert not marker.exists()
    assert json.loads((run / "events.jsonl").read_text().splitlines()[-1])["event"] == "error"


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(toy_dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(steps=10, eval_views=0), toy_dataset, run)
    older, newest = RunFolder(run).checkpoints()[-2:]
    newest.write_bytes(newest.read_bytes()[:100])

    loaded = load_run(run, "cpu")
    assert loaded.checkpoint == older and loaded.step == 5
    assert len(loaded.notes) == 1 and str(newest) in loaded.notes[0]
    assert "Using the checkpoint before it" in loaded.notes[0]

    result = train(tiny_config(steps=12, eval_views=0), toy_dataset, run, resume=True)
    assert result.step == 12
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    start = [e for e in events if e["event"] == "start"][-1]
    warnings = [e for e in events if e["event"] == "warning" and str(newest) in e["message"]]
    assert start["step"] == 5 and len(warnings) == 1


def test_when_no_checkpoint_reads_the_newest_ones_error_is_raised(trained_run, tmp_path):
    run, ckpt = copy_run(trained_run, tmp_path)
    shutil.copy(ckpt, ckpt.with_name("step_0000003.pt"))
    for path in RunFolder(run).checkpoints():
        path.write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="none of the 2 checkpoints reads") as err:
        load_run(run, "cpu")
    assert str(ckpt) in str(err.value)
