#!/usr/bin/env python3
"""Developer entry point for blender-nerf (standard library only).

    python3 build.py setup    create .venv (Python 3.11) with the pinned dependencies
    python3 build.py test     set up if needed, lint, run the whole test suite
    python3 build.py lint     ruff check + ruff format --check
    python3 build.py demo     set up if needed, then run the whole loop on the demo scene
    python3 build.py package  write dist/blender_nerf-<version>.zip (the Blender extension) and
                              check it with Blender's own extension validator

Extra arguments after ``test`` go to pytest (``python3 build.py test -k sampling``).
The version is the one in addon_manifest.toml, and nowhere else.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements-dev.txt"
STAMP = VENV / ".requirements.sha256"
PYTHON_VERSION = (3, 11)  # bpy 5.0.1 exists for Python 3.11 only
MANIFEST = ROOT / "addon_manifest.toml"
ADDON, ENGINE = ROOT / "blender_nerf", ROOT / "nerf_engine"
DIST = ROOT / "dist"
SKIPPED = ("__pycache__", ".pyc", ".pyo", ".DS_Store")
ZIP_TIME = (2024, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip


def venv_python() -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def requirements_digest() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "requirements-dev.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def find_base_python() -> str:
    """A Python 3.11 interpreter to build the venv from."""
    if sys.version_info[:2] == PYTHON_VERSION:
        return sys.executable
    name = "python{}.{}".format(*PYTHON_VERSION)
    found = shutil.which(name)
    if found:
        return found
    sys.exit(
        f"build.py: need Python {name} (bpy 5.0.1 is published for it only); "
        f"install it and run `{name} build.py setup`."
    )


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, **kwargs)
    if result.returncode != 0:
        sys.exit(result.returncode)


def setup(force: bool = False) -> None:
    digest = requirements_digest()
    if not force and venv_python().exists() and STAMP.exists() and STAMP.read_text() == digest:
        return
    if not venv_python().exists():
        run([find_base_python(), "-m", "venv", VENV])
    run([venv_python(), "-m", "pip", "install", "--quiet", "-r", REQUIREMENTS])
    STAMP.write_text(digest)
    print(f"build.py: environment ready in {VENV}")


def lint() -> None:
    setup()
    run([venv_python(), "-m", "ruff", "check", "."])
    run([venv_python(), "-m", "ruff", "format", "--check", "."])


def test(pytest_args: list[str]) -> None:
    lint()
    run([venv_python(), "-m", "pytest", *pytest_args])


def demo(demo_args: list[str]) -> None:
    setup()
    run([venv_python(), ROOT / "demo" / "run_demo.py", *demo_args])


def manifest_field(name: str) -> str:
    """A top-level string field of addon_manifest.toml (``version``, ``id``)."""
    text = MANIFEST.read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        match = re.search(rf'^{name}\s*=\s*"([^"]*)"', text, re.MULTILINE)
        if match is None:
            sys.exit(f"build.py: no {name} in {MANIFEST.name}")
        return match.group(1)
    return str(tomllib.loads(text)[name])


def package_files() -> list[tuple[Path, str]]:
    """(source file, path in the zip): the add-on, the engine vendored inside it (the repository
    links it), the manifest as blender_manifest.toml. Caches and compiled files are left out."""
    files = [(MANIFEST, "blender_manifest.toml")]
    for root, prefix in ((ADDON, ""), (ENGINE, "nerf_engine/")):
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if relative.parts[0] == "nerf_engine" or not path.is_file():
                continue  # the link to the engine: the real files come from ENGINE
            if any(part.endswith(SKIPPED) for part in relative.parts):
                continue
            files.append((path, prefix + relative.as_posix()))
    return files


def package() -> Path:
    """Write dist/<id>-<version>.zip and return its path."""
    name = f"{manifest_field('id')}-{manifest_field('version')}.zip"
    DIST.mkdir(exist_ok=True)
    target = DIST / name
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, arcname in package_files():
            info = zipfile.ZipInfo(arcname, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())
    os.replace(tmp, target)
    print(f"build.py: wrote {target} ({target.stat().st_size // 1024} KiB)")
    return target


def blender_validator() -> Path | None:
    """Blender's extension command line (``blender --command extension``) as shipped in bpy."""
    site = VENV / "lib" / "python{}.{}".format(*PYTHON_VERSION) / "site-packages"
    found = sorted(site.glob("bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    return found[-1] if found else None


def validate(zip_path: Path) -> None:
    """``blender --command extension validate`` on the zip: the module bpy ships, with the tag
    list Blender passes to it."""
    setup()
    validator = blender_validator()
    if validator is None:
        sys.exit("build.py: bpy's extension validator (bl_pkg/cli/blender_ext.py) is missing")
    tags = validator.parents[3] / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    run([venv_python(), validator, "validate", "--valid-tags", tags, zip_path])


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    command, rest = argv[0], argv[1:]
    if command == "setup":
        setup(force="--force" in rest)
    elif command == "lint":
        lint()
    elif command == "test":
        test(rest)
    elif command == "demo":
        demo(rest)
    elif command == "package":
        path = package()
        if "--no-validate" not in rest:
            validate(path)
    else:
        sys.exit(f"build.py: unknown command {command!r}; try `python3 build.py --help`.")


if __name__ == "__main__":
    main(sys.argv[1:])
