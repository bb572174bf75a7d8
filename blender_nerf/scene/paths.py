"""Folder settings (``dataset_dir``, ``run_dir``, ``render_dir``) as checked absolute folders:
relative to the .blend file only once it is saved, writable, and never another tool's dataset."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import bpy

from ..nerf_engine.data.dataset import MAX_JSON_BYTES, SPLITS
from .scene_io import SceneError

GENERATOR = "blender-nerf"  # the "generator" key of every JSON file the add-on writes


def folder_setting(path_setting: str, label: str) -> Path:
    """The absolute folder of the path setting shown as ``label`` (``//``: the .blend's folder)."""
    if not path_setting.strip():
        raise SceneError(f"No {label.lower()}: set {label} in the NeRF panel.")
    if path_setting.startswith("//") and not bpy.data.filepath:
        raise SceneError(
            f"{label} '{path_setting}' is relative to the .blend file, which is not saved "
            "yet; save the file or choose an absolute folder."
        )
    return Path(bpy.path.abspath(path_setting)).resolve()


def dataset_folder(path_setting: str) -> Path:
    """The absolute dataset folder from the ``dataset_dir`` setting."""
    return folder_setting(path_setting, "Dataset Folder")


def check_writable(root: Path, label: str = "dataset folder") -> None:
    """Create ``root`` (the ``label``) if needed and prove a file can be written there."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nerf_probe_", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SceneError(
            f"Cannot write to the {label} '{root}' ({reason}); choose a folder you can write to."
        ) from exc


def check_not_foreign(root: Path) -> None:
    """Refuse a folder that holds a dataset made by something else: an export would overwrite
    its transforms files and images (``train/r_0.png``) with ours."""
    names = ["transforms.json", *(f"transforms_{s}.json" for s in SPLITS)]
    for path in (root / name for name in names):
        if path.is_file() and not _made_here(path):
            raise SceneError(
                f"Dataset Folder '{root}' holds a dataset that blender-nerf did not make "
                f"({path.name}); exporting would overwrite it. Choose an empty folder, or move "
                "that dataset away first."
            )


def _made_here(path: Path) -> bool:
    """Whether the transforms file ``path`` was written by this add-on's export."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return False
        top = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # unreadable: not one of ours (those are written atomically)
        return False
    return isinstance(top, dict) and top.get("generator") == GENERATOR
