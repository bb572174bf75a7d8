"""COLMAP's text model — ``sparse/0/cameras.txt``, ``images.txt``, ``points3D.txt`` — written for
an exported dataset and read back (Import Cameras).

The format is COLMAP's documented "Output Format", text variant (colmap.github.io/format.html):

- ``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]``; we write ``PINHOLE fx fy cx cy``.
- ``images.txt``: two lines per image, ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` and
  ``POINTS2D[]`` as ``X Y POINT3D_ID`` triples (-1: no 3D point).
- ``points3D.txt``: ``POINT3D_ID X Y Z R G B ERROR TRACK[]``, the track as ``IMAGE_ID
  POINT2D_IDX`` pairs (the index into that image's POINTS2D line, from 0).

Conventions, and how ours map onto them:

- COLMAP stores the world-to-camera transform ``x_cam = R(q) X + t`` with OpenCV axes (+X right,
  +Y down, +Z forward); our ``camera_to_world`` is Blender's/OpenGL's (+Y up, looking down −Z), so
  ``R, t`` come from ``inv(c2w @ diag(1, -1, -1, 1))``. ``q`` is Hamilton ``(w, x, y, z)`` with
  ``w >= 0``.
- Pixel coordinates: COLMAP puts the centre of the top-left pixel at (0.5, 0.5), as we do
  (``cameras``), so ``cx, cy`` and 2D points are written unchanged.
- IDs count from 1. Every value is written with 17 significant digits: a float64 read back is the
  same number.

The writer takes no library: the add-on writes the model inside Blender, whose Python has numpy
only (pycolmap's ``Reconstruction.write_text`` would need a compiled wheel in Blender's Python).

numpy and the standard library only: the add-on imports this module inside Blender.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cameras import Intrinsics
from .fileio import atomic_path, make_dir
from .lens import FISHEYE, RADIAL_TANGENTIAL, LensDistortion
from .transforms_fields import DatasetError

MODEL_FOLDER = ("sparse", "0")  # where the model goes inside a dataset folder
FILES = ("cameras.txt", "images.txt", "points3D.txt")
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # flips camera Y and Z: OpenGL axes <-> OpenCV axes
# COLMAP camera models Import Cameras reads: name -> parameter names (COLMAP's order).
MODELS = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "OPENCV_FISHEYE": ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4"),
}


@dataclass(frozen=True)
class ColmapView:
    """One image of a COLMAP model: its file name (relative to the image folder, '/'-separated),
    pose as our ``camera_to_world`` [4, 4] (OpenGL axes) and pinhole intrinsics; ``distortion``
    only when read from a model with a distorting camera."""

    name: str
    camera_to_world: np.ndarray
    intrinsics: Intrinsics
    distortion: LensDistortion | None = None


@dataclass(frozen=True)
class Observations:
    """Points seen in the views: ``xyz`` [N, 3] world, ``rgb`` [N, 3] uint8, and for each point
    the view (an index into the views) and the continuous pixel coordinates [N, 2] that saw it."""

    xyz: np.ndarray
    rgb: np.ndarray
    view: np.ndarray
    pixel: np.ndarray


def colmap_pose(camera_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COLMAP's ``(qvec [4] as w, x, y, z; tvec [3])`` of an OpenGL-axes c2w [4, 4] (or [3, 4])."""
    c2w = np.asarray(camera_to_world, dtype=np.float64)[:3, :4]
    rotation = (c2w[:, :3] @ GL_TO_CV[:3, :3]).T  # a rigid inverse: R⁻¹ = Rᵀ, t = −Rᵀ·centre
    return rotation_to_quaternion(rotation), -rotation @ c2w[:, 3]


def camera_to_world_from_colmap(qvec, tvec) -> np.ndarray:
    """Our OpenGL-axes c2w [4, 4] from COLMAP's world-to-camera ``qvec`` (w, x, y, z), ``tvec``."""
    rotation = quaternion_to_rotation(qvec)
    c2w = np.eye(4)
    c2w[:3, :3] = rotation.T @ GL_TO_CV[:3, :3]
    c2w[:3, 3] = -rotation.T @ np.asarray(tvec, dtype=np.float64)
    return c2w


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), w >= 0, of a 3×3 rotation matrix (Shepperd's method: the
    largest of the four squared components is taken first, so no division by a small number)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    diag = (trace, m[0, 0], m[1, 1], m[2, 2])
    big = int(np.argmax(diag))
    if big == 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = (0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s)
    elif big == 1:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = ((m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s)
    elif big == 2:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s)
    q = np.array(q) / np.linalg.norm(q)
    return -q if q[0] < 0 else q


