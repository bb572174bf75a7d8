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
from nerf_engine.data.depth import has_depth
from nerf_engine.tools.suite import at_budget

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
        assert has_depth(train.frames) and has_depth(test.frames), folder.name  # depth exported
    city = read_split(tmp_path / "far_city_block_24", "train")
    centre, size = city.aabb.mean(axis=0), np.ptp(city.aabb, axis=0)
    assert np.linalg.norm(centre) > 300 and size.max() > 100  # far away and not unit-sized
    stamps = {f.name: json.loads((f / ".suite.json").read_text()) for f in folders}
    before = {f.name: (f / "train" / "r_0.png").stat().st_mtime_ns for f in folders}
    again = build(tmp_path)  # cached: nothing is rendered again
    assert again.returncode == 0, again.stderr[-2000:]
    assert before == {f.name: (f / "train" / "r_0.png").stat().st_mtime_ns for f in folders}
    assert stamps == {f.name: json.loads((f / ".suite.json").read_text()) for f in folders}


def test_bench_suite_trains_each_scene_beside_the_reference(tmp_path):
    """`bench --suite` builds what is missing, trains per budget, and reports every scene with the
    mean and the worst scene."""
    cmd = [sys.executable, "-m", "nerf_engine", "bench", "--suite", str(tmp_path / "suite")]
    cmd += ["--suite-resolution", "24", "--suite-views", "4", "--suite-test", "1"]
    cmd += ["--suite-scenes", "thin_structures,alpha_plant", "--budgets", "0.5,1"]
    cmd += ["--json", str(tmp_path / "suite.json"), "--markdown", str(tmp_path / "suite.md")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "suite.json").read_text())
    assert data["budgets"] == [0.5, 1.0]
    assert set(data["scenes"]) == {"thin_structures_24", "alpha_plant_24"}
    for scene in data["scenes"].values():
        assert set(scene) == {"preview", "reference"}
        for name, run in scene.items():
            for budget in (0.5, 1.0):  # (one step may pass both: one measurement then)
                point = at_budget(run["curve"], budget)
                assert point["seconds"] >= budget and 5 < point["psnr"] < 60, name
                if name == "preview":  # the scenes are exported with depth: its error is measured
                    assert 0 < point["depth_error"] < 1, name
        preview = scene["preview"]  # what explains its speed: samples a ray and the grid
        assert 0 < preview["samples_per_ray_steady"] <= 32 + 64  # (32 coarse, 32 + 32 fine at most)
        assert 0 < preview["occupied_fraction"] < 1  # exported with depth: the grid starts carved
    table = (tmp_path / "suite.md").read_text()
    assert "| **mean** | **preview** |" in table and "| **worst** | **reference** |" in table
    assert "depth error 1 s (%)" in table and "| samples/ray | grid occupied (%) |" in table
