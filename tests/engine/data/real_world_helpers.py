"""Helpers for the real-world dataset tests (field cases 01, 02, 03, 10, 12): datasets laid out the
way instant-ngp, nerfstudio, BlenderNeRF and nerf-pytorch users have them, with exact pictures of
the engine's toy scene. Imported by name: pytest puts this folder on sys.path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from nerf_engine.data.cameras import Intrinsics, look_at
from nerf_engine.data.images import write_exr
from nerf_engine.tools.toy_scene import LOOK_AT, SPHERES, _hit_ground, _hit_sphere, render_toy


def orbit_poses(n: int, radius: float = 4.0, start: float = 0.0) -> list[np.ndarray]:
    """``n`` cameras around the toy scene, looking at its centre (the field cases' orbit)."""
    poses = []
    for i in range(n):
        az = start + 2 * math.pi * i / n
        el = math.radians(30.0 + 15 * math.sin(3 * az))
        eye = LOOK_AT + radius * np.array(
            [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]
        )
        poses.append(look_at(eye, LOOK_AT))
    return poses


def save_image(path: Path, rgba: np.ndarray, *, alpha: bool = True) -> Path:
    """Write float RGBA [H, W, 4] as PNG (with or without alpha), JPG (over white) or EXR."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".exr":  # linear, premultiplied: what Blender writes
        srgb = rgba[..., :3]
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        premult = linear * rgba[..., 3:]
        write_exr(path, {c: premult[..., i] for i, c in enumerate("RGB")} | {"A": rgba[..., 3]})
        return path
    if not alpha or path.suffix in (".jpg", ".jpeg"):
        rgb = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        data = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    else:
        data = (np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8)
    options = {"quality": 95} if path.suffix in (".jpg", ".jpeg") else {}
    Image.fromarray(data).save(path, **options)
    return path


def save_toy(path: Path, intr: Intrinsics, c2w: np.ndarray, *, alpha: bool = True) -> Path:
    return save_image(path, render_toy(intr, c2w, supersample=2), alpha=alpha)


def dump(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))
    return path


def content_points(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Where rays o, d [N, 3] hit the toy scene: the first hits [M, 3] (misses dropped), and their
    distances [M]."""
    t = np.min(np.stack([_hit_sphere(o, d, s) for s in SPHERES] + [_hit_ground(o, d)]), 0)
    hit = np.isfinite(t)
    return o[hit] + t[hit, None] * d[hit], t[hit]
