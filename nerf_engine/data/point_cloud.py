"""Surface points from depth: each training view's pixels back-projected along their rays to the
depth Blender rendered, coloured from the image, and written as ``points3d.ply`` — the starting
point Gaussian-splatting tools take from COLMAP's sparse points.

Size rule: at most :data:`MAX_POINTS` (100 000) points, an equal share per view (a view with fewer
surface pixels gives all of them), drawn at random with a fixed seed so the same export writes the
same file. 100 000 is the point count 3D Gaussian Splatting (Kerbl et al. 2023) starts a synthetic
scene from (its random initialisation), and the size of a COLMAP sparse cloud of an object scene;
densification grows it from there.

The rays are the engine's own (``cameras.camera_rays``: pixel centres at +0.5, unit directions),
so a point lies exactly where the pixel's ray meets the surface at the exported distance.

The PLY is binary little-endian with 3D Gaussian Splatting's vertex layout (``x y z`` float,
``nx ny nz`` float, zero; ``red green blue`` uchar), which its ``fetchPly``, nerfstudio's
splatfacto and every PLY viewer read. It is written with numpy: the add-on writes it inside
Blender, whose Python has no PLY library.

numpy and the standard library only: the add-on imports this module inside Blender.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .cameras import Intrinsics, camera_rays
from .colmap import Observations
from .fileio import atomic_path

MAX_POINTS = 100_000
SEED = 0
PLY_NAME = "points3d.ply"
PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
     ("red", "u1"), ("green", "u1"), ("blue", "u1")]
)  # fmt: skip


def view_shares(n_views: int, total: int = MAX_POINTS) -> list[int]:
    """How many points each of ``n_views`` views may give: ``total`` split equally (the first
    ``total % n_views`` views give one more)."""
    base, extra = divmod(total, max(1, n_views))
    return [base + (i < extra) for i in range(n_views)]


def surface_pixels(
    distance: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns [M] of up to ``count`` pixels that saw a surface (``distance`` [h, w]
    finite and > 0), drawn uniformly at random without replacement, in row-major order."""
    rows, cols = np.nonzero(np.isfinite(distance) & (distance > 0))
    if len(rows) > count:
        keep = np.sort(rng.choice(len(rows), size=count, replace=False))
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def backproject(
    intrinsics: Intrinsics,
    camera_to_world: np.ndarray,
    distance: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """World points [M, 3] where the rays through pixels (``rows``, ``cols``) reach
    ``distance[rows, cols]`` (distance along the ray, scene units), and the pixels' continuous
    coordinates [M, 2] (centres: index + 0.5). ``camera_to_world`` [4, 4], OpenGL axes."""
    px, py = cols + 0.5, rows + 0.5
    k = intrinsics
    c2w = np.asarray(camera_to_world, dtype=np.float64)
    rays_o, rays_d = camera_rays(c2w, px, py, k.fl_x, k.fl_y, k.cx, k.cy)
    xyz = rays_o + rays_d * distance[rows, cols].astype(np.float64)[:, None]
    return xyz, np.stack([px, py], axis=-1)


def gather(views: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Observations:
    """Join per-view results into one :class:`~.colmap.Observations`: ``views[i]`` is view i's
    ``(xyz [M, 3], rgb [M, 3] uint8, pixel [M, 2])``."""
    n = [len(xyz) for xyz, _, _ in views]
    return Observations(
        xyz=np.concatenate([v[0] for v in views]).reshape(-1, 3),
        rgb=np.concatenate([v[1] for v in views]).reshape(-1, 3).astype(np.uint8),
        view=np.repeat(np.arange(len(views)), n),
        pixel=np.concatenate([v[2] for v in views]).reshape(-1, 2),
    )


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Colours [..., 3] in 0..1 as 0..255 bytes (rounded, clipped)."""
    return np.clip(np.round(np.asarray(rgb, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_ply(path: str | os.PathLike, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Write points ``xyz`` [N, 3] with colours ``rgb`` [N, 3] uint8 as a binary little-endian
    PLY (layout in the module docstring), atomically. Raises :class:`~.fileio.OutputError`."""
    vertices = np.zeros(len(xyz), dtype=PLY_VERTEX)
    for axis, name in enumerate("xyz"):
        vertices[name] = xyz[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = rgb[:, channel]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(xyz)}"]
    header += [f"property {'float' if PLY_VERTEX[n].kind == 'f' else 'uchar'} {n}"
               for n in PLY_VERTEX.names]  # fmt: skip
    header.append("end_header")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(vertices.tobytes())
