"""The engine's folders are layers: each imports only the layers below it, and ``data/`` (with
``config``) imports without torch — the add-on uses it inside Blender, whose Python has none."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import nerf_engine

ENGINE = Path(nerf_engine.__file__).parent
REPO = ENGINE.parent
# Lower numbers are lower layers; a module may import its own layer and the ones below.
LAYERS = {
    "config": 0,
    "data": 1,
    "nerf": 2,
    "runtime": 2,
    "distributed": 2,
    "checkpoint": 3,
    "eval": 4,
    "train": 5,
    "tools": 6,
    "cli": 7,  # with __main__ and compare (the alias of `python -m nerf_engine compare`)
}
ENTRY_POINTS = ("__main__", "compare")  # modules of the cli layer
WITHOUT_TORCH = ("config", "data")  # what the add-on imports inside Blender


def layer_name(module: str) -> str:
    """'nerf_engine.eval.renderer' -> 'eval'; the package itself (its __init__, __version__) ->
    ''."""
    parts = module.split(".")[1:]
    if not parts or parts[0] == "__version__":
        return ""
    return "cli" if parts[0] in ENTRY_POINTS else parts[0]


def module_name(path: Path, repo: Path = REPO) -> str:
    parts = path.relative_to(repo).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_imports(path: Path, repo: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of an engine module in ``path``, lazy ones too."""
    module = module_name(path, repo)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names = (
                [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            found += [(node.lineno, n) for n in names if n and n.split(".")[0] == "nerf_engine"]
    return found


def _in_engine(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] == "nerf_engine"


def layer_violations(engine: Path) -> list[str]:
    """Every import of a higher layer (or of a module in no layer) under ``engine``."""
    repo, violations = engine.parent, []
    for path in sorted(engine.rglob("*.py")):
        where = path.relative_to(repo)
        own = layer_name(module_name(path, repo))
        if own == "":
            continue  # nerf_engine/__init__.py: the version string only
        if own not in LAYERS:
            violations.append(f"{where}: not in any layer; add it to LAYERS")
            continue
        for line, target in engine_imports(path, repo):
            other = layer_name(target)
            if other == "" or other == own:
                continue  # the package's __version__, or the module's own layer
            if other not in LAYERS or LAYERS[other] >= LAYERS[own]:
                violations.append(f"{where}:{line} ({own}) imports {target}")
    return violations


def test_every_layer_imports_only_the_layers_below_it():
    assert layer_violations(ENGINE) == []


def test_the_layer_check_catches_an_upward_import(tmp_path):
    """The check can fail: a data module that imports the trainer is reported."""
    fake = tmp_path / "nerf_engine"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "data" / "__init__.py").write_text("")
    (fake / "data" / "bad.py").write_text("def f():\n    from ..train.trainer import train\n")
    assert layer_violations(fake) == [
        "nerf_engine/data/bad.py:2 (data) imports nerf_engine.train.trainer"
    ]


@pytest.mark.parametrize("layer", WITHOUT_TORCH)
def test_the_data_layer_imports_without_torch_or_image_libraries(layer):
    """Every module of data/ (and config) imports in a Python where torch, Pillow, pypng,
    OpenEXR, scikit-image and OpenCV cannot be imported — as inside Blender."""
    folder = ENGINE / layer
    paths = sorted(folder.glob("*.py")) if folder.is_dir() else [ENGINE / f"{layer}.py"]
    modules = [module_name(p) for p in paths]
    assert modules, layer
    code = (
        "import sys\n"
        "for name in ('torch', 'PIL', 'png', 'OpenEXR', 'skimage', 'matplotlib', 'cv2'):\n"
        "    sys.modules[name] = None\n"
        f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print('imported', len(sys.argv))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported")
