"""Faults during training: a kill -9 in the middle of writing a checkpoint, and a loss that turns
NaN (once, repeatedly, or because the learning rate is absurd). SIGTERM's graceful checkpoint is
tested in test_cli.py (test_sigterm_checkpoints_and_resume_continues).

The NaN is put into a real weight of the real model between two training steps (the model is taken
from the ``Trainer`` by a spy); everything else — forward, backward, Adam, the check and the roll
back — runs as in production.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from engine_helpers import tiny_config

from nerf_engine import cli
from nerf_engine.checkpoint import load_run, read_checkpoint
from nerf_engine.data.run_folder import RunFolder
from nerf_engine.tools.toy_scene import make_toy_dataset
from nerf_engine.train import trainer
from nerf_engine.train.guard import DivergedError
from nerf_engine.train.trainer import learning_rate, train

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    return make_toy_dataset(
        tmp_path_factory.mktemp("faults") / "data", size=(16, 16), n_train=6, n_val=1, n_test=1
    )


def events_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


# --- kill -9 while a checkpoint is being written ------------------------------------------------

# The engine's own command line, except that the second checkpoint write stops half-way (inside
# fileio.atomic_path, exactly where a real write would be) and says so on stderr: the test then
# kills the process with SIGKILL at that moment, every time.
HALF_WRITE_THEN_WAIT = """
import sys, time
from nerf_engine import checkpoint, cli
from nerf_engine.data.fileio import atomic_path

real_write, writes = checkpoint.write_bytes_atomic, []