def quaternion_to_rotation(qvec) -> np.ndarray:
    """3×3 rotation of a quaternion (w, x, y, z); it is normalised first."""
    w, x, y, z = np.asarray(qvec, dtype=np.float64) / np.linalg.norm(qvec)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def write_colmap_text(
    folder: str | os.PathLike, views: Sequence[ColmapView], points: Observations | None = None
) -> list[Path]:
    """Write ``cameras.txt``, ``images.txt`` and ``points3D.txt`` into ``folder`` (created if
    needed); each file atomically. Views with equal intrinsics share one PINHOLE camera. Every
    point gets a track of one observation: the view and pixel in ``points``. Returns the paths.
    Raises :class:`~.fileio.OutputError` when a file cannot be written."""
    folder = make_dir(folder)
    camera_ids: dict[Intrinsics, int] = {}
    for view in views:
        camera_ids.setdefault(view.intrinsics, len(camera_ids) + 1)
    cameras = [f"{i} PINHOLE {k.w} {k.h} {_nums((k.fl_x, k.fl_y, k.cx, k.cy))}"
               for k, i in camera_ids.items()]  # fmt: skip
    texts = {
        "cameras.txt": _header(
            "Camera list with one line of data per camera:",
            "  CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
            f"Number of cameras: {len(cameras)}",
        ) + cameras,
        "images.txt": _images_lines(views, camera_ids, points),
        "points3D.txt": _points_lines(points),
    }  # fmt: skip
    paths = []
    for name in FILES:
        path = Path(folder) / name
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in texts[name]), encoding="utf-8")
        paths.append(path)
    return paths


def _header(*lines: str) -> list[str]:
    return [f"# {line}" for line in lines]


def _nums(values) -> str:
    return " ".join(repr(float(v)) for v in values)  # the shortest text that reads back exactly


def _images_lines(views, camera_ids, points: Observations | None) -> list[str]:
    seen = _per_view(points, len(views))
    n_obs = sum(len(ids) for ids in seen)
    lines = _header(
        "Image list with two lines of data per image:",
        "  IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "  POINTS2D[] as (X, Y, POINT3D_ID)",
        f"Number of images: {len(views)}, mean observations per image: "
        f"{n_obs / max(1, len(views)):g}",
    )
    for index, view in enumerate(views):
        if any(c.isspace() for c in view.name):
            raise ValueError(f"COLMAP image names cannot hold spaces: '{view.name}'")
        qvec, tvec = colmap_pose(view.camera_to_world)
        camera = camera_ids[view.intrinsics]
        lines.append(f"{index + 1} {_nums(qvec)} {_nums(tvec)} {camera} {view.name}")
        ids = seen[index]
        if not len(ids):
            lines.append("")
            continue
        x, y = points.pixel[ids, 0].tolist(), points.pixel[ids, 1].tolist()
        triples = zip(x, y, (ids + 1).tolist(), strict=True)
        lines.append(" ".join(f"{a!r} {b!r} {i}" for a, b, i in triples))
    return lines


def _per_view(points: Observations | None, n_views: int) -> list[np.ndarray]:
    """For each view, the indices of the points it observes, in point order."""
    if points is None:
        return [np.zeros(0, dtype=np.int64)] * n_views
    order = np.argsort(points.view, kind="stable")
    bounds = np.searchsorted(points.view[order], np.arange(n_views + 1))
    return [order[bounds[v] : bounds[v + 1]] for v in range(n_views)]


def _points_lines(points: Observations | None) -> list[str]:
    n = 0 if points is None else len(points.xyz)
    lines = _header(
        "3D point list with one line of data per point:",
        "  POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
        f"Number of points: {n}, mean track length: {1 if n else 0}",
    )
    if not n:
        return lines
    index_in_view = np.zeros(n, dtype=np.int64)
    for ids in _per_view(points, int(points.view.max()) + 1):
        index_in_view[ids] = np.arange(len(ids))
    columns = [
        range(1, n + 1),
        *np.asarray(points.xyz, dtype=np.float64).T.tolist(),
        *np.asarray(points.rgb).astype(np.int64).T.tolist(),
        (points.view + 1).tolist(),
        index_in_view.tolist(),
    ]
    lines += ["%d %r %r %r %d %d %d 0 %d %d" % row for row in zip(*columns, strict=True)]  # noqa: UP031
    return lines


def find_model(path: str | os.PathLike) -> Path | None:
    """The folder holding ``cameras.txt`` and ``images.txt`` for ``path``: the folder itself, its
    ``sparse/0`` (a dataset folder), or the folder of a ``cameras.txt``/``images.txt`` file; None
    when there is none."""
    path = Path(path)
    candidates = [path.parent] if path.name in FILES[:2] else [path, path.joinpath(*MODEL_FOLDER)]
    for folder in candidates:
        if all((folder / name).is_file() for name in FILES[:2]):
            return folder
    return None


