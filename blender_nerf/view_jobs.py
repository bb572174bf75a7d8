"""Render Views and Compare as :class:`~.jobs.ProcessJob` s (no bpy here).

- :class:`RenderRequest`: ``python -m nerf_engine render RUN --cameras CAMERAS.json --out DIR``;
- :class:`CompareRequest`: the same render of the compared cameras, then
  ``python -m nerf_engine compare --gt GT --nerf NERF --run RUN --out OUT``.

:class:`ViewsJob` follows the ``[i/n] ...`` lines both print on stderr per view: ``progress`` is
the fraction of all views of all its commands that are done.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .jobs import ProcessJob
from .train_job import HINTS

VIEW_LINE = re.compile(r"^\[(\d+)/(\d+)\]")
DEPTHS = ("none", "png16", "exr")


@dataclass(frozen=True)
class RenderRequest:
    """Render the cameras of ``cameras`` (a transforms file) with the run's latest checkpoint."""

    run_dir: str
    cameras: str
    out_dir: str
    depth: str = "none"  # one of DEPTHS
    device: str = "auto"

    def command(self, python: str) -> list[str]:
        """The argument list (never a shell string) that runs this request with ``python``."""
        return [
            python, "-m", "nerf_engine", "render", self.run_dir, "--cameras", self.cameras,
            "--out", self.out_dir, "--depth", self.depth, "--device", self.device,
        ]  # fmt: skip


@dataclass(frozen=True)
class CompareRequest:
    """Render the NeRF for the cameras whose ground truth is in ``gt_dir``, then compare."""

    run_dir: str
    cameras: str
    gt_dir: str
    nerf_dir: str
    out_dir: str
    device: str = "auto"

    def commands(self, python: str) -> list[list[str]]:
        render = RenderRequest(self.run_dir, self.cameras, self.nerf_dir, "none", self.device)
        compare = [
            python, "-m", "nerf_engine", "compare", "--gt", self.gt_dir, "--nerf", self.nerf_dir,
            "--run", self.run_dir, "--out", self.out_dir,
        ]  # fmt: skip
        return [render.command(python), compare]

    @property
    def report_path(self) -> Path:
        return Path(self.out_dir) / "report.json"


class ViewsJob(ProcessJob):
    """Engine commands that each go through ``n_views`` views, printing ``[i/n]`` per view."""

    def __init__(
        self,
        commands: list[list[str]],
        n_views: int,
        *,
        label: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        grace_s: float = 5.0,
    ):
        # cwd: the add-on's folder, so that `python -m` finds the engine that ships with it
        # (-m puts the working directory before PYTHONPATH)
        super().__init__(commands, env=env, cwd=cwd, label=label, grace_s=grace_s)
        self.n_views = max(1, n_views)
        self.notes: list[str] = []  # warnings for the user, found before the job started
        self.views_done = [0] * len(self.commands)  # per command, from its "[i/n]" lines

    @property
    def progress(self) -> float:
        """0..1 over all commands; 1 once finished."""
        if self.state == "finished":
            return 1.0
        return min(1.0, sum(self.views_done) / (self.n_views * len(self.commands)))

    @property
    def command_index(self) -> int:
        return self._command_index

    def status(self) -> str:
        """One line for the panel."""
        if self.done:
            return self.message
        if self.stop_requested:
            return f"{self.label}: stopping…"
        index = self._command_index
        if not any(self.views_done):
            return f"{self.label}: starting the engine (loading PyTorch)…"
        step = f" (step {index + 1} of {len(self.commands)})" if len(self.commands) > 1 else ""
        return f"{self.label}: view {self.views_done[index]} of {self.n_views}{step}"

    def on_output(self, line: str) -> None:
        match = VIEW_LINE.match(line.strip())
        if match:
            index = self._command_index
            self.views_done[index] = max(self.views_done[index], int(match.group(1)))

    def failure_reason(self, returncode: int) -> str:
        reason = super().failure_reason(returncode)
        text = "\n".join(self.output)
        hints = [hint for needle, hint in HINTS.items() if needle in text]
        return reason + (f" ({hints[0]})" if hints else "")
