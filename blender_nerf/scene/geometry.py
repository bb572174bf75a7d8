"""Camera and dataset geometry for the exporter, in plain numpy (no bpy: tested on its own).

- :func:`blender_intrinsics`: Blender's camera model (lens, sensor, sensor fit, shift, pixel aspect)
  as a pinhole :class:`Intrinsics` in pixels, exactly as ``BKE_camera_params_compute_viewplane``
  builds the render's view plane.
- The rig: views spread on a sphere band (:func:`sphere_directions`), looking at the rig centre from
  a given or fitted radius (:func:`fit_radius`, :func:`rig_poses`), or out from it, for interiors
  (:func:`inside_out_radius`, :func:`inside_out_poses`).
- The subject: which objects are a ground or backdrop plane rather than part of it
  (:func:`ground_planes`).
- Splits (:func:`split_counts`, :func:`assign_splits`), scene bounds (:func:`near_far`) and depth
  conversion both ways (:func:`planar_to_ray_distance`, :func:`ray_distance_to_planar`).
"""

from __future__ import annotations

import math

import numpy as np

from ..nerf_engine.data.cameras import Intrinsics, look_at
from ..nerf_engine.data.depth import planar_to_ray_distance

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def blender_intrinsics(
    *,
    lens: float,
    sensor_width: float,
    sensor_height: float,
    sensor_fit: str,
    shift_x: float,
    shift_y: float,
    w: int,
    h: int,
    pixel_aspect_x: float = 1.0,
    pixel_aspect_y: float = 1.0,
) -> Intrinsics:
    """The pinhole intrinsics of a perspective Blender camera rendered at ``w``×``h`` pixels.

    ``lens``, ``sensor_width`` and ``sensor_height`` in millimetres; ``shift_x``/``shift_y`` in
    units of the fitted sensor dimension (Blender's convention); ``w``, ``h`` the rendered size
    after the resolution percentage. Mirrors Blender's view plane: the sensor size that applies is
    ``sensor_height`` only for VERTICAL fit; AUTO fits the sensor width to the longer side of the
    frame as it appears on screen (pixel aspect included); non-square pixels scale ``fl_y``.
    """
    if sensor_fit not in SENSOR_FITS:
        raise ValueError(f"sensor_fit must be one of {SENSOR_FITS}, got {sensor_fit!r}")
    if min(lens, sensor_width, sensor_height, w, h, pixel_aspect_x, pixel_aspect_y) <= 0:
        raise ValueError("lens, sensor size, image size and pixel aspect must be positive")
    sensor = sensor_height if sensor_fit == "VERTICAL" else sensor_width
    fit = sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if pixel_aspect_x * w >= pixel_aspect_y * h else "VERTICAL"
    ycor = pixel_aspect_y / pixel_aspect_x  # height of a pixel in units of its width
    viewfac = w if fit == "HORIZONTAL" else ycor * h  # pixel widths across the fitted sensor side
    fl_x = lens * viewfac / sensor
    return Intrinsics(
        fl_x=fl_x,
        fl_y=fl_x / ycor,
        cx=0.5 * w - shift_x * viewfac,
        cy=0.5 * h + shift_y * viewfac / ycor,
        w=int(w),
        h=int(h),
    )


def normalized_pose(matrix: np.ndarray) -> np.ndarray:
    """A 4×4 camera-to-world matrix without scale: rotation columns of unit length.

    Blender renders through the normalised object matrix too, so this is the pose of the image.
    """
    c2w = np.array(matrix, dtype=np.float64).reshape(4, 4)
    c2w[:3, :3] /= np.linalg.norm(c2w[:3, :3], axis=0, keepdims=True)
    c2w[3] = (0.0, 0.0, 0.0, 1.0)
    return c2w


