"""The events every engine job speaks (the JSON-lines contract), and ``events.jsonl``.

An event is one JSON object: ``{"event": kind, "step": int, ..., "time": unix seconds}`` with
``kind`` one of :data:`EVENT_KINDS`, for every job (train, render, eval, compare, mesh):

- ``start``: the job began (``job``; render/eval/compare: ``total`` views; mesh: ``total`` slabs
  of its density grid + 1 for the colours; train: ``total_steps``);
- ``progress``: train: ``loss``, ``psnr``, ``rays_per_s``, ``elapsed_s``, ``eta_s``; other jobs:
  ``done`` and ``total`` (views; mesh: slabs, with its ``stage``);
- ``preview``, ``checkpoint``, ``eval``: training's outputs (paths, metrics);
- ``warning``: something the job recovered from or the user should know (``message``);
- ``error``: the job failed (``message``, ``kind``); ``done``: it ended (a summary).

``step`` is the training step the job is at or renders (0 when there is none). Non-finite
numbers are written as null so every line stays valid JSON. Library code hands events to an
``on_event`` callback; the CLI prints them (``--events jsonl``) and the trainer also appends them
to ``RUN/events.jsonl``. Standard library only: the add-on reads events inside Blender.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from .fileio import make_dir, output_error

EVENT_KINDS = ("start", "progress", "preview", "checkpoint", "eval", "warning", "done", "error")
OnEvent = Callable[[dict], None]


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def event(kind: str, step: int = 0, /, **fields) -> dict:
    """One event record: ``{"event": kind, "step": step, **fields, "time": now}``, JSON-safe.

    Raises ValueError for a kind outside :data:`EVENT_KINDS`.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}; one of {', '.join(EVENT_KINDS)}")
    return _finite({"event": kind, "step": int(step), **fields, "time": time.time()})


def emit(on_event: OnEvent | None, kind: str, step: int = 0, /, **fields) -> dict:
    """Build an :func:`event` and hand it to ``on_event`` (when there is one); returns it."""
    record = event(kind, step, **fields)
    if on_event is not None:
        on_event(record)
    return record


def parse_event(line: str) -> dict | None:
    """The event on one line of output or of ``events.jsonl``; None for any other line (text,
    damaged JSON, an object without a string ``event``)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if isinstance(record, dict) and isinstance(record.get("event"), str):
        return record
    return None


def read_events(path: Path) -> list[dict]:
    """Every readable event of an ``events.jsonl``, in order. A log cut off by a kill or damaged
    on disk costs only its bad lines (bad bytes are replaced, bad records skipped)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return [record for line in text.splitlines() if (record := parse_event(line)) is not None]


class EventLog:
    """Appends events to a JSON-lines file and hands each to an optional callback."""

    def __init__(self, path: Path, on_event: OnEvent | None = None, append: bool = True):
        make_dir(path.parent)
        try:
            self.handle = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise output_error(path, exc) from exc
        self.path, self.on_event = path, on_event

    def emit(self, kind: str, step: int, /, **fields) -> dict:
        """Write the event and hand it to the callback — also when the write fails (a full
        disk), before raising :class:`~.fileio.OutputError`."""
        record = event(kind, step, **fields)
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
