"""The benchmark scene suite (benchmarks/scene_suite.py) builds and renders every scene with real
bpy and Cycles — here at a tiny size — through the add-on's Export Dataset, and caches it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

from nerf_engine.data.dataset import load_rgba, read_split

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "scene_suite.py"


def build(out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--resolution", "24", "--views", "4"]
    cmd += ["--test", "1", "--samples", "4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_every_scene_builds_renders_and_is_cached(tmp_path):
    result = build(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    folders = [Path(line) for line in result.stdout.splitlines() if Path(line).is_dir()]
    names = {folder.name for folder in folders}
    assert names == {
        "textured_suzanne_24", "glossy_still_life_24", "thin_structures_24",
        "far_city_block_24", "alpha_plant_24",
    }  # fmt: skip
    for folder in folders:
        train, test = read_split(folder, "train"), read_split(folder, "test")
        assert (len(train.frames), len(test.frames)) == (4, 1)
        images = load_rgba(train)
        assert images[0].shape == (24, 24, 4)
        alpha = np.stack([image[..., 3] for image in images])
        assert 0.02 < alpha.mean() < 0.98, folder.name  # the subject on a transparent film
        assert np.std([image[..., :3] for image in images]) > 0.02, folder.name  # not flat
    city = read_split(tmp_path / "far_city_block_24", "train")
    centre, size = city.aabb.mean(axis=0), np.ptp(city.aabb, axis=0)
    assert np.linalg.norm(centre) > 300 and size.max() > 100  # far away and not unit-sized
    stamps = {f.name: json.loads((f / ".suite.json").read_text()) for f in folders}
    before = {f.name: (f / "train" / "r_0.png").stat().st_mtime_ns for f in folders}
    again = build(tmp_path)  # cached: nothing is rendered again
    assert again.returncode == 0, again.stderr[-2000:]
    assert before == {f.name: (f / "train" / "r_0.png").stat().st_mtime_ns for f in folders}
    assert stamps == {f.name: json.loads((f / ".suite.json").read_text()) for f in folders}
