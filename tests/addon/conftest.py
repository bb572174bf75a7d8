"""Fixtures for the add-on tests: real Blender as a Python module (bpy 5.0.1).

Every test gets a fresh factory scene (the default cube, light and camera) with the add-on
registered, and small, fast Cycles settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    import bpy
except ModuleNotFoundError:  # no Blender here: each test module skips itself (importorskip)
    bpy = None
else:
    from addon_helpers import configure_fast_render, make_trained_run

    import blender_nerf


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/addon" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.bpy)


@pytest.fixture
def factory_scene():
    """The default-cube scene, with nothing of ours registered."""
    bpy.ops.wm.read_factory_settings(use_empty=False)
    return bpy.context.scene


@pytest.fixture
def scene(factory_scene):
    """The default-cube scene with the add-on registered and a tiny Cycles setup."""
    blender_nerf.register()
    configure_fast_render(factory_scene)
    yield factory_scene
    blender_nerf.unregister()


@pytest.fixture
def prefs(scene):
    """The add-on's preferences: ``scene``'s add-on handed to Blender's add-on machinery, which
    creates them (a plain ``register()`` has none)."""
    import addon_utils

    def fail(exc):
        raise exc

    blender_nerf.unregister()
    addon_utils.enable("blender_nerf", default_set=True, handle_error=fail)
    try:
        yield bpy.context.preferences.addons["blender_nerf"].preferences
    finally:
        addon_utils.disable("blender_nerf", default_set=True, handle_error=fail)
        blender_nerf.register()  # what ``scene`` unregisters


@pytest.fixture(scope="session")
def python_without_torch(tmp_path_factory):
    """A fresh virtual environment: a working Python that has no PyTorch."""
    folder = tmp_path_factory.mktemp("venv") / "no_torch"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120
    )
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True, timeout=60)
    assert probe.returncode != 0, "the new venv can import torch: the test would prove nothing"
    return python


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A tiny NeRF of the default cube (``dataset``, ``run``), exported and trained once through
    the operators; each test then starts from its own fresh ``scene``."""
    bpy.ops.wm.read_factory_settings(use_empty=False)
    blender_nerf.register()
    try:
        return make_trained_run(tmp_path_factory.mktemp("trained"))
    finally:
        blender_nerf.unregister()