def read_colmap_text(folder: str | os.PathLike) -> list[ColmapView]:
    """The images of a COLMAP text model (``cameras.txt`` and ``images.txt`` in ``folder``), in
    the file's order, with OpenGL-axes poses. Distorting camera models (see ``MODELS``) come back
    with their pinhole part as intrinsics and the coefficients as ``distortion``. Raises
    :class:`DatasetError` naming the file, the line and what is wrong."""
    folder = Path(folder)
    cameras = _read_cameras(folder / "cameras.txt")
    path = folder / "images.txt"
    rows = _data_lines(path)
    views = []
    for number, line in rows[::2]:  # every second line lists an image's 2D points
        fields = line.split(maxsplit=9)
        if len(fields) != 10:
            raise DatasetError(
                path,
                f"line {number}: an image line needs IMAGE_ID QW QX QY QZ TX TY TZ "
                f"CAMERA_ID NAME; it has {len(fields)} fields. Is this a COLMAP images.txt?",
            )
        qvec, tvec = _floats(fields[1:5], path, number), _floats(fields[5:8], path, number)
        if fields[8] not in cameras:
            raise DatasetError(
                path,
                f"line {number}: camera {fields[8]} is not in cameras.txt; use the cameras.txt "
                "of the same model (both files come from one COLMAP export).",
            )
        intrinsics, distortion = cameras[fields[8]]
        pose = camera_to_world_from_colmap(qvec, tvec)
        views.append(ColmapView(fields[9].strip(), pose, intrinsics, distortion))
    if not views:
        raise DatasetError(path, "lists no image; there are no cameras to import.")
    return views


def _read_cameras(path: Path) -> dict[str, tuple[Intrinsics, LensDistortion | None]]:
    cameras = {}
    for number, line in _data_lines(path):
        fields = line.split()
        model = fields[1] if len(fields) > 1 else ""
        names = MODELS.get(model)
        if names is None:
            raise DatasetError(
                path,
                f"line {number}: camera model '{model}' is not one Import Cameras reads "
                f"({', '.join(MODELS)}); undistort the images with COLMAP's image_undistorter "
                "(it writes a PINHOLE model) and import that.",
            )
        if len(fields) != 4 + len(names):
            raise DatasetError(
                path,
                f"line {number}: a {model} camera needs CAMERA_ID MODEL WIDTH HEIGHT "
                f"and {len(names)} parameters ({', '.join(names)}); it has {len(fields)} fields.",
            )
        w, h = (int(v) if v.isdigit() and int(v) > 0 else None for v in fields[2:4])
        if w is None or h is None:
            raise DatasetError(
                path,
                f"line {number}: WIDTH and HEIGHT must be positive whole numbers of "
                f"pixels, not '{fields[2]}' and '{fields[3]}'.",
            )
        p = dict(zip(names, _floats(fields[4:], path, number), strict=True))
        fx, fy = p.get("fx", p.get("f")), p.get("fy", p.get("f"))
        if not (fx > 0 and fy > 0):
            raise DatasetError(path, f"line {number}: focal lengths must be positive.")
        coefficients = {k: p[k] for k in ("k1", "k2", "k3", "k4", "p1", "p2") if p.get(k)}
        distortion = None
        if coefficients:
            kind = FISHEYE if model == "OPENCV_FISHEYE" else RADIAL_TANGENTIAL
            distortion = LensDistortion(kind, **coefficients)
        cameras[fields[0]] = (Intrinsics(fx, fy, p["cx"], p["cy"], w, h), distortion)
    return cameras


def _data_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines that are not comments. An image's empty POINTS2D line
    counts, so only comment lines and trailing blank lines are dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot be read ({exc}); is it a COLMAP text model?") from exc
    rows = [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), 1)]
    rows = [(n, line) for n, line in rows if not line.startswith("#")]
    while rows and not rows[-1][1].strip():
        rows.pop()
    if path.name == "cameras.txt":
        rows = [(n, line) for n, line in rows if line.strip()]
    return rows


def _floats(values, path: Path, number: int) -> np.ndarray:
    try:
        out = np.array([float(v) for v in values], dtype=np.float64)
    except ValueError as exc:
        raise DatasetError(path, f"line {number}: {exc}; expected numbers.") from exc
    if not np.isfinite(out).all():
        raise DatasetError(path, f"line {number}: a value is not finite.")
    return out
