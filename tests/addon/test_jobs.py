"""``jobs.process.ProcessJob`` with small Python children: events vs. plain output, non-blocking
poll, commands in sequence, graceful stop, a hard kill after the grace period, start failures."""

from __future__ import annotations

import json
import sys
import time

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import pid_alive, time_limit  # noqa: E402

from blender_nerf.jobs import process  # noqa: E402
from blender_nerf.jobs.process import JobError, ProcessJob  # noqa: E402


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture(autouse=True)
def _no_hang():
    with time_limit(60):
        yield
    assert process.live_jobs() == []


def test_events_and_output_are_told_apart():
    lines = [
        json.dumps({"event": "progress", "step": 3, "loss": 0.5}),
        "plain text",
        json.dumps({"step": 4}),  # JSON but no event: output
        "{broken json",
    ]
    code = f"import sys; print({chr(10).join(lines)!r}); print('to stderr', file=sys.stderr)"
    job = ProcessJob([py(code)]).start()
    seen = []
    while not job.done:
        seen += job.poll()
        time.sleep(0.01)
    assert seen == [{"event": "progress", "step": 3, "loss": 0.5}]
    assert sorted(job.output) == sorted([*lines[1:], "to stderr"])
    assert (job.state, job.returncode, job.message) == ("finished", 0, "Engine finished.")


def test_poll_does_not_block_while_the_child_is_silent():
    job = ProcessJob([py("import time; time.sleep(30)")]).start()
    started = time.perf_counter()
    assert job.poll() == [] and job.running
    assert time.perf_counter() - started < 0.5
    job.cancel(timeout=5)
    assert job.state == "cancelled" and not pid_alive(job.pid)


def test_commands_run_in_order_and_stop_at_the_first_failure(tmp_path):
    log = tmp_path / "log"
    step = "open({!r}, 'a').write('{}')"
    job = ProcessJob(
        [
            py(step.format(str(log), "a")),
            py(step.format(str(log), "b") + "; print('ERROR: no wheel for torch'); exit(1)"),
            py(step.format(str(log), "c")),
        ],
        label="Install",
    ).start()
    assert job.wait(timeout=30)
    assert log.read_text() == "ab"
    assert job.state == "failed" and job.message == "Install failed: no wheel for torch"


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up'); "
    code += "time.sleep(60)"
    job = ProcessJob([py(code)]).start()
    while "up" not in job.output:
        job.poll()
        time.sleep(0.01)
    started = time.monotonic()
    job.cancel(timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 10
    assert job.killed and job.state == "cancelled" and job.returncode < 0
    assert not pid_alive(job.pid)


def test_a_missing_program_is_a_start_error(tmp_path):
    job = ProcessJob([[str(tmp_path / "no-such-python"), "-V"]], label="Training")
    with pytest.raises(JobError, match=r"Training: could not run .*no-such-python"):
        job.start()
    assert job.state == "new" and process.live_jobs() == []
    with pytest.raises(ValueError):
        ProcessJob([])


def test_stop_all_reaches_every_running_child():
    children = [ProcessJob([py("import time; time.sleep(60)")]).start() for _ in range(2)]
    assert set(process.live_jobs()) == set(children)
    assert set(process.stop_all(timeout=5)) == set(children)
    assert all(job.done and not pid_alive(job.pid) for job in children)
