"""Which Python runs the engine, and how it gets PyTorch.

The interpreter is, in this order:

1. the preference *Engine Python* when it is set (it must import torch);
2. Blender's own (``sys.executable``) when it imports torch by itself;
3. Blender's own with the *Install Dependencies* folder on ``PYTHONPATH``.

The add-on's own folder always comes first on ``PYTHONPATH``: it holds ``nerf_engine`` (a symlink
in the repository, a vendored copy in the extension zip), so ``python -m nerf_engine`` runs the
engine that shipped with the add-on. Install Dependencies pip-installs into
``bpy.utils.extension_path_user(...)/site-packages``, never into the add-on's folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import bpy

# (identifier, label, description, pip index for torch; None: PyPI's default build)
TORCH_INDEX = "https://download.pytorch.org/whl/"
TORCH_VARIANTS = (
    ("CPU", "CPU", "PyTorch for the CPU only (smallest download)", TORCH_INDEX + "cpu"),
    ("CUDA126", "CUDA 12.6", "NVIDIA GPUs, driver 525+", TORCH_INDEX + "cu126"),
    ("CUDA128", "CUDA 12.8", "NVIDIA GPUs incl. RTX 50xx, driver 570+", TORCH_INDEX + "cu128"),
    ("DEFAULT", "PyPI Default", "PyPI's build: CUDA on Linux, CPU on Windows, MPS on macOS", None),
)  # fmt: skip
# What ``python -m nerf_engine`` imports besides torch (requirements.txt without the pins);
# matplotlib draws Compare's training curve and labelled colour bar; scikit-image computes SSIM;
# OpenCV undistorts the images of datasets with lens distortion; plyfile writes Extract Mesh's PLY.
ENGINE_PACKAGES = (
    "numpy",
    "imageio",
    "pypng",
    "openexr",
    "tqdm",
    "matplotlib",
    "scikit-image",
    "opencv-python-headless",
    "plyfile",
)
PIP_FLAGS = ("--upgrade", "--no-input", "--disable-pip-version-check")
SITE_PACKAGES = "site-packages"
FIND_TIMEOUT_S = 60.0
CHECK_TIMEOUT_S = 180.0  # importing a CUDA build of torch the first time can be slow

CHECK_SCRIPT = """
import importlib.util, json, sys
info = {"python": sys.version.split()[0], "executable": sys.executable}
info["missing"] = [m for m in ("numpy", "png", "imageio", "OpenEXR", "matplotlib", "skimage",
                             "cv2", "plyfile", "nerf_engine")
                   if importlib.util.find_spec(m) is None]
try:
    import torch
except Exception as exc:
    info["error"] = f"{type(exc).__name__}: {exc}"
else:
    info["torch"] = torch.__version__
    info["cuda_build"] = torch.version.cuda
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    info["cuda"] = [torch.cuda.get_device_name(i) for i in range(count)]
    mps = getattr(torch.backends, "mps", None)
    info["mps"] = bool(mps and mps.is_available())
print(json.dumps(info))
"""


class EngineSetupError(RuntimeError):
    """No usable engine interpreter; the message says what to do."""


@dataclass(frozen=True)
class EnginePython:
    """An interpreter and the folders to put first on its ``PYTHONPATH``."""

    executable: str
    paths: tuple[str, ...]
    source: str  # "preferences", "blender" or "dependencies"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The child's environment: ``base`` (default ``os.environ``) with our paths prepended."""
        env = dict(os.environ if base is None else base)
        existing = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([*self.paths, *existing])
        env["PYTHONIOENCODING"] = "utf-8"
        env["PYTHONUNBUFFERED"] = "1"
        return env


