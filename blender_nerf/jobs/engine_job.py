"""The engine's side of every job: ``python -m nerf_engine <command> ... --events jsonl`` prints
one JSON object a line on stdout (the events contract of DESIGN.md), the same for train, render
and compare:

- ``start``: ``step`` (training: where it starts; render and compare: the run's trained step),
  ``total`` (the views to go; training says ``total_steps``);
- ``progress``: ``done`` and ``total`` views (render, eval, compare); training its own numbers;
- ``warning``: ``message`` (something the engine recovered from);
- ``error``: ``message`` and ``kind`` (why the job failed);
- ``done``: the job's results.

:class:`EngineJob` keeps what every job shares: progress summed over its commands, the warnings,
the error, a status line for the panel, and hints when the engine's Python lacks a package.
:class:`~..train.job.TrainJob` adds the training numbers. No bpy here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .process import ProcessJob

# What to do when the engine's Python cannot import something (found in its output).
HINTS = {
    "No module named 'torch'": "this Python has no PyTorch: use Install Dependencies "
    "(Preferences > Add-ons > blender-nerf) or set Engine Python to an interpreter with PyTorch",
    "No module named 'numpy'": "this Python has no NumPy (nor, likely, PyTorch): use Install "
    "Dependencies (Preferences > Add-ons > blender-nerf) or set Engine Python to an interpreter "
    "with PyTorch",
    "No module named 'nerf_engine'": "the engine package is not on this Python's path; "
    "reinstall the add-on",
}


class EngineJob(ProcessJob):
    """Engine commands run one after another, each going through ``total`` views (until its
    ``start`` or ``progress`` events say otherwise); see the module docstring."""

    def __init__(
        self,
        commands: Sequence[Sequence[str]],
        *,
        total: int = 1,
        label: str = "Engine",
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        grace_s: float = 30.0,
        unit: str = "view",
    ):
        """``unit``: what the ``done``/``total`` of its progress count, in the status line."""
        super().__init__(commands, env=env, cwd=cwd, label=label, grace_s=grace_s)
        self.unit = unit
        count = len(self.commands)
        self.views_done = [0] * count  # per command: ``done`` of its latest progress event
        self.views_total = [max(1, total)] * count  # per command: its views to go
        self.step = 0  # the largest step any event carried
        self.warnings: list[str] = []  # the engine's warning events
        self.error: str | None = None  # the message of its error event
        self.notes: list[str] = []  # warnings the add-on found before the job started

    @property
    def progress(self) -> float:
        """0..1: the views done over all commands; 1 once finished."""
        if self.state == "finished":
            return 1.0
        return min(1.0, sum(self.views_done) / sum(self.views_total))

    def status(self) -> str:
        """One line for the panel."""
        if self.done:
            return self.message
        if self.stop_requested:
            return f"{self.label}: stopping…"
        if not any(self.views_done):
            return f"{self.label}: starting the engine (loading PyTorch)…"
        index = self._command_index
        of = f" (step {index + 1} of {len(self.commands)})" if len(self.commands) > 1 else ""
        done, total = self.views_done[index], self.views_total[index]
        return f"{self.label}: {self.unit} {done} of {total}{of}"

    def warnings_text(self) -> str:
        """`` 2 warnings: <the last one>`` for a report, or "" when the engine warned of nothing."""
        if not self.warnings:
            return ""
        count = len(self.warnings)
        return f" {count} warning{'s' if count > 1 else ''}: {self.warnings[-1]}"

    def on_event(self, record: dict) -> None:
        kind = record["event"]
        self.step = max(self.step, as_int(record.get("step")))
        index = self._command_index
        if kind in ("start", "progress"):
            self.views_total[index] = as_int(record.get("total")) or self.views_total[index]
        if kind == "progress":
            self.views_done[index] = max(self.views_done[index], as_int(record.get("done")))
        elif kind == "warning":
            self.warnings.append(str(record.get("message") or "the engine reported a warning"))
        elif kind == "error":
            self.error = str(record.get("message") or "the engine reported an error")

    def outcome(self, returncode: int) -> tuple[str, str]:
        if self.error:
            return "failed", f"{self.label} failed: {self.error}{self._hint(self.error)}"
        return super().outcome(returncode)

    def failure_reason(self, returncode: int) -> str:
        reason = super().failure_reason(returncode)
        return reason + self._hint("\n".join(self.output))

    def _hint(self, text: str) -> str:
        """`` (what to do)`` when ``text`` shows a package missing from the engine's Python."""
        hints = [hint for needle, hint in HINTS.items() if needle in text]
        return f" ({hints[0]})" if hints else ""


def as_int(value) -> int:
    """An event's number as an int (0 when missing or malformed)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def as_float(value) -> float | None:
    """An event's number as a float (None when missing or malformed)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
