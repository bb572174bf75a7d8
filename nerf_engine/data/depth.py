"""Per-frame depth maps: what a Blender export (and nerfstudio) writes beside each image.

Keys (docs/formats.md):

- ``depth_file_path`` (per frame): an EXR (float, the value in R — or Z, Y, V, depth — as Blender
  and OpenEXR tools write it) or a 16-bit PNG, relative to the dataset folder;
- ``depth_unit_scale_factor`` (top level or per frame): file values × this = scene units;
  nerfstudio's key and meaning. Default 1 for float files, 1e-3 for 16-bit PNG (nerfstudio's
  millimetres);
- ``depth_convention``: ``"distance_along_ray"`` (what our export writes: the distance from the
  camera centre along each pixel's ray) or ``"z"`` (planar depth along the camera's −Z axis, as
  depth sensors and nerfstudio's RGB-D data give it; the default when the key is absent). Planar
  depth is converted exactly: distance = z · ‖(x − cx)/fl_x, (y − cy)/fl_y, 1‖ at the pixel centre.

What a value means: a positive finite number is a surface at that distance; ``+inf`` (or Blender's
"nothing hit", 1e10) is a ray that hits nothing (empty space all the way); 0, negative values and
NaN are "no measurement" (a depth sensor's hole) and supervise nothing — except in files of our
own export (``"generator": "blender-nerf"``), which writes 0 where a ray hits nothing. Training
also treats a pixel whose image alpha is 0 as hitting nothing.

numpy and the standard library only (readers of EXR and PNG are imported where they are used).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .cameras import Intrinsics
from .frames import OUR_GENERATOR, Frame
from .images import ImageError, image_size
from .transforms_fields import DatasetError, resolve_image_path

DEPTH_KEY = "depth_file_path"
CONVENTION_KEY = "depth_convention"
SCALE_KEY = "depth_unit_scale_factor"
ALONG_RAY, PLANAR_Z = "distance_along_ray", "z"
CONVENTIONS = (ALONG_RAY, PLANAR_Z)
# Top-level keys a frame may override (``Split.defaults`` keeps them).
DEPTH_TOP_KEYS = (CONVENTION_KEY, SCALE_KEY, "generator")
NO_HIT_FROM = 1e9  # Blender writes 1e10 where a ray hits nothing: that and beyond is "no surface"
PNG16_DEFAULT_SCALE = 1e-3  # nerfstudio: 16-bit depth PNGs hold millimetres
EXR_CHANNELS = ("R", "Z", "Y", "V", "depth", "RGBA", "RGB")  # the first one present is read


def has_depth(frames) -> bool:
    """Whether any of ``frames`` names a depth file."""
    return any(DEPTH_KEY in f.extra for f in frames)


def planar_to_ray_distance(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Depth along the camera's −Z axis [h, w] (row 0 at the top) -> distance along each pixel's
    ray, the ``t`` of the engine's unit-length rays (pinhole camera; pixel centres at +0.5)."""
    k = intrinsics
    xs = (np.arange(k.w) + 0.5 - k.cx) / k.fl_x
    ys = (np.arange(k.h) + 0.5 - k.cy) / k.fl_y
    stretch = np.sqrt(1.0 + xs[None, :] ** 2 + ys[:, None] ** 2)
    return depth * stretch


def read_depth_file(path: Path) -> tuple[np.ndarray, bool]:
    """The values of a depth file as float32 [H, W] and whether it holds integers (16-bit PNG).
    Raises ImageError naming the file for missing, empty, unreadable or unsupported files."""
    image_size(path)  # exists, not empty, header readable, not a decompression bomb
    try:
        if path.suffix.lower() == ".exr":
            return _read_exr_channel(path), False
        import png

        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        if info["bitdepth"] != 16 or info["planes"] != 1:
            raise ImageError(
                f"{path}: a depth PNG must be 16-bit grey (this one is {info['bitdepth']}-bit with "
                f"{info['planes']} channel(s)); write depth as EXR or 16-bit PNG."
            )
        data = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
        return data.reshape(height, width).astype(np.float32), True
    except ImageError:
        raise
    except Exception as exc:  # truncated data, not a PNG, reader errors
        raise ImageError(
            f"{path}: cannot decode the depth map ({type(exc).__name__}: {exc}); depth must be "
            "EXR or 16-bit PNG: re-export it."
        ) from exc


