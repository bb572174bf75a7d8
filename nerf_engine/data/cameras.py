"""Pinhole cameras: intrinsics, projection and ray generation.

Conventions (the NeRF-synthetic / Blender / OpenGL ones):
- ``camera_to_world`` (``c2w``) is a 4×4 matrix; the camera looks down its local −Z axis with +Y up
  and +X right — Blender's own ``matrix_world`` of a camera, without scale.
- Pixel (i, j) is column i, row j, counted from the top-left; its centre is at (i + 0.5, j + 0.5).
  ``cx``, ``cy`` are in the same continuous pixel coordinates (``cy`` measured from the top row).
- Ray directions are unit vectors, so a ray parameter ``t`` is a distance along the ray.

The ray functions use only arithmetic and indexing, so they work unchanged on numpy arrays (the
add-on and the tests) and on torch tensors (the trainer). This module never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera in pixels: focal lengths, principal point and image size."""

    fl_x: float
    fl_y: float
    cx: float
    cy: float
    w: int
    h: int

    @classmethod
    def from_fov(cls, camera_angle_x: float, w: int, h: int) -> Intrinsics:
        """Square pixels, centred principal point, horizontal field of view in radians."""
        fl = 0.5 * w / math.tan(0.5 * camera_angle_x)
        return cls(fl_x=fl, fl_y=fl, cx=0.5 * w, cy=0.5 * h, w=int(w), h=int(h))

    @property
    def camera_angle_x(self) -> float:
        return 2.0 * math.atan(0.5 * self.w / self.fl_x)

    @property
    def camera_angle_y(self) -> float:
        return 2.0 * math.atan(0.5 * self.h / self.fl_y)

    def scaled(self, w: int, h: int) -> Intrinsics:
        """The same camera rendered at ``w``×``h`` pixels (same field of view and shift)."""
        sx, sy = w / self.w, h / self.h
        return replace(
            self,
            fl_x=self.fl_x * sx,
            fl_y=self.fl_y * sy,
            cx=self.cx * sx,
            cy=self.cy * sy,
            w=int(w),
            h=int(h),
        )

    def to_dict(self) -> dict:
        return {
            "fl_x": self.fl_x,
            "fl_y": self.fl_y,
            "cx": self.cx,
            "cy": self.cy,
            "w": self.w,
            "h": self.h,
        }


def ray_directions_camera(px, py, fl_x, fl_y, cx, cy):
    """Unnormalised camera-space direction components through continuous pixel coords (px, py).

    Returns (x, y, z) with z = −1 (the camera looks down −Z), each shaped like ``px``.
    """
    x = (px - cx) / fl_x
    y = -(py - cy) / fl_y
    return x, y, x * 0.0 - 1.0


def camera_rays(camera_to_world, px, py, fl_x, fl_y, cx, cy):
    """World-space rays through continuous pixel coordinates.

    Args:
        camera_to_world: [..., 4, 4] (or [..., 3, 4]) c2w matrices, broadcastable against ``px``.
        px, py: [...] continuous pixel coordinates (a pixel's centre is its index + 0.5).
        fl_x, fl_y, cx, cy: scalars or [...] arrays.
    Returns:
        rays_o: [..., 3] origins (the camera centre), rays_d: [..., 3] unit directions.
    """
    x, y, z = ray_directions_camera(px, py, fl_x, fl_y, cx, cy)
    rot = camera_to_world[..., :3, :3]
    d = (
        rot[..., :, 0] * x[..., None]
        + rot[..., :, 1] * y[..., None]
        + rot[..., :, 2] * z[..., None]
    )
    d = d / ((d * d).sum(-1)[..., None] ** 0.5)
    o = camera_to_world[..., :3, 3] + d * 0.0
    return o, d


def pixel_centers(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """[h, w] arrays of pixel-centre x and y coordinates."""
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5, indexing="xy")
    return xs, ys


def image_rays(intrinsics: Intrinsics, camera_to_world: np.ndarray):
    """All rays of one image as numpy arrays: rays_o, rays_d of shape [h, w, 3]."""
    xs, ys = pixel_centers(intrinsics.w, intrinsics.h)
    c2w = np.asarray(camera_to_world, dtype=np.float64)
    return camera_rays(c2w, xs, ys, intrinsics.fl_x, intrinsics.fl_y, intrinsics.cx, intrinsics.cy)


def project_points(points: np.ndarray, intrinsics: Intrinsics, camera_to_world: np.ndarray):
    """Project world points [N, 3] into the image.

    Returns (pixels [N, 2] in continuous pixel coordinates, depth [N] along the camera's −Z axis).
    """
    c2w = np.asarray(camera_to_world, dtype=np.float64)
    w2c = np.linalg.inv(c2w)
    pts = np.asarray(points, dtype=np.float64)
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    depth = -cam[:, 2]
    px = intrinsics.cx + intrinsics.fl_x * cam[:, 0] / depth
    py = intrinsics.cy - intrinsics.fl_y * cam[:, 1] / depth
    return np.stack([px, py], axis=-1), depth


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """A c2w matrix for a camera at ``eye`` looking at ``target`` (Blender's +Z-up world)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = eye - target
    back /= np.linalg.norm(back)
    if abs(float(np.dot(back, up / np.linalg.norm(up)))) > 0.999:
        up = np.array([0.0, 1.0, 0.0])
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, back, eye
    return c2w
