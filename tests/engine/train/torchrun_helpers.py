"""Running the engine under a real ``torchrun`` (gloo, CPU) in tests: one thread per rank, a
timeout that fails a hung run instead of hanging the suite, and a check that no process of the
run outlives it (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 150


def torchrun_argv(*args: str, nproc: int = 2, launcher: tuple[str, ...] = ()) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N [launcher...] ARGS``."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(nproc), *launcher, *args,
    ]  # fmt: skip


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "NERF_THREADS": "1"}


def start(argv: list[str]) -> subprocess.Popen:
    """Start ``argv`` in a session of its own, and note every child it starts (torchrun starts
    each worker in a session of its own: ``proc.workers`` is how they are found again)."""
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    proc.workers = set()

    def watch():
        while proc.poll() is None:
            proc.workers.update(children(proc.pid))
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return proc


def finish(proc: subprocess.Popen, timeout: float = TIMEOUT_S) -> tuple[int, str, str]:
    """Wait for ``proc`` (killing its whole session when it overruns: the test then fails);
    check that nothing of its session is left; (returncode, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_all(proc)
        out, err = proc.communicate()
        raise AssertionError(f"torchrun did not end within {timeout} s:\n{err[-3000:]}") from None
    left = wait_session_empty(proc.pid) + wait_gone(getattr(proc, "workers", set()))
    if left:
        kill_all(proc)
    assert not left, f"processes outlived the run: {left}"
    return proc.returncode, out, err


def kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL the run's session and every worker it started (a hung test leaves nothing)."""
    kill_session(proc.pid)
    for pid in getattr(proc, "workers", set()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def run(*args: str, nproc: int = 2, timeout: float = TIMEOUT_S) -> tuple[int, str, str]:
    return finish(start(torchrun_argv(*args, nproc=nproc)), timeout)


def session_pids(sid: int) -> list[int]:
    """The live processes of session ``sid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def wait_session_empty(sid: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := session_pids(sid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        kill_session(sid)
    return left


def kill_session(sid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (torchrun's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def wait_for(predicate, timeout: float = TIMEOUT_S, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