def write_half_then_wait(path, data):
    writes.append(path)
    if len(writes) < 2:
        return real_write(path, data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(data[: len(data) // 2]))
        print("HALF-WRITTEN", tmp, file=sys.stderr, flush=True)
        time.sleep(300)

checkpoint.write_bytes_atomic = write_half_then_wait
sys.exit(cli.main(sys.argv[1:]))
"""


def test_kill_9_while_writing_a_checkpoint_keeps_the_previous_one_and_resume_works(
    small_dataset, tmp_path
):
    run = tmp_path / "run"
    args = ["train", str(small_dataset), "--out", str(run), "--preset", "preview", "--steps", "20"]
    settings = tiny_config().to_dict()
    args += [f"--set=model.{k}={settings['model'][k]}" for k in ("depth", "width", "view_width")]
    args += ["--set=model.skip_layer=none", "--set=sampling.n_coarse=8", "--set=sampling.n_fine=8"]
    args += ["--set=batch_rays=64", "--set=checkpoint_every=5", "--set=preview_every=100"]
    args += ["--device", "cpu"]
    proc = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITE_THEN_WAIT, *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    try:
        half_written = None
        for line in proc.stderr:
            if line.startswith("HALF-WRITTEN "):
                half_written = Path(line.removeprefix("HALF-WRITTEN ").strip())
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        proc.kill()
    assert half_written is not None, "the child never reached its second checkpoint"
    assert proc.returncode == -signal.SIGKILL
    # the kill landed mid-write: the temporary file holds half a checkpoint, the real name nothing
    assert half_written.is_file() and half_written.parent == run / "checkpoints"
    assert half_written.name.startswith(".step_0000010.pt.")
    assert [p.name for p in RunFolder(run).checkpoints()] == ["step_0000005.pt"]
    assert load_run(run, "cpu").step == 5

    result = train(tiny_config(steps=12, eval_views=0), small_dataset, run, resume=True)
    assert (result.stopped, result.step) == ("completed", 12)
    assert not half_written.exists()  # the debris of the killed write is gone
    starts = [e for e in events_of(run) if e["event"] == "start"]
    assert [(s["step"], s["resumed"]) for s in starts] == [(0, False), (5, True)]


# --- NaN / inf loss ------------------------------------------------------------------------------


@pytest.fixture
def live_state(monkeypatch) -> list:
    """The Trainer of the run in progress (appended when ``train`` builds it)."""
    states: list = []

    class Spy(trainer.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            states.append(self)

    monkeypatch.setattr(trainer, "Trainer", Spy)
    return states


def poison(state) -> None:
    """Put one NaN into a real weight of the model (as a bad step would have)."""
    with torch.no_grad():
        next(state.model.parameters()).view(-1)[0] = float("nan")


def all_finite(model) -> bool:
    return all(bool(p.isfinite().all()) for p in model.parameters())


def test_a_nan_rolls_back_halves_the_learning_rate_warns_and_goes_on(
    small_dataset, tmp_path, live_state
):
    run = tmp_path / "run"
    config = tiny_config(steps=15, log_every=5, checkpoint_every=5, preview_every=5, eval_views=0)
    poisoned = []

    def poison_after_the_first_checkpoint(event):
        if event["event"] == "checkpoint" and not poisoned:
            poison(live_state[0])  # the next steps' loss is NaN
            poisoned.append(event["step"])

    result = train(config, small_dataset, run, on_event=poison_after_the_first_checkpoint)
    assert poisoned == [5]
    assert (result.stopped, result.step) == ("completed", 15)
    events = events_of(run)
    (warning,) = [e for e in events if e["event"] == "warning"]
    assert (warning["step"], warning["failed_step"], warning["lr_scale"]) == (5, 10, 0.5)
    assert "rolled back to step 5 and halved the learning rate" in warning["message"]
    after = events[events.index(warning) + 1 :]
    progress = [e for e in after if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [10, 15]
    for e in progress:
        assert e["lr"] == pytest.approx(0.5 * learning_rate(config, e["step"]))
        assert e["loss"] is not None and e["loss"] < 1.0
    # no NaN was ever saved: every checkpoint loads (load_run refuses NaN weights)
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [5, 10, 15]
    final = read_checkpoint(RunFolder(run).checkpoints()[-1])
    assert final["lr_scale"] == 0.5 and load_run(run, "cpu").step == 15
    assert all_finite(live_state[0].model)
    # and a resumed run keeps the lowered learning rate
    seen: list = []
    longer = tiny_config(steps=16, log_every=1, eval_views=0)
    train(longer, small_dataset, run, resume=True, on_event=seen.append)
    (step_16,) = [e for e in seen if e["event"] == "progress"]
    assert step_16["lr"] == pytest.approx(0.5 * learning_rate(longer, 16))


def test_a_nan_that_keeps_coming_back_stops_with_a_clear_error_and_keeps_the_good_state(
    small_dataset, tmp_path, live_state
):
    run = tmp_path / "run"
    config = tiny_config(steps=30, log_every=5, checkpoint_every=5, preview_every=100)

    def poison_every_time(event):  # after the first checkpoint, and again after each roll back
        if event["event"] in ("checkpoint", "warning"):
            poison(live_state[0])

    with pytest.raises(DivergedError) as info:
        train(config, small_dataset, run, on_event=poison_every_time)
    kept = run / "checkpoints" / "step_0000005.pt"
    assert str(info.value) == (
        "training diverged: the loss or the weights became NaN/inf 3 times in a row (last "
        f"between steps 5 and 10), even at 0.125× the learning rate; the last good state is "
        f"saved as {kept}. Lower the learning rate (--set lr=...), try --set "
        "mixed_precision=off, or check the dataset."
    )
    kinds = [e["event"] for e in events_of(run)]
    assert kinds.count("warning") == 2 and kinds[-1] == "error"
    assert events_of(run)[-1]["message"] == str(info.value)
    assert RunFolder(run).checkpoints() == [kept] and all_finite(load_run(run, "cpu").model)


def test_an_absurd_learning_rate_diverges_for_real_and_the_command_fails(
    small_dataset, tmp_path, capsys
):
    run = tmp_path / "run"
    args = ["train", str(small_dataset), "--out", str(run), "--preset", "preview", "--steps", "50"]
    args += ["--device", "cpu", "--events", "jsonl", "--set", "batch_rays=64"]
    args += ["--set", "lr=1e30", "--set", "lr_final=1e30", "--set", "mixed_precision=off"]
    args += ["--set", "log_every=2", "--set", "model.width=32", "--set", "model.depth=2"]
    args += ["--set", "model.skip_layer=none"]
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["start", "warning", "warning", "error"]
    assert events[-1]["message"].startswith("training diverged: the loss or the weights became")
    assert "nothing was trained yet" in events[-1]["message"]
    assert err.startswith("error: training diverged") and "Traceback" not in err
    assert RunFolder(run).checkpoints() == []
