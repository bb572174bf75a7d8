"""Lens distortion of COLMAP-made transforms files, removed from the images when they are read.

instant-ngp's ``colmap2nerf.py`` and nerfstudio's ``ns-process-data`` copy the photos as they are
and write COLMAP's distortion coefficients into ``transforms.json``; both tools undistort on the
fly. We undistort each image once, on load, with OpenCV (``cv2.initUndistortRectifyMap`` and
``cv2.remap``, the calls nerfstudio makes), onto the pinhole camera with the *same* ``fl_x, fl_y,
cx, cy, w, h``: a frame's :class:`~.cameras.Intrinsics` stay what the file says, so Import Cameras,
rendering and training all use one pinhole camera. Pixels of that pinhole image that see past the
edge of the photo are returned as not valid (they are never training or evaluation targets).

Models, with the keys instant-ngp and nerfstudio read (COLMAP's camera models in brackets):

- ``radial_tangential`` (OPENCV, SIMPLE_RADIAL, RADIAL; instant-ngp's default when any coefficient
  is non-zero): ``k1, k2, p1, p2`` and ``k3`` (nerfstudio reads k3; instant-ngp ignores it). OpenCV
  order ``(k1, k2, p1, p2, k3)``.
- ``fisheye`` (OPENCV_FISHEYE; instant-ngp's ``"is_fisheye": true``): ``k1, k2, k3, k4`` of OpenCV's
  equidistant fisheye model (``cv2.fisheye``).

OpenCV puts the centre of the top-left pixel at (0, 0); transforms files (COLMAP, and this
engine's cameras) at (0.5, 0.5): the principal point is shifted by half a pixel for OpenCV, as
nerfstudio does (nerfstudio-project/nerfstudio #3048).

OpenCV is imported where it is used: this module imports inside Blender, which has no OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import Intrinsics

RADIAL_TANGENTIAL = "radial_tangential"
FISHEYE = "fisheye"


@dataclass(frozen=True)
class LensDistortion:
    """Distortion coefficients of one camera (dimensionless, on normalised image coordinates, so
    they do not change when the image is resized)."""

    model: str  # RADIAL_TANGENTIAL or FISHEYE
    k1: float = 0.0
    k2: float = 0.0
    k3: float = 0.0
    k4: float = 0.0
    p1: float = 0.0
    p2: float = 0.0

    def opencv_coefficients(self) -> np.ndarray:
        """[5] ``(k1, k2, p1, p2, k3)`` for ``cv2`` (radial-tangential), [4] ``(k1, k2, k3,
        k4)`` for ``cv2.fisheye``."""
        if self.model == FISHEYE:
            return np.array([self.k1, self.k2, self.k3, self.k4], dtype=np.float64)
        return np.array([self.k1, self.k2, self.p1, self.p2, self.k3], dtype=np.float64)


def opencv_camera_matrix(intrinsics: Intrinsics) -> np.ndarray:
    """[3, 3] K in OpenCV's pixel convention (pixel centres at integers)."""
    k = intrinsics
    return np.array(
        [[k.fl_x, 0.0, k.cx - 0.5], [0.0, k.fl_y, k.cy - 0.5], [0.0, 0.0, 1.0]], dtype=np.float64
    )


def undistort(
    image: np.ndarray, intrinsics: Intrinsics, distortion: LensDistortion
) -> tuple[np.ndarray, np.ndarray]:
    """The photo ``image`` [H, W, C] (float32, H×W = the intrinsics' size) as the pinhole camera
    ``intrinsics`` sees it, and a [H, W] bool array of the pixels that are valid (their source lies
    inside the photo). Bilinear resampling."""
    import cv2  # a dependency of the engine only (Blender's Python has none)

    k = intrinsics
    matrix = opencv_camera_matrix(k)
    coefficients = distortion.opencv_coefficients()
    size = (int(k.w), int(k.h))
    if distortion.model == FISHEYE:
        map_x, map_y = cv2.fisheye.initUndistortRectifyMap(
            matrix, coefficients, np.eye(3), matrix, size, cv2.CV_32FC1
        )
    else:
        map_x, map_y = cv2.initUndistortRectifyMap(
            matrix, coefficients, None, matrix, size, cv2.CV_32FC1
        )
    source = np.ascontiguousarray(image, dtype=np.float32)
    out = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if out.ndim == 2:
        out = out[..., None]
    valid = (
        np.isfinite(map_x)
        & np.isfinite(map_y)
        & (map_x >= -0.5)
        & (map_x <= k.w - 0.5)
        & (map_y >= -0.5)
        & (map_y <= k.h - 0.5)
    )
    return out, valid


def distort_points(
    pixels: np.ndarray, intrinsics: Intrinsics, distortion: LensDistortion
) -> np.ndarray:
    """Where the photo shows what the pinhole camera shows at ``pixels`` [N, 2] (continuous
    pixel coordinates): [N, 2]. The forward model of :func:`undistort` (tests, tools)."""
    import cv2

    k = intrinsics
    pts = np.asarray(pixels, dtype=np.float64)
    x = (pts[:, 0] - k.cx) / k.fl_x
    y = (pts[:, 1] - k.cy) / k.fl_y
    rays = np.stack([x, y, np.ones_like(x)], axis=-1)[:, None, :]  # OpenCV camera: +z forward
    matrix = opencv_camera_matrix(k)
    zero = np.zeros(3)
    coefficients = distortion.opencv_coefficients()
    if distortion.model == FISHEYE:
        out, _ = cv2.fisheye.projectPoints(rays, zero, zero, matrix, coefficients)
    else:
        out, _ = cv2.projectPoints(rays, zero, zero, matrix, coefficients)
    return out[:, 0, :] + 0.5
