"""The engine job of Render Views (and of Compare, which renders the same way first).

- :class:`RenderRequest`: ``python -m nerf_engine render RUN --cameras CAMERAS.json --out DIR
  --events jsonl``;
- :func:`views_job`: engine commands that each go through the planned views, as an
  :class:`~..jobs.engine_job.EngineJob` run from the add-on's folder (its progress: the
  engine's ``progress`` events, ``done`` of ``total`` views).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..jobs import engine_python
from ..jobs.engine_job import EngineJob


@dataclass(frozen=True)
class RenderRequest:
    """Render the cameras of ``cameras`` (a transforms file) with the run's latest checkpoint."""

    run_dir: str
    cameras: str
    out_dir: str
    depth: str = "none"  # "none", "png16" or "exr"
    device: str = "auto"

    def command(self, python: str) -> list[str]:
        """The argument list (never a shell string) that runs this request with ``python``."""
        return [
            python, "-m", "nerf_engine", "render", self.run_dir, "--cameras", self.cameras,
            "--out", self.out_dir, "--depth", self.depth, "--device", self.device,
            "--events", "jsonl",
        ]  # fmt: skip


def views_job(
    commands: list[list[str]], engine: engine_python.EnginePython, n_views: int, label: str
) -> EngineJob:
    """The (not yet started) job of engine ``commands`` that each go through ``n_views`` views.
    It runs in the add-on's folder, so that ``python -m`` finds the engine that ships with it
    (``-m`` puts the working directory before ``PYTHONPATH``)."""
    return EngineJob(
        commands,
        total=n_views,
        label=label,
        env=engine.env(),
        cwd=engine_python.addon_dir(),
        grace_s=5.0,
    )
