"""Scene bounds and the unit scene frame.

The field works in a frame where the scene box maps into [−1, 1]³ (centre at the origin, longest
half-side 1), so positional-encoding frequencies mean the same thing for a 10 cm product shot and a
50 m building. Bounds come from the dataset (``aabb``, ``near``, ``far``, written by our exporter)
or, for datasets without them, from the camera geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .dataset import Split

AABB_MARGIN = 0.02  # fraction of the box size added on every side: content on the boundary survives
FOV_BOX_FACTOR = 1.5  # estimated box half-size = this × what the narrowest view sees at the target


@dataclass(frozen=True, eq=False)
class SceneBox:
    aabb: np.ndarray  # [2, 3] world-space min and max corners
    near: float  # world distances along unit-direction rays
    far: float

    @property
    def center(self) -> np.ndarray:
        return 0.5 * (self.aabb[0] + self.aabb[1])

    @property
    def scale(self) -> float:
        """World units per unit-frame unit: the longest half-side of the box."""
        return float(0.5 * (self.aabb[1] - self.aabb[0]).max())

    def unit_aabb(self) -> np.ndarray:
        return (self.aabb - self.center) / self.scale

    def to_unit_poses(self, camera_to_world: np.ndarray) -> np.ndarray:
        """[..., 4, 4] world c2w -> unit-frame c2w (rotation unchanged, origin moved and scaled)."""
        out = np.array(camera_to_world, dtype=np.float64, copy=True)
        out[..., :3, 3] = (out[..., :3, 3] - self.center) / self.scale
        return out

    def to_dict(self) -> dict:
        return {"aabb": self.aabb.tolist(), "near": self.near, "far": self.far}

    @classmethod
    def from_dict(cls, data: dict) -> SceneBox:
        return cls(
            np.asarray(data["aabb"], dtype=np.float64), float(data["near"]), float(data["far"])
        )


def scene_box(split: Split) -> SceneBox:
    """Bounds for training on ``split``: the dataset's own where given, else estimated."""
    poses = split.poses()
    origins = poses[:, :3, 3]
    if split.aabb is not None:
        aabb = np.asarray(split.aabb, dtype=np.float64)
    else:
        aabb = _estimate_aabb(split)
    pad = AABB_MARGIN * (aabb[1] - aabb[0]).max()
    aabb = np.stack([aabb[0] - pad, aabb[1] + pad])
    center = 0.5 * (aabb[0] + aabb[1])
    radius = 0.5 * float(np.linalg.norm(aabb[1] - aabb[0]))
    dist = np.linalg.norm(origins - center, axis=-1)
    near = split.near if split.near is not None else max(float(dist.min()) - radius, 1e-3 * radius)
    far = split.far if split.far is not None else float(dist.max()) + radius
    if not near < far:
        near, far = 1e-3 * radius, far + radius
    return SceneBox(aabb=aabb, near=float(near), far=float(far))


def _estimate_aabb(split: Split) -> np.ndarray:
    """A cube around the point the cameras look at, sized from their distance and field of view."""
    poses = split.poses()
    origins, forwards = poses[:, :3, 3], -poses[:, :3, 2]
    target = _closest_point_to_axes(origins, forwards)
    dist = np.linalg.norm(origins - target, axis=-1)
    half_fov = min(
        min(
            math.atan(0.5 * f.intrinsics.w / f.intrinsics.fl_x),
            math.atan(0.5 * f.intrinsics.h / f.intrinsics.fl_y),
        )
        for f in split.frames
    )
    half = FOV_BOX_FACTOR * float(np.median(dist)) * math.tan(half_fov)
    half = max(half, 1e-3)
    return np.stack([target - half, target + half])


def _closest_point_to_axes(origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Least-squares point nearest to all camera axes; falls back for (near-)parallel axes."""
    d = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    projector = np.eye(3)[None] - d[:, :, None] * d[:, None, :]  # [N, 3, 3]
    a = projector.sum(axis=0)
    b = (projector @ origins[:, :, None]).sum(axis=0)[:, 0]
    if len(origins) >= 2 and np.linalg.cond(a) < 1e6:
        return np.linalg.solve(a, b)
    spread = float(np.linalg.norm(origins - origins.mean(0), axis=-1).max()) or 1.0
    return origins.mean(axis=0) + d.mean(axis=0) * 2.0 * spread
