"""``python3 build.py package``: the extension zip (add-on, vendored engine, manifest) passes
Blender's own validator, installs with ``bpy.ops.extensions.package_install_files`` into a
temporary user folder, and the installed copy runs export -> train -> render -> import -> compare
(in a fresh interpreter, nothing of the repository on its path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import build  # noqa: E402


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory):
    """The zip as `build.py package` writes it, into a temporary dist folder."""
    dist = tmp_path_factory.mktemp("dist")
    previous, build.DIST = build.DIST, dist
    try:
        return build.package()
    finally:
        build.DIST = previous


def test_the_zip_holds_the_addon_the_engine_and_the_manifest(extension_zip):
    manifest = tomllib.loads((ROOT / "addon_manifest.toml").read_text())
    assert extension_zip.name == f"blender_nerf-{manifest['version']}.zip"
    with zipfile.ZipFile(extension_zip) as archive:
        names = set(archive.namelist())
        assert tomllib.loads(archive.read("blender_manifest.toml").decode()) == manifest
    engine = {f"nerf_engine/{path.name}" for path in (ROOT / "nerf_engine").glob("*.py")}
    assert engine <= names  # vendored: the files themselves, not the repository's link
    addon = ROOT / "blender_nerf"
    modules = {
        path.relative_to(addon).as_posix()
        for path in addon.rglob("*.py")
        if path.relative_to(addon).parts[0] not in ("nerf_engine", "__pycache__")
    }
    assert {"scene/shots.py", "jobs/watcher.py", "operators/views.py"} <= modules
    assert modules | {"nerf_engine/__main__.py"} <= names  # every add-on folder ships
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_blenders_validator_accepts_it_and_rejects_a_bad_manifest(extension_zip, tmp_path):
    validator = build.blender_validator()
    tags = validator.parents[3] / "modules" / "_bpy_internal" / "extensions" / "tags.py"

    def validate(path):
        cmd = [sys.executable, str(validator), "validate", "--valid-tags", str(tags), str(path)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    good = validate(extension_zip)
    assert good.returncode == 0 and "Success" in good.stdout, good.stdout + good.stderr
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(extension_zip) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "blender_manifest.toml":
                data = data.replace(b'"Camera"', b'"Not A Tag"')
            dst.writestr(item, data)
    refused = validate(bad)
    assert refused.returncode != 0 and "Not A Tag" in refused.stdout + refused.stderr


def test_install_and_run_the_whole_loop_from_the_installed_copy(extension_zip, tmp_path):
    resources, work = tmp_path / "user resources", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["BLENDER_USER_RESOURCES"] = str(resources)  # read by Blender when bpy is imported
    script = Path(__file__).with_name("installed_flow.py")
    result = subprocess.run(
        [sys.executable, str(script), str(extension_zip), str(work)],
        capture_output=True, text=True, env=env, cwd=work, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    installed = resources / "extensions" / "user_default" / "blender_nerf"
    assert Path(results["module_file"]) == installed / "__init__.py"
    assert Path(results["engine_file"]) == installed / "nerf_engine" / "__init__.py"
    assert Path(results["addon_dir"]) == installed
    for step in ("install", "export", "train", "render", "PLANE", "CAMERA_BACKGROUND", "compare"):
        assert results[step] == ["FINISHED"], (step, results)
    assert results["COMPOSITOR"] == ["FINISHED"]
    assert {"objects:NeRF Camera", "materials:NeRF Camera", "images:NeRF Camera"} <= set(
        results["tagged"]
    )
    assert results["background_images"] == 1
    report = results["report"]
    assert report["n_views"] == 1 and report["psnr"] > 10, report
    assert results["status"].startswith("Compared 1 view(s)")
    assert (work / "run" / "compare" / "side_by_side.png").is_file()
