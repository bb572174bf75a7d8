"""The layout of a training run folder, and its one reader (the engine's and the add-on's).

```
RUN/
  config.json                what was trained: {"engine_version", "dataset", "device",
                             "autocast", "scene": {"aabb", "near", "far"}, "config": {...}}
  events.jsonl               every event of the train job (``events``)
  checkpoints/step_0001000.pt   the newest ``keep_checkpoints`` of them (``.step_*.pt.*.tmp``
                             while one is written)
  previews/latest.png target.png step_0000500.png   a held-out view during training
  metrics.json               the final evaluation on the test split
  compare/                   what Compare writes (``report.json``, side-by-side images)
  mesh.ply                   what Extract Mesh writes (``python -m nerf_engine mesh``)
```

Nothing else in the engine or the add-on spells these names or globs these folders. Standard
library and numpy only: the add-on reads run folders inside Blender.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIG = "config.json"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints"
PREVIEWS = "previews"
METRICS = "metrics.json"
COMPARE = "compare"
MESH = "mesh.ply"
_CHECKPOINT_NAME = re.compile(r"^step_(\d{7,})\.pt$")
_PARTIAL_CHECKPOINT = re.compile(r"^\.step_\d{7,}\.pt\..+\.tmp$")  # what fileio.atomic_path leaves


class RunFolderError(ValueError):
    """A run folder (or a file in it) that cannot be used; the message names it and says what to
    do."""


@dataclass(frozen=True)
class SceneBounds:
    """The scene box a run was trained in, in world units: ``aabb`` [2, 3] (min and max corner)
    and the ray range ``near``–``far`` of its training cameras."""

    aabb: np.ndarray
    near: float
    far: float


class RunFolder:
    """Paths and readers of one run folder (it need not exist yet)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- where things are ----------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def previews_dir(self) -> Path:
        return self.path / PREVIEWS

    @property
    def mesh_path(self) -> Path:
        """Where Extract Mesh has the engine write the run's surface (binary PLY)."""
        return self.path / MESH

    @property
    def preview_latest(self) -> Path:
        return self.previews_dir / "latest.png"

    @property
    def preview_target(self) -> Path:
        return self.previews_dir / "target.png"

    def preview_path(self, step: int) -> Path:
        return self.previews_dir / f"step_{step:07d}.png"

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def compare_dir(self) -> Path:
        return self.path / COMPARE

    def checkpoint_path(self, step: int) -> Path:
        """Where the checkpoint of training step ``step`` is written."""
        return self.checkpoint_dir / f"step_{step:07d}.pt"

    # --- what is there -------------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        """The run's checkpoints, oldest first (by step, not by name or date)."""
        found = [
            (int(m.group(1)), path)
            for path in self._checkpoint_files()
            if (m := _CHECKPOINT_NAME.match(path.name))
        ]
        return [path for _, path in sorted(found)]

    def partial_checkpoints(self) -> list[Path]:
        """Temporary files of checkpoint writes that never finished (a process killed mid-write)."""
        return [p for p in self._checkpoint_files() if _PARTIAL_CHECKPOINT.match(p.name)]

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def _checkpoint_files(self) -> list[Path]:
        folder = self.checkpoint_dir
        return list(folder.iterdir()) if folder.is_dir() else []

    def read_config(self) -> dict:
        """``config.json`` as written by the trainer. Raises :class:`RunFolderError` when it is
        missing or unreadable, naming the file."""
        path = self.config_path
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise RunFolderError(
                f"{path}: not found; is '{self.path}' a training run folder? Train first or "
                "choose the folder of a trained run."
            ) from exc
        except (OSError, ValueError) as exc:
            raise RunFolderError(
                f"{path}: unreadable ({type(exc).__name__}: {exc}); the trainer writes this "
                "file — restore it or train again."
            ) from exc
        if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
            raise RunFolderError(
                f"{path}: not a run configuration (no 'config' object); restore it or train again."
            )
        return record

    def train_settings(self) -> dict:
        """The training configuration of ``config.json`` (``TrainConfig.to_dict()``)."""
        return self.read_config()["config"]

    def dataset_dir(self) -> Path | None:
        """The dataset folder the run was trained on, as recorded (it may have moved since)."""
        dataset = self.read_config().get("dataset")
        return Path(dataset) if isinstance(dataset, str) and dataset else None

    def scene_bounds(self) -> SceneBounds | None:
        """The scene box the run was trained in, or None when ``config.json`` lacks it."""
        scene = self.read_config().get("scene")
        try:
            aabb = np.asarray(scene["aabb"], dtype=np.float64)
            bounds = SceneBounds(aabb, float(scene["near"]), float(scene["far"]))
        except (TypeError, KeyError, ValueError):
            return None
        return bounds if aabb.shape == (2, 3) and np.isfinite(aabb).all() else None

    def background(self) -> tuple[float, float, float]:
        """The background colour the run composites RGBA images over (white when unknown)."""
        try:
            background = self.train_settings().get("background")
        except RunFolderError:
            return (1.0, 1.0, 1.0)
        if isinstance(background, list) and len(background) == 3:
            return tuple(float(v) for v in background)
        return (1.0, 1.0, 1.0)
