"""Training events (the JSON-lines contract) and graceful stop on SIGINT/SIGTERM.

Every event is one JSON object: ``{"event": ..., "step": int, ...}`` with ``event`` one of start,
progress, preview, checkpoint, eval, warning, done, error. ``warning`` (with ``message``) reports
something the trainer recovered from, e.g. a NaN loss rolled back. Non-finite numbers are written
as null so every line stays valid JSON.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .fileio import make_dir, output_error

EVENT_KINDS = ("start", "progress", "preview", "checkpoint", "eval", "warning", "done", "error")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class EventLog:
    """Appends events to a JSON-lines file and hands each to an optional callback."""

    def __init__(
        self, path: Path, on_event: Callable[[dict], None] | None = None, append: bool = True
    ):
        make_dir(path.parent)
        try:
            self.handle = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise output_error(path, exc) from exc
        self.path, self.on_event = path, on_event

    def emit(self, event: str, step: int, **fields) -> dict:
        """Write the event and hand it to the callback — also when the write fails (a full
        disk), before raising :class:`~.fileio.OutputError`."""
        assert event in EVENT_KINDS, event
        record = _finite({"event": event, "step": int(step), **fields, "time": time.time()})
        try:
            self.handle.write(json.dumps(record, allow_nan=False) + "\n")
            self.handle.flush()
        except OSError as exc:
            if self.on_event is not None:
                self.on_event(record)
            raise output_error(self.path, exc) from exc
        if self.on_event is not None:
            self.on_event(record)
        return record

    def close(self) -> None:
        with contextlib.suppress(OSError):  # lines that could not be written were reported
            self.handle.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Within the block, SIGINT/SIGTERM set a flag (the returned callable reads it) instead of
    killing the process, so the trainer can checkpoint and exit cleanly. A second signal while the
    flag is set acts as usual. Off the main thread (where Python cannot take signals) a no-op."""
    seen = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield seen.is_set
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if seen.is_set():  # asked twice: stop now
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
            return
        seen.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield seen.is_set
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
