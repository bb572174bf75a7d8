"""Helpers for the malformed-dataset tests (imported by name: pytest puts this folder on sys.path).

Every case starts from a valid two-frame NeRF-synthetic file (4×3 PNGs ``train/r_0``, ``train/r_1``)
and breaks one thing; :func:`refused` checks the one DatasetError and that nothing was written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nerf_engine.data.dataset import DatasetError, read_transforms

W, H = 4, 3


def png(path: Path, w: int = W, h: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 4), 100, np.uint8)).save(path)
    return path


def valid(root: Path) -> dict:
    frames = []
    for i in range(2):
        png(root / f"train/r_{i}.png")
        matrix = np.eye(4)
        matrix[:3, 3] = [i, 0.0, 4.0]
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": matrix.tolist()})
    return {"camera_angle_x": 0.7, "frames": frames}


def write(root: Path, obj, name: str = "transforms_train.json") -> Path:
    path = root / name
    path.write_text(json.dumps(obj))  # Python writes NaN and Infinity literals, as json.loads reads
    return path


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(path: Path, *, frame: int | None, key: str | None, match: str, call=None):
    """Run the reader (or ``call``) and check the single DatasetError it raises and that nothing
    in the dataset folder changed. Returns the error."""
    before = files_under(path.parent)
    with pytest.raises(DatasetError) as info:
        (call or read_transforms)(path)
    error = info.value
    assert type(error) is DatasetError
    assert (error.path, error.frame, error.key) == (path, frame, key)
    message = str(error)
    assert message.startswith(str(path))
    assert (f"frame {frame}" in message) == (frame is not None), message
    assert (f"key '{key}'" in message) == (key is not None), message
    assert match.lower() in message.lower(), message
    assert files_under(path.parent) == before
    return error


def with_file_path(root: Path, file_path, frame: int = 1) -> Path:
    obj = valid(root)
    obj["frames"][frame]["file_path"] = file_path
    return write(root, obj)


needs_symlinks = pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
