"""Helpers shared by engine tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nerf_engine.config import preset, with_overrides

ROOT = Path(__file__).resolve().parents[2]


def engine(*args, **kwargs) -> subprocess.CompletedProcess:
    """``python -m nerf_engine *args`` from the repository, its output captured as text."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "nerf_engine", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300, **kwargs
    )  # fmt: skip


def events_of(stdout: str) -> list[dict]:
    """The JSON-lines events of an engine command's stdout."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def tiny_config(**overrides):
    """A seconds-long configuration: same algorithm, tiny sizes."""
    base = {
        "model.depth": 2,
        "model.width": 32,
        "model.view_width": 16,
        "model.skip_layer": None,
        "sampling.n_coarse": 8,
        "sampling.n_fine": 8,
        "batch_rays": 64,
        "steps": 10,
        "log_every": 5,
        "preview_every": 5,
        "checkpoint_every": 5,
        "preview_max_side": 16,
        "eval_views": 1,
        "precrop_steps": 3,
        "device": "cpu",
    }
    base.update(overrides)
    return with_overrides(preset("preview"), base)