def sphere_directions(n: int, elevation_min: float, elevation_max: float, seed: int) -> np.ndarray:
    """[n, 3] unit vectors spread evenly (a Fibonacci spiral) over a band of elevations in radians.

    Uniform in area: heights are evenly spaced in sin(elevation); the spiral's starting azimuth
    comes from ``seed``. No two directions coincide, so held-out views never copy training views.
    """
    if n < 1:
        raise ValueError("need at least one direction")
    lo, hi = sorted((elevation_min, elevation_max))
    z_lo, z_hi = math.sin(max(lo, -math.pi / 2)), math.sin(min(hi, math.pi / 2))
    start = np.random.default_rng(seed).uniform(0.0, 2.0 * math.pi)
    i = np.arange(n, dtype=np.float64)
    z = z_hi - (i + 0.5) / n * (z_hi - z_lo)
    azimuth = start + i * GOLDEN_ANGLE
    ring = np.sqrt(np.clip(1.0 - z * z, 0.0, 1.0))
    return np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], axis=-1)


def half_fov(intrinsics: Intrinsics) -> float:
    """The smallest angle (radians) from the optical axis to an image edge, shift included."""
    k = intrinsics
    tangents = (k.cx / k.fl_x, (k.w - k.cx) / k.fl_x, k.cy / k.fl_y, (k.h - k.cy) / k.fl_y)
    return math.atan(max(min(tangents), 1e-6))


def fit_radius(subject_radius: float, intrinsics: Intrinsics, margin: float = 1.1) -> float:
    """Camera distance at which a sphere of ``subject_radius`` fills the frame (with ``margin``)."""
    return margin * max(subject_radius, 1e-6) / math.sin(half_fov(intrinsics))


def rig_poses(center, radius: float, directions: np.ndarray) -> np.ndarray:
    """[n, 4, 4] camera-to-world matrices at ``center + radius * direction``, looking at
    ``center`` with the world's +Z up."""
    center = np.asarray(center, dtype=np.float64)
    return np.stack([look_at(center + radius * d, center) for d in directions])


def inside_out_poses(center, radius: float, directions: np.ndarray) -> np.ndarray:
    """[n, 4, 4] camera-to-world matrices at ``center + radius * direction`` looking away from
    ``center`` along ``direction`` (an interior seen from within), with the world's +Z up."""
    center = np.asarray(center, dtype=np.float64)
    return np.stack([look_at(center + radius * d, center + 2.0 * radius * d) for d in directions])


def inside_out_radius(center, aabb: np.ndarray, share: float = 0.25) -> float:
    """The radius of an inside-out rig at ``center``: ``share`` of the distance to the nearest
    side of the box ``aabb`` [2, 3], so every camera stays well inside it. 0 when ``center`` is
    not inside the box."""
    lo, hi = np.asarray(aabb, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)
    clearance = float(np.min(np.minimum(center - lo, hi - center)))
    return share * clearance if clearance > 0 else 0.0


def bounding_sphere(points: np.ndarray, center=None) -> tuple[np.ndarray, float]:
    """Centre and radius of a sphere enclosing ``points`` [N, 3]: around ``center`` if given,
    else around the centre of the points' axis-aligned box."""
    if center is None:
        center = 0.5 * (points.min(axis=0) + points.max(axis=0))
    center = np.asarray(center, dtype=np.float64)
    return center, float(np.linalg.norm(points - center, axis=1).max())