def addon_dir() -> str:
    """The add-on package's own folder (it contains ``nerf_engine``; this module is in its
    ``jobs/``)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dependencies_dir(addon_id: str, *, create: bool = False) -> Path:
    """Where Install Dependencies puts packages: the extension's user folder; for a legacy add-on
    (or bpy as a module), where that is not defined, ``<user datafiles>/<name>/site-packages``."""
    try:
        return Path(bpy.utils.extension_path_user(addon_id, path=SITE_PACKAGES, create=create))
    except ValueError:  # "does not name an extension"
        name = addon_id.rpartition(".")[2]
        folder = bpy.utils.user_resource("DATAFILES", path=f"{name}/{SITE_PACKAGES}")
        if create:
            os.makedirs(folder, exist_ok=True)
        return Path(folder)


def has_module(engine: EnginePython, module: str) -> bool:
    """Whether ``engine`` finds ``module`` (without importing it: fast). Raises
    EngineSetupError when the interpreter cannot be run at all."""
    code = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 3)"
    result = _run(engine, ["-c", code], FIND_TIMEOUT_S)
    if result.returncode in (0, 3):
        return result.returncode == 0
    raise EngineSetupError(
        f"Engine Python '{engine.executable}' does not run: {_last_line(result.stderr)}"
    )


def resolve(python_path: str, deps_dir: Path | None) -> EnginePython:
    """The interpreter that runs the engine (see the module docstring); raises EngineSetupError
    with what to do when there is none."""
    addon = addon_dir()
    if python_path:
        exe = os.path.abspath(python_path)
        if not os.path.isfile(exe):
            raise EngineSetupError(
                f"Engine Python '{exe}' does not exist: set Preferences > Add-ons > blender-nerf "
                "> Engine Python to an interpreter with PyTorch, or clear it to use Blender's own."
            )
        engine = EnginePython(exe, (addon,), "preferences")
        if not has_module(engine, "torch"):
            raise EngineSetupError(
                f"Engine Python '{exe}' cannot import torch: install PyTorch into it, or clear "
                "Engine Python in the preferences to use Install Dependencies."
            )
        return engine
    own = EnginePython(sys.executable, (addon,), "blender")
    if has_module(own, "torch"):
        return own
    if deps_dir is not None and deps_dir.is_dir():
        installed = EnginePython(sys.executable, (addon, str(deps_dir)), "dependencies")
        if has_module(installed, "torch"):
            return installed
    raise EngineSetupError(
        "Blender's Python has no PyTorch: click Install Dependencies in Preferences > Add-ons > "
        "blender-nerf, or set Engine Python there to an interpreter that has it."
    )


def check(engine: EnginePython) -> dict:
    """Import torch in ``engine`` and report versions and devices (a dict, see CHECK_SCRIPT)."""
    result = _run(engine, ["-c", CHECK_SCRIPT], CHECK_TIMEOUT_S)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise EngineSetupError(
            f"Engine Python '{engine.executable}' failed the check: {_last_line(result.stderr)}"
        )
    return json.loads(lines[-1])


def describe(info: dict) -> str:
    """One line for the preferences: PyTorch version and the devices it can train on."""
    if "error" in info:
        return f"Python {info['python']}: no PyTorch ({info['error']})"
    devices = [f"CUDA: {name}" for name in info.get("cuda", [])]
    if info.get("mps"):
        devices.append("MPS")
    devices.append("CPU")
    text = f"PyTorch {info['torch']} on Python {info['python']}; devices: {', '.join(devices)}"
    if info.get("missing"):
        text += f"; missing: {', '.join(info['missing'])}"
    return text


def install_commands(
    python: str, target: Path, variant: str, *, wheel_dir: str = "", need_pip: bool = False
) -> list[list[str]]:
    """pip commands that put torch (from the variant's index) and the engine's other packages
    (from PyPI) into ``target``; with ``wheel_dir`` everything comes from that folder, offline."""
    index = {item[0]: item[3] for item in TORCH_VARIANTS}
    if variant not in index:
        raise ValueError(f"unknown PyTorch variant {variant!r}")
    pip = [python, "-m", "pip", "install", *PIP_FLAGS, "--target", str(target)]
    if wheel_dir:
        offline = ["--no-index", "--find-links", wheel_dir]
        torch_source, rest_source = offline, offline
    else:
        torch_source = ["--index-url", index[variant]] if index[variant] else []
        rest_source = []
    commands = [pip + torch_source + ["torch"], pip + rest_source + list(ENGINE_PACKAGES)]
    if need_pip:
        commands.insert(0, [python, "-m", "ensurepip", "--upgrade"])
    return commands


def _run(engine: EnginePython, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [engine.executable, *args],
            env=engine.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except subprocess.TimeoutExpired as exc:
        raise EngineSetupError(
            f"Engine Python '{engine.executable}' did not answer within {timeout:.0f} s."
        ) from exc
    except OSError as exc:
        raise EngineSetupError(
            f"Engine Python '{engine.executable}' cannot be run: {exc.strerror or exc}"
        ) from exc


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
