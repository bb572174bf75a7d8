"""Child processes: start them with an argument list, read their output without blocking,
``poll()`` and ``cancel()``. No bpy here: the watcher (``watcher.py``) applies results to Blender
data on the main thread, and tests drive a job directly.

A job runs one or more commands one after another (Install Dependencies runs pip twice, Compare
runs the engine twice). For each child two reader threads put its stdout and stderr lines on a
``queue.Queue``; :meth:`ProcessJob.poll` drains that queue on the caller's thread, so nothing but
the queue crosses threads. A stdout line that is a JSON object with an ``"event"`` key is an
engine event (the JSON-lines contract of ``python -m nerf_engine ... --events jsonl``, read by
``engine_job.EngineJob``); every other line is kept in :attr:`ProcessJob.output` for error
messages.

Every started job is in a process-wide set until it ends, so :func:`stop_all` (called when the
add-on is disabled and at interpreter exit) leaves no trainer running. A trainer whose Blender
died without that (a crash, SIGKILL) still stops at its next event: its stdout pipe is broken.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence

from ..nerf_engine.data.events import parse_event

STATES = ("new", "running", "finished", "failed", "cancelled")
DONE_STATES = ("finished", "failed", "cancelled")
# How long to wait for the last output after a child exited (a grandchild may hold its pipes).
STREAM_GRACE_S = 2.0


class JobError(RuntimeError):
    """A job could not start (no such interpreter, not executable, ...)."""


class ProcessJob:
    """Commands run one after another in child processes; see the module docstring.

    ``state`` is one of :data:`STATES`; ``message`` says how it ended. ``grace_s`` is how long a
    stop request waits for a graceful exit before the child is killed.
    """

    def __init__(
        self,
        commands: Sequence[Sequence[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        label: str = "Engine",
        grace_s: float = 30.0,
    ):
        if not commands or not all(commands):
            raise ValueError("a job needs at least one non-empty command")
        self.commands = [[str(arg) for arg in command] for command in commands]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.label = label
        self.grace_s = grace_s
        self.state = "new"
        self.message = ""
        self.returncode: int | None = None
        self.output: deque[str] = deque(maxlen=200)
        self.stop_requested = False
        self.killed = False
        self._queue: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._proc: subprocess.Popen | None = None
        self._command_index = 0
        self._open_streams = 0
        self._exited_at: float | None = None
        self._kill_at: float | None = None

    # --- public API ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The process id of the running (or last) child."""
        return self._proc.pid if self._proc is not None else None

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES

    @property
    def running(self) -> bool:
        return self.state == "running"

    def start(self) -> ProcessJob:
        """Start the first command. Raises :class:`JobError` when it cannot be started."""
        if self.state != "new":
            raise JobError(f"{self.label}: the job was already started")
        self._launch(self.commands[0])
        self.state = "running"
        _LIVE.add(self)
        return self

    def poll(self) -> list[dict]:
        """Non-blocking: the events that arrived since the last call; updates ``state``."""
        if self.state != "running":
            return []
        events = self._drain()
        self._enforce_deadline()
        returncode = self._proc.poll()
        if returncode is not None and self._output_finished():
            events += self._drain()
            self._command_ended(returncode)
        return events

    def request_stop(self, grace_s: float | None = None) -> None:
        """Ask the child to stop (SIGTERM: the trainer checkpoints and exits); don't wait.
        :meth:`poll` kills it when it is still running ``grace_s`` later."""
        if self.state != "running" or self.stop_requested:
            return
        self.stop_requested = True
        self._kill_at = time.monotonic() + (self.grace_s if grace_s is None else grace_s)
        self._send_stop()

    def cancel(self, timeout: float | None = None) -> None:
        """Stop gracefully and wait for the child to exit; kill it after ``timeout`` seconds
        (default ``grace_s``)."""
        self.request_stop(timeout)
        self.wait()

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> bool:
        """Poll until the job is done (True) or ``timeout`` seconds passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            self.poll()
            if self.done:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True

    def last_output(self, n: int = 1) -> str:
        """The last ``n`` non-empty lines of output (stdout lines that are not events, stderr)."""
        lines = [line for line in self.output if line.strip()]
        return "\n".join(lines[-n:])

    # --- to override -----------------------------------------------------------------------

    def on_event(self, record: dict) -> None:
        """Called on the polling thread for every engine event, in order."""

    def on_output(self, line: str) -> None:
        """Called on the polling thread for every other line of output (stdout and stderr)."""

    def outcome(self, returncode: int) -> tuple[str, str]:
        """(state, message) once the last child exited with ``returncode``."""
        if returncode == 0:
            return "finished", f"{self.label} finished."
        if self.stop_requested:
            return "cancelled", f"{self.label} stopped."
        return "failed", f"{self.label} failed: {self.failure_reason(returncode)}"

    def failure_reason(self, returncode: int) -> str:
        """The clearest line the child left: ``error: ...``, ``ERROR: ...`` or an exception."""
        lines = [line.strip() for line in self.output if line.strip()]
        for marker in ("error: ", "ERROR: "):  # also argparse's "prog: error: ..."
            found = [line for line in lines if line.startswith(marker) or f": {marker}" in line]
            if found:
                return found[-1].split(marker, 1)[1]
        exceptions = [line for line in lines if _looks_like_exception(line)]
        if exceptions:
            return exceptions[-1]
        if returncode < 0:
            return f"killed by signal {_signal_name(-returncode)}"
        tail = f" ({lines[-1]})" if lines else ""
        return f"exited with status {returncode}{tail}"

    # --- internals -------------------------------------------------------------------------

    def _launch(self, argv: list[str]) -> None:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            raise JobError(
                f"{self.label}: could not run '{argv[0]}': {exc.strerror or exc}"
            ) from exc
        self._proc = proc
        self._exited_at = None
        self._open_streams = 2
        for stream, kind in ((proc.stdout, "out"), (proc.stderr, "err")):
            thread = threading.Thread(
                target=_read_lines,
                args=(stream, kind, self._queue),
                name=f"nerf-{kind}-{proc.pid}",
                daemon=True,
            )
            thread.start()

    def _drain(self) -> list[dict]:
        events = []
        while True:
            try:
                kind, line = self._queue.get_nowait()
            except queue.Empty:
                return events
            if kind == "eof":
                self._open_streams -= 1
                continue
            record = parse_event(line) if kind == "out" else None
            if record is None:
                self.output.append(line)
                self.on_output(line)
                continue
            self.on_event(record)
            events.append(record)

    def _output_finished(self) -> bool:
        if self._open_streams <= 0:
            return True
        now = time.monotonic()
        if self._exited_at is None:
            self._exited_at = now
        return now - self._exited_at >= STREAM_GRACE_S

    def _command_ended(self, returncode: int) -> None:
        more = self._command_index + 1 < len(self.commands)
        if returncode == 0 and more and not self.stop_requested:
            self._command_index += 1
            try:
                self._launch(self.commands[self._command_index])
            except JobError as exc:
                self._finish("failed", str(exc), returncode)
            return
        state, message = self.outcome(returncode)
        self._finish(state, message, returncode)

    def _finish(self, state: str, message: str, returncode: int) -> None:
        self.returncode = returncode
        self.state, self.message = state, message
        _LIVE.discard(self)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _send_stop(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            if os.name == "nt":  # no SIGTERM handler there: the last periodic checkpoint stays
                proc.terminate()
            else:
                proc.send_signal(signal.SIGTERM)
        except OSError:
            pass

    def _enforce_deadline(self) -> None:
        proc = self._proc
        if self._kill_at is None or time.monotonic() < self._kill_at or proc.poll() is not None:
            return
        try:
            proc.kill()
            self.killed = True
        except OSError:
            pass


# Jobs whose child may still run. A process-wide set on purpose: interpreter exit and add-on
# unregister must reach every child, whoever started it.
_LIVE: set[ProcessJob] = set()


def live_jobs() -> list[ProcessJob]:
    return list(_LIVE)


def stop_all(timeout: float = 10.0) -> list[ProcessJob]:
    """Stop every running job: a graceful stop, then a kill after ``timeout`` seconds. Blocks
    until all children exited; returns the jobs it stopped."""
    jobs = list(_LIVE)
    for job in jobs:
        job.request_stop(timeout)
    deadline = time.monotonic() + timeout + STREAM_GRACE_S + 5.0
    for job in jobs:
        job.wait(max(0.0, deadline - time.monotonic()))
        if not job.done and job._proc is not None:  # could not even be killed in time
            job._proc.kill()
            job._proc.wait(5.0)
            job.poll()
    return jobs


def _read_lines(stream, kind: str, out: queue.Queue) -> None:
    """Reader thread: every line of ``stream`` onto ``out``, then an end marker."""
    try:
        for line in stream:
            out.put((kind, line.rstrip("\r\n")))
    except (OSError, ValueError):  # closed under us
        pass
    finally:
        out.put(("eof", kind))


def _looks_like_exception(line: str) -> bool:
    head = line.split(":", 1)[0]
    return ":" in line and " " not in head and head.endswith(("Error", "Exception", "Interrupt"))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