def ground_planes(
    boxes: np.ndarray,
    dimensions: np.ndarray,
    flat: float = 0.02,
    growth: float = 2.0,
    most: int = 2,
) -> np.ndarray:
    """Which objects are a ground or backdrop plane rather than part of the subject: [n] bool.

    ``boxes`` [n, 2, 3]: each object's world-space box (min, max); ``dimensions`` [n, 3]: its own
    size along its local axes (so a tilted plane is still flat). An object is a ground or
    backdrop plane when it is flat (its thinnest side under ``flat`` times its longest) and the
    box around it and the solid (not flat) objects is more than ``growth`` times as large (the
    box diagonal) as the box around the solid objects alone: a studio floor under a product, a
    ground plane left at the origin far from it. A room's floor and walls, which span the same
    space as the furniture, stay; so do more than ``most`` such planes, which enclose the rest
    (a room's floor and walls around a single table). With no solid object nothing is a ground
    plane.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 3)
    dims = np.abs(np.asarray(dimensions, dtype=np.float64).reshape(-1, 3))
    is_flat = (dims.min(axis=1) <= flat * dims.max(axis=1)) & (dims.max(axis=1) > 0)
    solid = ~is_flat
    if not solid.any():
        return np.zeros(len(boxes), dtype=bool)
    lo, hi = boxes[solid, 0].min(axis=0), boxes[solid, 1].max(axis=0)
    size = float(np.linalg.norm(hi - lo))
    grown = np.linalg.norm(np.maximum(boxes[:, 1], hi) - np.minimum(boxes[:, 0], lo), axis=1)
    ground = is_flat & (grown > growth * max(size, 1e-9))
    return ground if ground.sum() <= most else np.zeros_like(ground)


def split_counts(n: int, mode: str, val: float, test: float) -> tuple[int, int]:
    """(n_val, n_test) held out of ``n`` views: ``mode`` 'FRACTION' rounds ``val``·n, 'COUNT'
    takes the numbers as they are. A non-zero fraction holds out at least one view."""
    if mode == "COUNT":
        return int(val), int(test)

    def count(fraction: float) -> int:
        return 0 if fraction <= 0 else max(1, round(fraction * n))

    return count(val), count(test)


def assign_splits(n: int, n_val: int, n_test: int) -> list[str]:
    """Label ``n`` views 'train'/'val'/'test', deterministically.

    Held-out views are spaced evenly through the sequence (so they cover the whole rig or the
    whole animation), alternating between val and test in proportion.
    """
    held = n_val + n_test
    if min(n_val, n_test) < 0 or held >= n:
        raise ValueError(f"{n_val} val + {n_test} test views leave no training view out of {n}")
    labels = ["train"] * n
    for k in range(held):
        position = int((k + 0.5) * n / held)
        is_test = (k + 1) * n_test // held > k * n_test // held
        labels[position] = "test" if is_test else "val"
    return labels


def near_far(aabb: np.ndarray, poses: np.ndarray, margin: float = 0.05) -> tuple[float, float]:
    """Ray distances ``near`` < ``far`` that enclose the box ``aabb`` [2, 3] from every camera.

    ``near`` is the closest distance from any camera centre to the box (0 inside it), ``far`` the
    largest distance to a box corner, each widened by ``margin``.
    """
    lo, hi = np.asarray(aabb, dtype=np.float64)
    centres = np.asarray(poses, dtype=np.float64)[:, :3, 3]
    outside = np.maximum(np.maximum(lo - centres, centres - hi), 0.0)
    nearest = float(np.linalg.norm(outside, axis=1).min())
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    farthest = float(np.linalg.norm(centres[:, None] - corners[None], axis=2).max())
    return nearest * (1.0 - margin), farthest * (1.0 + margin)


def nearest_distance(points: np.ndarray, centres: np.ndarray, max_points: int = 200_000) -> float:
    """The smallest distance from any of ``centres`` [m, 3] to any of ``points`` [N, 3] (inf
    without points or centres). More than ``max_points`` points are thinned evenly first."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0 or len(centres) == 0:
        return math.inf
    points = points[:: max(1, len(points) // max_points)]
    return float(min(np.linalg.norm(points - c, axis=1).min() for c in centres))


def ray_distance_to_planar(distance: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Distance along each pixel's unit ray [h, w] (row 0 at the top; the engine's depth) ->
    depth along the camera's −Z axis, the convention of Blender's Z pass. Same units in and out;
    the inverse of :func:`planar_to_ray_distance` (the engine's, ``data/depth.py``)."""
    return distance / planar_to_ray_distance(np.ones((intrinsics.h, intrinsics.w)), intrinsics)
