"""The engine never imports Blender and never hard-codes a device."""

from __future__ import annotations

import ast
from pathlib import Path

import nerf_engine

BLENDER_MODULES = {"bpy", "mathutils", "bmesh", "bpy_extras", "gpu", "aud", "idprop"}
FORBIDDEN_CALLS = ("cuda", "set_default_tensor_type", "set_default_device")
ENGINE = Path(nerf_engine.__file__).parent


def engine_sources():
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 10
    return files


def test_no_blender_imports_anywhere_in_the_engine():
    offenders = []
    for path in engine_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
                names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant)]
            offenders += [
                f"{path.name}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in BLENDER_MODULES
            ]
    assert offenders == []


def test_no_hard_coded_cuda():
    offenders = []
    for path in engine_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            calls_attribute = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if calls_attribute and node.func.attr in FORBIDDEN_CALLS:
                offenders.append((path.name, node.lineno, node.func.attr))
    assert offenders == []