def _read_exr_channel(path: Path) -> np.ndarray:
    import OpenEXR

    with OpenEXR.File(str(path)) as exr:
        channels = exr.channels()
        name = next((c for c in EXR_CHANNELS if c in channels), None)
        if name is None:
            raise ImageError(
                f"{path}: EXR has none of the channels {', '.join(EXR_CHANNELS[:5])} (it has "
                f"{sorted(channels)}); write the depth into R or Z."
            )
        data = np.array(channels[name].pixels, dtype=np.float32)
    return data[..., 0] if data.ndim == 3 else data


def _setting(split, frame: Frame, index: int, key: str):
    return frame.extra.get(key, split.defaults.get(key))


def depth_convention(split, frame: Frame, index: int) -> str:
    """The frame's ``depth_convention`` (default: nerfstudio's planar ``z``)."""
    value = _setting(split, frame, index, CONVENTION_KEY)
    if value is None:
        return PLANAR_Z
    if value not in CONVENTIONS:
        raise DatasetError(
            split.source,
            f'{value!r} is not a depth convention; use "distance_along_ray" (distance from the '
            'camera along each ray) or "z" (planar depth along the camera axis).',
            frame=index,
            key=CONVENTION_KEY,
        )
    return value


def _scale(split, frame: Frame, index: int, integers: bool) -> float:
    value = _setting(split, frame, index, SCALE_KEY)
    if value is None:
        return PNG16_DEFAULT_SCALE if integers else 1.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        value = None
    if value is None or value <= 0:
        raise DatasetError(
            split.source,
            "must be a positive number (file values × it = scene units, e.g. 0.001 for "
            "millimetres).",
            frame=index,
            key=SCALE_KEY,
        )
    return float(value)


def read_depth(split, index: int) -> np.ndarray | None:
    """Frame ``index``'s depth as float32 [H, W] distances along each pixel-centre ray, in scene
    units: +inf where the ray hits nothing, NaN where the file has no measurement; None when the
    frame has no depth file. Raises DatasetError (file, frame, key) for a missing, unreadable or
    mis-sized file and for bad settings. Frames with lens distortion give None (see
    :func:`depth_notes`)."""
    frame = split.frames[index]
    if DEPTH_KEY not in frame.extra or frame.distortion is not None:  # (see depth_notes)
        return None
    where = {"frame": index, "key": DEPTH_KEY}
    rel = frame.extra[DEPTH_KEY]
    path = resolve_image_path(split.root, rel, split.source, index, key=DEPTH_KEY)
    try:
        raw, integers = read_depth_file(path)
    except ImageError as exc:
        raise DatasetError(split.source, str(exc), **where) from exc
    intr = frame.intrinsics
    if raw.shape != (intr.h, intr.w):
        raise DatasetError(
            split.source,
            f"depth map {path.name} is {raw.shape[1]}×{raw.shape[0]} but the camera says "
            f"{intr.w}×{intr.h}; depth must have its image's size (re-export it).",
            **where,
        )
    ours = _setting(split, frame, index, "generator") == OUR_GENERATOR
    no_hit = (raw >= NO_HIT_FROM) | (raw == np.inf) | ((raw == 0) & ours)
    unknown = ~no_hit & (~np.isfinite(raw) | (raw <= 0))
    depth = raw.astype(np.float64) * _scale(split, frame, index, integers)
    if depth_convention(split, frame, index) == PLANAR_Z:
        depth = planar_to_ray_distance(depth, intr)
    depth = np.where(no_hit, np.inf, np.where(unknown, np.nan, depth))
    return depth.astype(np.float32)


def iter_depths(split) -> Iterator[np.ndarray | None]:
    """:func:`read_depth` of every frame, one at a time (a large dataset never sits in memory)."""
    for index in range(len(split.frames)):
        yield read_depth(split, index)


def depth_notes(split) -> tuple[str, ...]:
    """What the user should know about the split's depth: frames with lens distortion, whose depth
    is not used (it is not undistorted)."""
    distorted = [f for f in split.frames if DEPTH_KEY in f.extra and f.distortion is not None]
    if not distorted:
        return ()
    return (
        f"{split.source.name}: {len(distorted)} frame(s) with lens distortion have depth maps; "
        "those depth maps are not used (they would have to be undistorted like the photos). "
        "Undistort the photos and depth maps first (COLMAP image_undistorter) to use them.",
    )
