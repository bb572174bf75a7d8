#!/usr/bin/env python3
"""Developer entry point for blender-nerf (standard library only).

    python3 build.py setup    create .venv (Python 3.11) with the pinned dependencies
    python3 build.py test     set up if needed, lint, run the whole test suite
    python3 build.py lint     ruff check + ruff format --check
    python3 build.py demo     set up if needed, then run the whole loop on the demo scene

Extra arguments after ``test`` go to pytest (``python3 build.py test -k sampling``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements-dev.txt"
STAMP = VENV / ".requirements.sha256"
PYTHON_VERSION = (3, 11)  # bpy 5.0.1 exists for Python 3.11 only


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
    else:
        sys.exit(f"build.py: unknown command {command!r}; try `python3 build.py --help`.")


if __name__ == "__main__":
    main(sys.argv[1:])
