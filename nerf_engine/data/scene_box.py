"""Scene bounds and the unit scene frame.

The field works in a frame where the scene box maps into [−1, 1]³ (centre at the origin, longest
half-side 1), so positional-encoding frequencies mean the same thing for a 10 cm product shot and a
50 m building. Bounds come from the dataset (``aabb``, ``near``, ``far``, written by our exporter)
or, for datasets without them, from the camera geometry:

- cameras that look at a common point (an orbit, a turntable, a dome): a cube around the point
  their axes pass closest to, sized from their distance and field of view;
- any other layout — a forward-facing capture (phone video through colmap2nerf or
  ns-process-data: near-parallel axes), cameras looking outward, axes that meet behind the
  cameras: the box around every camera's view frustum between ``near`` and ``far``. Without
  ``near``/``far`` in the file, a generous depth range is assumed and a note (a warning for the
  user) names the keys that make the box exact.

No contraction of unbounded scenes (mip-NeRF 360): content beyond ``far`` is not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .cameras import camera_rays
from .dataset import Split

AABB_MARGIN = 0.02  # fraction of the box size added on every side: content on the boundary survives
FOV_BOX_FACTOR = 1.5  # estimated box half-size = this × what the narrowest view sees at the target
# Axes within this angle (radians) of their mean direction count as parallel: their crossing point
# is noise (forward-facing captures; LLFF scenes spread under 10°).
PARALLEL_SPREAD = math.radians(10.0)
# Depth range assumed for a non-converging layout without near/far, in units of the cameras'
# spread (the largest distance of a camera from their centroid): forward-facing captures see
# their content at a few to a few tens of baselines.
DEFAULT_NEAR_SPREADS = 0.5
DEFAULT_FAR_SPREADS = 25.0
FRUSTUM_SAMPLES = 9  # rays a side sampled through each image to bound its frustum


@dataclass(frozen=True, eq=False)
class SceneBox:
    aabb: np.ndarray  # [2, 3] world-space min and max corners
    near: float  # world distances along unit-direction rays
    far: float
    notes: tuple[str, ...] = ()  # how the box was found, when the user should know (warnings)

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
    """Bounds for training on ``split``: the dataset's own where given, else estimated (see the
    module docstring)."""
    poses = split.poses()
    origins = poses[:, :3, 3]
    notes: tuple[str, ...] = ()
    if split.aabb is not None:
        aabb = np.asarray(split.aabb, dtype=np.float64)
    else:
        target = _convergence_point(poses)
        if target is not None:
            aabb = _estimate_aabb(split, target)
        else:
            aabb, near_far, notes = _frustum_box(split)
            split = replace(split, near=near_far[0], far=near_far[1])
    pad = AABB_MARGIN * (aabb[1] - aabb[0]).max()
    aabb = np.stack([aabb[0] - pad, aabb[1] + pad])
    center = 0.5 * (aabb[0] + aabb[1])
    radius = 0.5 * float(np.linalg.norm(aabb[1] - aabb[0]))
    dist = np.linalg.norm(origins - center, axis=-1)
    near = split.near if split.near is not None else max(float(dist.min()) - radius, 1e-3 * radius)
    far = split.far if split.far is not None else float(dist.max()) + radius
    if not near < far:
        near, far = 1e-3 * radius, far + radius
    return SceneBox(aabb=aabb, near=float(near), far=float(far), notes=notes)


def _convergence_point(poses: np.ndarray) -> np.ndarray | None:
    """The point the camera axes pass closest to, when they look at a common point in front of
    every camera; None for a single camera and for parallel or diverging axes."""
    origins, forwards = poses[:, :3, 3], -poses[:, :3, 2]
    if len(origins) < 2:
        return None
    d = forwards / np.linalg.norm(forwards, axis=-1, keepdims=True)
    mean = d.mean(axis=0)
    if np.linalg.norm(mean) > 1e-9:  # (cameras all around a point average to ~0)
        cos = d @ (mean / np.linalg.norm(mean))
        if float(np.arccos(np.clip(cos, -1.0, 1.0)).max()) < PARALLEL_SPREAD:
            return None
    target = _closest_point_to_axes(origins, d)
    if target is None or not (((target - origins) * d).sum(axis=-1) > 0).all():
        return None  # the axes meet behind a camera: it does not look at that point
    return target


def _frustum_box(split: Split) -> tuple[np.ndarray, tuple[float, float], tuple[str, ...]]:
    """The box around every camera's view between near and far (the file's, else a generous
    range from the cameras' spread, with a note), and that (near, far)."""
    origins = split.poses()[:, :3, 3]
    notes: tuple[str, ...] = ()
    near, far = split.near, split.far
    if near is None or far is None:
        spread = float(np.linalg.norm(origins - origins.mean(axis=0), axis=-1).max())
        spread = spread if spread > 0 else 1.0
        near = near if near is not None else DEFAULT_NEAR_SPREADS * spread
        far = far if far is not None else max(DEFAULT_FAR_SPREADS * spread, 2.0 * near)
        notes = (
            f"{split.source.name}: the cameras do not look at a common point (a forward-facing "
            "or outward-looking capture) and the file gives no 'near'/'far' or 'aabb', so the "
            f"scene box is a guess: what the cameras see from {near:.3g} to {far:.3g} units away. "
            "Add 'near' and 'far' (the distances from the cameras to the closest and farthest "
            "content) or 'aabb' to the file for a box that fits the scene.",
        )
    corners = []
    grid = np.linspace(0.0, 1.0, FRUSTUM_SAMPLES)
    for frame in split.frames:
        k = frame.intrinsics
        px, py = (a.ravel() for a in np.meshgrid(grid * k.w, grid * k.h))
        o, d = camera_rays(frame.camera_to_world, px, py, k.fl_x, k.fl_y, k.cx, k.cy)
        # t is a distance along unit rays: the rays through the image's edges and inside it at
        # t = near and far bound the frustum slab (the far cap bulges less than the margin)
        corners += [o + near * d, o + far * d]
    points = np.concatenate(corners)
    return np.stack([points.min(axis=0), points.max(axis=0)]), (float(near), float(far)), notes


def _estimate_aabb(split: Split, target: np.ndarray) -> np.ndarray:
    """A cube around ``target`` (where the cameras look), sized from their distance and field of
    view."""
    poses = split.poses()
    origins = poses[:, :3, 3]
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


def _closest_point_to_axes(origins: np.ndarray, directions: np.ndarray) -> np.ndarray | None:
    """Least-squares point nearest to all camera axes (unit ``directions``); None when the axes
    are (near-)parallel."""
    projector = np.eye(3)[None] - directions[:, :, None] * directions[:, None, :]  # [N, 3, 3]
    a = projector.sum(axis=0)
    b = (projector @ origins[:, :, None]).sum(axis=0)[:, 0]
    if np.linalg.cond(a) >= 1e6:
        return None
    return np.linalg.solve(a, b)
