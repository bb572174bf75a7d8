"""The add-on's folders import each other only downwards (scene <- jobs <- features <- operators,
ui), the plain-data modules never import Blender, and Blender-side code imports from the engine
only what runs without torch (``nerf_engine.data`` and ``nerf_engine.config``). Static: reads the
sources, imports nothing."""

from __future__ import annotations

import ast
from pathlib import Path

ADDON = Path(__file__).resolve().parents[2] / "blender_nerf"
FEATURES = {"export", "train", "views", "compare", "geometry"}
# What each part may import from the add-on (besides itself and the engine's data and config).
ALLOWED = {
    "scene": set(),
    "jobs": {"scene"},  # watcher: SceneError
    "properties": {
        "properties_composite",
        "properties_mesh",
        "properties_devices",
        "properties_status",
    },
    "properties_status": set(),
    "properties_composite": set(),
    "properties_mesh": set(),
    "properties_devices": set(),
    "preferences": {"jobs", "properties_devices"},
    "export": {"scene"},
    "train": {"scene", "jobs", "preferences", "properties_devices"},
    "views": {"scene", "jobs", "preferences"},
    "compare": {"scene", "jobs", "preferences", "views"},
    "geometry": {"scene", "jobs", "preferences", "views"},
    "operators": {"scene", "jobs", "preferences", *FEATURES},
    "ui": {"scene", "jobs", "preferences", *FEATURES},
    "__init__": {"jobs", "operators", "preferences", "properties", "ui"},
}
NO_BPY = ("scene/geometry.py", "jobs/process.py", "jobs/engine_job.py", "train/job.py")
BLENDER_MODULES = {"bpy", "mathutils", "bmesh", "bpy_extras"}
ENGINE_IN_BLENDER = {"data", "config"}  # import without torch


def _sources() -> list[Path]:
    files = [p for p in ADDON.rglob("*.py") if p.relative_to(ADDON).parts[0] != "nerf_engine"]
    assert len(files) > 30
    return sorted(files)


def _part(path: Path) -> str:
    """The folder (or top-level module) a file belongs to: "scene", "properties", ..."""
    parts = path.relative_to(ADDON).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> list[tuple[int, list[str]]]:
    """(line, the imported module as add-on path parts) of every relative import in ``path``."""
    package = list(path.relative_to(ADDON).parent.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = base + (node.module.split(".") if node.module else [])
            if not node.module:  # `from . import a, b`: each name is a module
                found += [(node.lineno, [*target, alias.name]) for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def test_folders_import_only_downwards():
    offenders = []
    for path in _sources():
        part = _part(path)
        for line, target in _imports(path):
            if not target or target[0] == part:
                continue
            if target[0] == "nerf_engine":
                continue  # checked below
            if target[0] not in ALLOWED[part]:
                offenders.append(f"{path.relative_to(ADDON)}:{line} imports {'.'.join(target)}")
    assert offenders == []


def test_blender_code_imports_only_the_engine_parts_without_torch():
    offenders = [
        f"{path.relative_to(ADDON)}:{line} imports {'.'.join(target)}"
        for path in _sources()
        for line, target in _imports(path)
        if target[:1] == ["nerf_engine"] and target[1:2] and target[1] not in ENGINE_IN_BLENDER
    ]
    assert offenders == []


def test_plain_data_modules_do_not_import_blender():
    offenders = []
    for name in NO_BPY:
        tree = ast.parse((ADDON / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{name}:{node.lineno} {n}" for n in names if n in BLENDER_MODULES]
    assert offenders == []


def test_the_rules_see_every_part():
    assert {_part(path) for path in _sources()} == set(ALLOWED)
