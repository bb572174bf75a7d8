"""The engine's Python: which interpreter runs it, Check, and Install Dependencies (pip into a
user folder, never the add-on's own) — without downloading PyTorch."""

from __future__ import annotations

import os
import re
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import RecordingLayout, time_limit  # noqa: E402

from blender_nerf import preferences  # noqa: E402
from blender_nerf.jobs import engine_python, process  # noqa: E402
from blender_nerf.jobs.engine_python import ENGINE_PACKAGES, EngineSetupError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PIP_ENV = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "PIP_TARGET")


@pytest.fixture
def user_folder(monkeypatch, tmp_path):
    """Blender's user datafiles in tmp_path, and pip configured by nothing but our arguments
    (no pip.conf, no PIP_* variables: this machine's point at a local wheel folder)."""
    monkeypatch.setenv("BLENDER_USER_DATAFILES", str(tmp_path / "user"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in PIP_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "user" / "blender_nerf" / "site-packages"


@pytest.fixture
def offline():
    """Preferences > System > Allow Online Access off (``bpy.app.online_access`` False)."""
    system = bpy.context.preferences.system
    was = system.use_online_access
    system.use_online_access = False
    assert bpy.app.online_access is False  # else a test could download for real
    yield
    system.use_online_access = was


def _addon_files():
    folder = Path(engine_python.addon_dir())
    return sorted(str(p) for p in folder.rglob("*") if "__pycache__" not in p.parts)


def test_install_commands_for_each_variant(tmp_path):
    py, target = "/blender/python", tmp_path / "site"
    head = [py, "-m", "pip", "install", "--upgrade", "--no-input", "--disable-pip-version-check"]
    head += ["--target", str(target)]
    cpu = engine_python.install_commands(py, target, "CPU")
    assert cpu == [
        [*head, "--index-url", "https://download.pytorch.org/whl/cpu", "torch"],
        [*head, *ENGINE_PACKAGES],
    ]
    cuda = engine_python.install_commands(py, target, "CUDA126")
    assert cuda[0][-3:] == ["--index-url", "https://download.pytorch.org/whl/cu126", "torch"]
    assert engine_python.install_commands(py, target, "DEFAULT")[0] == [*head, "torch"]
    offline = engine_python.install_commands(py, target, "CUDA128", wheel_dir="/wheels")
    assert [c[len(head) : len(head) + 3] for c in offline] == [
        ["--no-index", "--find-links", "/wheels"]
    ] * 2
    assert engine_python.install_commands(py, target, "CPU", need_pip=True)[0] == [
        py, "-m", "ensurepip", "--upgrade",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown PyTorch variant 'ROCM'"):
        engine_python.install_commands(py, target, "ROCM")


def test_the_engine_packages_are_what_requirements_txt_lists():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    names = {re.split(r"[=<>~ ]", line)[0] for line in lines if line and line[0].isalpha()}
    assert names == {"torch", *ENGINE_PACKAGES}


def test_dependencies_go_to_a_user_folder_not_the_addon(scene, user_folder):
    with pytest.raises(ValueError):  # registered as a plain add-on: not an extension
        bpy.utils.extension_path_user(preferences.ADDON_ID, path="site-packages")
    folder = engine_python.dependencies_dir(preferences.ADDON_ID)
    assert folder == user_folder and not folder.exists()
    assert engine_python.dependencies_dir(preferences.ADDON_ID, create=True).is_dir()
    assert Path(engine_python.addon_dir()) not in folder.parents


def test_a_failed_install_is_reported_and_leaves_nothing_behind(prefs, user_folder, tmp_path):
    wheels = tmp_path / "wheels"  # an empty "offline" folder: pip finds no torch, like no network
    wheels.mkdir()
    prefs.wheel_dir = str(wheels)
    before = _addon_files()
    with time_limit(120), pytest.raises(RuntimeError) as info:
        bpy.ops.nerf.install_dependencies()
    message = "Install Dependencies failed: No matching distribution found for torch"
    assert str(info.value).strip() == f"Error: {message}"
    assert prefs.install_status == message
    assert user_folder.is_dir() and list(user_folder.iterdir()) == []
    assert _addon_files() == before, "something was written into the add-on's folder"
    assert process.live_jobs() == []
    layout = RecordingLayout()
    preferences.draw_preferences(layout, prefs)
    assert ("label", message) in layout.calls
    assert ("operator", "nerf.install_dependencies") in layout.calls
    assert {("prop", "NERF_AP_preferences", n) for n in ("torch_variant", "wheel_dir")} <= set(
        layout.calls
    )


def test_offline_the_download_is_refused_and_the_button_says_why(prefs, user_folder, offline):
    operator = bpy.types.NERF_OT_install_dependencies
    with time_limit(60), pytest.raises(RuntimeError) as info:
        bpy.ops.nerf.install_dependencies()
    assert str(info.value).strip() == f"Error: {preferences.OFFLINE_MESSAGE}"
    assert prefs.install_status == preferences.OFFLINE_MESSAGE
    assert not user_folder.exists() and process.live_jobs() == []  # pip never started
    reason = ("label", "Allow Online Access is off (Preferences > System):")
    layout = RecordingLayout()
    preferences.draw_preferences(layout, prefs)
    assert reason in layout.calls
    no_wheels = SimpleNamespace(wheel_dir="")
    assert operator.description(bpy.context, no_wheels) == preferences.OFFLINE_MESSAGE
    prefs.wheel_dir = "/wheels"  # a folder to install from: allowed, the usual tooltip
    assert operator.description(bpy.context, no_wheels) == operator.__doc__
    layout = RecordingLayout()
    preferences.draw_preferences(layout, prefs)
    assert reason not in layout.calls
    prefs.wheel_dir = ""


# distribution -> import name, where they differ
MODULES = {
    "pypng": "png",
    "openexr": "OpenEXR",
    "scikit-image": "skimage",
    "opencv-python-headless": "cv2",
}
FAKE_TORCH = """
__version__ = "99.0+fake"
class version:
    cuda = None
class cuda:
    is_available = staticmethod(lambda: False)
    device_count = staticmethod(lambda: 0)
class backends:
    pass
"""


def _fake_wheel(folder: Path, name: str) -> None:
    """A pure-Python wheel of the distribution ``name``: a stand-in module, nothing inside."""
    stem = name.replace("-", "_")  # a wheel's file name spells the distribution with '_'
    dist = f"{stem}-99.0.dist-info"
    module = MODULES.get(name, name)
    files = {
        f"{module}/__init__.py": FAKE_TORCH if name == "torch" else "__version__ = '99.0'\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 99.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{stem}-99.0-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


def test_installed_packages_are_used_through_pythonpath(
    prefs, user_folder, tmp_path, monkeypatch, python_without_torch, offline
):
    """The whole install with stand-in wheels (from a folder: allowed with Allow Online Access
    off), then a Blender whose Python has no torch of its own runs the engine with the installed
    folder on PYTHONPATH."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("torch", *ENGINE_PACKAGES):
        _fake_wheel(wheels, name)
    prefs.torch_variant = "CUDA126"  # ignored offline: everything comes from the folder
    with time_limit(180):
        assert bpy.ops.nerf.install_dependencies(wheel_dir=str(wheels)) == {"FINISHED"}
    assert (user_folder / "torch" / "__init__.py").is_file()
    assert prefs.install_status.startswith("Installed PyTorch (CUDA 12.6) into")

    monkeypatch.setattr(sys, "executable", str(python_without_torch))
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    with pytest.raises(EngineSetupError, match="Blender's Python has no PyTorch"):
        engine_python.resolve("", None)
    engine = engine_python.resolve("", user_folder)
    assert engine.source == "dependencies" and engine.executable == str(python_without_torch)
    path = engine.env()["PYTHONPATH"].split(os.pathsep)
    assert path == [engine_python.addon_dir(), str(user_folder), "/somewhere/else"]
    info = engine_python.check(engine)
    assert info["torch"] == "99.0+fake" and info["missing"] == []


def test_the_preference_interpreter_comes_first(tmp_path, python_without_torch, scene):
    own = engine_python.resolve("", None)
    assert own.source == "blender" and own.executable == sys.executable
    assert engine_python.resolve(sys.executable, None).source == "preferences"
    with pytest.raises(EngineSetupError, match="cannot import torch"):
        engine_python.resolve(str(python_without_torch), None)
    not_a_program = tmp_path / "python"
    not_a_program.write_text("just text")
    with pytest.raises(EngineSetupError, match="cannot be run"):
        engine_python.resolve(str(not_a_program), None)


def test_check_reports_torch_and_devices(prefs):
    with time_limit(180):
        assert bpy.ops.nerf.check_engine() == {"FINISHED"}
    info = prefs.engine_info
    assert re.match(r"PyTorch \d+\.\d+\S* on Python 3\.\d+\.\d+; devices: .*CPU", info), info
    assert f"({sys.executable}, blender)" in info
    layout = RecordingLayout()
    preferences.draw_preferences(layout, prefs)
    assert ("label", info) in layout.calls and ("operator", "nerf.check_engine") in layout.calls
