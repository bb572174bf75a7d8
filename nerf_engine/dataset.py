"""NeRF datasets on disk: ``transforms_*.json`` (NeRF-synthetic, instant-ngp, nerfstudio).

Reads
- NeRF-synthetic: ``transforms_{train,val,test}.json`` with only ``camera_angle_x`` (image size from
  the files) and ``file_path`` without extension (``./train/r_0`` -> ``train/r_0.png``);
- instant-ngp / nerfstudio ``transforms.json``: ``fl_x, fl_y, cx, cy, w, h`` at the top level or per
  frame, ``camera_angle_x/y``, ``aabb``, ``near``, ``far``. A single ``transforms.json`` is split by
  nerfstudio's ``{split}_filenames`` lists when present, else every 8th frame is held out for
  val/test (the LLFF convention).

Every problem raises :class:`DatasetError` naming the file, the frame index and the key, with what
to do about it. Image paths never leave the dataset folder (no absolute paths, ``..``, or
symlinks out).

numpy and the standard library only: the add-on imports this module inside Blender.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from .cameras import Intrinsics
from .fileio import write_json_atomic
from .images import ImageError, image_size, read_rgba

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".exr", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
MAX_JSON_BYTES = 256 * 1024 * 1024
HOLDOUT_EVERY = 8
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
PINHOLE_MODELS = (None, "PINHOLE", "SIMPLE_PINHOLE", "OPENCV", "SIMPLE_RADIAL", "RADIAL")


class DatasetError(ValueError):
    """A dataset that cannot be used. ``path``, ``frame`` and ``key`` say where the problem is."""

    def __init__(self, path, problem: str, *, frame: int | None = None, key: str | None = None):
        self.path, self.frame, self.key = Path(path), frame, key
        where = str(path)
        if frame is not None:
            where += f", frame {frame}"
        if key is not None:
            where += f", key '{key}'"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera view: pose, intrinsics and (for training data) its image."""

    camera_to_world: np.ndarray  # [4, 4] float64, OpenGL convention
    intrinsics: Intrinsics
    file_path: str | None = None  # as written in the JSON, relative to the dataset folder
    image_path: Path | None = None  # resolved file inside the dataset folder


@dataclass(frozen=True, eq=False)
class Split:
    """The frames of one split and the scene metadata that came with them."""

    name: str
    source: Path  # the transforms file
    frames: tuple[Frame, ...]
    aabb: np.ndarray | None = None  # [2, 3]: min and max corner
    near: float | None = None
    far: float | None = None

    @property
    def root(self) -> Path:
        return self.source.parent

    def poses(self) -> np.ndarray:
        """[N, 4, 4] camera-to-world matrices."""
        return np.stack([f.camera_to_world for f in self.frames])


# --- reading ---------------------------------------------------------------------------------


def read_split(dataset_dir: str | os.PathLike, split: str) -> Split:
    """The frames of ``split`` in ``dataset_dir``: ``transforms_<split>.json``, else
    ``transforms.json``."""
    root = Path(dataset_dir)
    if split not in SPLITS:
        raise DatasetError(root, f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    if not root.is_dir():
        raise DatasetError(root, "dataset folder not found; export a dataset or check the path.")
    per_split = root / f"transforms_{split}.json"
    if per_split.is_file():
        return read_transforms(per_split, name=split)
    single = root / "transforms.json"
    if single.is_file():
        return read_transforms(single, name=split, subset=split)
    raise DatasetError(
        root,
        f"no transforms_{split}.json or transforms.json here; is this a NeRF dataset folder?",
    )


def available_splits(dataset_dir: str | os.PathLike) -> list[str]:
    root = Path(dataset_dir)
    if (root / "transforms.json").is_file():
        return list(SPLITS)
    return [s for s in SPLITS if (root / f"transforms_{s}.json").is_file()]


def read_transforms(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    subset: str | None = None,
    require_images: bool = True,
) -> Split:
    """Parse and validate one transforms file.

    ``subset`` picks a split out of a single ``transforms.json``. With ``require_images=False``
    (camera files for rendering) frames need no ``file_path`` but must give ``w`` and ``h``.
    """
    path = Path(path)
    top = _load_json(path)
    raw_frames = top.get("frames")
    if not isinstance(raw_frames, list):
        raise DatasetError(
            path,
            "missing or not a list; a transforms file lists its views in 'frames'.",
            key="frames",
        )
    _check_camera_model(path, top, None)
    indices = _subset_indices(path, top, raw_frames, subset) if subset else range(len(raw_frames))
    if not indices:
        label = f"split '{subset or name}'" if (subset or name) else "the file"
        raise DatasetError(
            path, f"{label} has no frames; add views or change the split fractions.", key="frames"
        )
    frames = tuple(_parse_frame(path, top, raw_frames[i], i, require_images) for i in indices)
    near = _optional_number(path, top, "near", minimum=0.0)
    far = _optional_number(path, top, "far", minimum=0.0)
    if near is not None and far is not None and not near < far:
        raise DatasetError(path, f"near ({near}) must be smaller than far ({far}).", key="far")
    return Split(
        name=name or subset or path.stem.removeprefix("transforms_"),
        source=path,
        frames=frames,
        aabb=_parse_aabb(path, top.get("aabb")),
        near=near,
        far=far,
    )


def load_rgba(split: Split) -> list[np.ndarray]:
    """Every frame's image as float32 [H, W, 4] (sRGB colour, straight alpha), checked against its
    intrinsics' size."""
    images = []
    for index, frame in enumerate(split.frames):
        if frame.image_path is None:
            raise DatasetError(split.source, "frame has no image.", frame=index, key="file_path")
        try:
            rgba = read_rgba(frame.image_path)
        except ImageError as exc:
            raise DatasetError(split.source, str(exc), frame=index, key="file_path") from exc
        h, w = rgba.shape[:2]
        intr = frame.intrinsics
        if (w, h) != (intr.w, intr.h):
            raise DatasetError(
                split.source,
                f"image {frame.image_path.name} is {w}×{h} but the camera says {intr.w}×{intr.h}; "
                "fix w/h in the JSON or re-export the image.",
                frame=index,
                key="w",
            )
        images.append(rgba)
    return images


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(path, "file not found.")
    size = path.stat().st_size
    if size == 0:
        raise DatasetError(path, "file is empty; re-export the dataset.")
    if size > MAX_JSON_BYTES:
        raise DatasetError(path, f"file is {size} bytes, over the {MAX_JSON_BYTES}-byte limit.")
    try:
        top = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc}).") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(
            path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    except RecursionError as exc:
        raise DatasetError(path, "JSON nested too deeply.") from exc
    if not isinstance(top, dict):
        raise DatasetError(
            path, f"expected a JSON object at the top level, found {type(top).__name__}."
        )
    return top


def _subset_indices(path: Path, top: dict, raw_frames: list, split: str) -> list[int]:
    names = top.get(f"{split}_filenames")
    if isinstance(names, list) and names:
        wanted = {_normalise_rel(n) for n in names if isinstance(n, str)}
        return [
            i
            for i, fr in enumerate(raw_frames)
            if isinstance(fr, dict) and _normalise_rel(str(fr.get("file_path", ""))) in wanted
        ]
    held_out = [i for i in range(len(raw_frames)) if i % HOLDOUT_EVERY == 0]
    if split == "train":
        return [i for i in range(len(raw_frames)) if i % HOLDOUT_EVERY != 0] or held_out
    return held_out


def _normalise_rel(file_path: str) -> str:
    posix = file_path.replace("\\", "/")
    while posix.startswith("./"):
        posix = posix[2:]
    return str(PurePosixPath(posix).with_suffix("")) if PurePosixPath(posix).suffix else posix


def _parse_frame(path: Path, top: dict, raw, index: int, require_images: bool) -> Frame:
    if not isinstance(raw, dict):
        raise DatasetError(path, f"expected an object, found {type(raw).__name__}.", frame=index)
    if "transform_matrix" not in raw:
        raise DatasetError(
            path,
            "missing; every frame needs its 4×4 camera-to-world matrix.",
            frame=index,
            key="transform_matrix",
        )
    c2w = _parse_matrix(path, raw["transform_matrix"], index)
    _check_camera_model(path, raw, index)
    file_path, image_path = raw.get("file_path"), None
    if require_images or file_path is not None:
        image_path = resolve_image_path(path.parent, file_path, path, index)
    intrinsics = _parse_intrinsics(path, top, raw, index, image_path)
    return Frame(c2w, intrinsics, file_path, image_path)


def _parse_matrix(path: Path, value, index: int) -> np.ndarray:
    where = {"frame": index, "key": "transform_matrix"}
    try:
        m = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(path, "not a matrix of numbers.", **where) from exc
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4) or _has_bool(value):
        raise DatasetError(path, f"expected 4×4 (or 3×4) numbers, found shape {m.shape}.", **where)
    if not np.isfinite(m).all():
        raise DatasetError(path, "contains NaN or infinity.", **where)
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-4):
        raise DatasetError(path, f"last row must be [0, 0, 0, 1], found {m[3].tolist()}.", **where)
    det = float(np.linalg.det(m[:3, :3]))
    if abs(det) < 1e-9:
        raise DatasetError(path, "rotation part is singular (zero scale); fix the camera.", **where)
    if det < 0:
        raise DatasetError(path, "rotation part is mirrored (negative determinant).", **where)
    m[:3, :3] /= np.linalg.norm(m[:3, :3], axis=0, keepdims=True)  # drop any camera scale
    return m


def _has_bool(value) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, list) and any(_has_bool(v) for v in value)


def _number(
    path: Path, value, *, frame: int | None, key: str, minimum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DatasetError(path, f"expected a number, found {value!r}.", frame=frame, key=key)
    value = float(value)
    if not math.isfinite(value):
        raise DatasetError(path, "must be finite.", frame=frame, key=key)
    if minimum is not None and value < minimum:
        raise DatasetError(
            path, f"must be at least {minimum}, found {value}.", frame=frame, key=key
        )
    return value


def _optional_number(
    path: Path, obj: dict, key: str, *, minimum: float | None = None
) -> float | None:
    return (
        None
        if obj.get(key) is None
        else _number(path, obj[key], frame=None, key=key, minimum=minimum)
    )


def _parse_intrinsics(
    path: Path, top: dict, raw: dict, index: int, image_path: Path | None
) -> Intrinsics:
    def level_of(key):  # the frame's own value wins over the file's
        return (raw, index) if key in raw else (top, None) if key in top else (None, None)

    size = {}
    for key in ("w", "h"):
        obj, frame = level_of(key)
        if obj is not None:
            value = _number(path, obj[key], frame=frame, key=key, minimum=1)
            if value != int(value):
                raise DatasetError(
                    path, f"must be a whole number of pixels, found {value}.", frame=frame, key=key
                )
            size[key] = int(value)
    if len(size) < 2:
        if image_path is None:
            raise DatasetError(path, "image size unknown: give 'w' and 'h'.", frame=index, key="w")
        try:
            iw, ih = image_size(image_path)
        except ImageError as exc:
            raise DatasetError(path, str(exc), frame=index, key="file_path") from exc
        size.setdefault("w", iw)
        size.setdefault("h", ih)
    w, h = size["w"], size["h"]
    fl_x = _focal(path, raw, top, index, "fl_x", "camera_angle_x", w)
    if fl_x is None:
        raise DatasetError(
            path, "no focal length: give 'fl_x' or 'camera_angle_x'.", frame=index, key="fl_x"
        )
    fl_y = _focal(path, raw, top, index, "fl_y", "camera_angle_y", h) or fl_x
    centre = {}
    for key, default in (("cx", 0.5 * w), ("cy", 0.5 * h)):
        obj, frame = level_of(key)
        centre[key] = default if obj is None else _number(path, obj[key], frame=frame, key=key)
    for key in DISTORTION_KEYS:
        obj, frame = level_of(key)
        if obj is not None and _number(path, obj[key], frame=frame, key=key) != 0.0:
            raise DatasetError(
                path,
                "lens distortion is not supported; undistort the images first "
                "(e.g. nerfstudio's ns-process-data) and set it to 0.",
                frame=frame,
                key=key,
            )
    return Intrinsics(fl_x=fl_x, fl_y=fl_y, cx=centre["cx"], cy=centre["cy"], w=w, h=h)


def _focal(path, raw, top, index, fl_key, angle_key, size) -> float | None:
    for obj, frame in ((raw, index), (top, None)):
        if fl_key in obj:
            fl = _number(path, obj[fl_key], frame=frame, key=fl_key)
            if fl <= 0:
                raise DatasetError(
                    path, f"focal length must be positive, found {fl}.", frame=frame, key=fl_key
                )
            return fl
        if angle_key in obj:
            angle = _number(path, obj[angle_key], frame=frame, key=angle_key)
            if not 0.0 < angle < math.pi:
                raise DatasetError(
                    path,
                    f"field of view must be in (0, π) radians, found {angle}.",
                    frame=frame,
                    key=angle_key,
                )
            return 0.5 * size / math.tan(0.5 * angle)
    return None


def _check_camera_model(path: Path, obj: dict, index: int | None) -> None:
    model = obj.get("camera_model")
    if model not in PINHOLE_MODELS:
        raise DatasetError(
            path,
            f"camera model {model!r} is not supported; only pinhole cameras are "
            "(undistort fisheye/equirectangular images first).",
            frame=index,
            key="camera_model",
        )


def _parse_aabb(path: Path, value) -> np.ndarray | None:
    if value is None:
        return None
    try:
        box = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(path, "expected [[min x, y, z], [max x, y, z]].", key="aabb") from exc
    if box.shape != (2, 3) or not np.isfinite(box).all() or not (box[0] < box[1]).all():
        raise DatasetError(
            path, "expected finite [[min x, y, z], [max x, y, z]] with min < max.", key="aabb"
        )
    return box


def resolve_image_path(root: Path, file_path, source: Path, index: int) -> Path:
    """The image file for a frame's ``file_path``, which must stay inside ``root``."""
    where = {"frame": index, "key": "file_path"}
    if not isinstance(file_path, str) or not file_path.strip():
        raise DatasetError(
            source, "missing or empty; give the image path relative to the dataset folder.", **where
        )
    posix = file_path.replace("\\", "/")
    if PurePosixPath(posix).is_absolute() or PureWindowsPath(file_path).drive:
        raise DatasetError(
            source,
            f"{file_path!r} is absolute; image paths must be relative to the dataset folder.",
            **where,
        )
    root_real = root.resolve()
    base = root / posix
    candidates = [base] + [base.with_name(base.name + suffix) for suffix in IMAGE_SUFFIXES]
    for candidate in candidates:
        if not (candidate.is_file() or candidate.is_symlink()):
            continue
        real = candidate.resolve()
        if not real.is_relative_to(root_real):
            raise DatasetError(
                source,
                f"{file_path!r} leads outside the dataset folder (via '..' or a symlink).",
                **where,
            )
        if real.is_file():
            return real
    if not base.resolve().is_relative_to(root_real):
        raise DatasetError(
            source, f"{file_path!r} leads outside the dataset folder (via '..').", **where
        )
    raise DatasetError(
        source, f"image {file_path!r} not found (also tried {', '.join(IMAGE_SUFFIXES)}).", **where
    )


# --- writing ---------------------------------------------------------------------------------


def transforms_dict(
    frames: Sequence[Frame],
    *,
    aabb: np.ndarray | None = None,
    near: float | None = None,
    far: float | None = None,
    extra: dict | None = None,
) -> dict:
    """The JSON object of a transforms file. Shared intrinsics go to the top level (where the
    original NeRF code reads ``camera_angle_x``); differing ones are written on every frame."""
    if not frames:
        raise ValueError("a transforms file needs at least one frame")
    first = frames[0].intrinsics
    shared = all(f.intrinsics == first for f in frames)
    out: dict = {"camera_angle_x": first.camera_angle_x, "camera_angle_y": first.camera_angle_y}
    if shared:
        out.update(first.to_dict())
    if aabb is not None:
        out["aabb"] = np.asarray(aabb, dtype=float).tolist()
    if near is not None:
        out["near"] = float(near)
    if far is not None:
        out["far"] = float(far)
    out.update(extra or {})
    out["frames"] = []
    for frame in frames:
        entry: dict = {}
        if frame.file_path is not None:
            entry["file_path"] = frame.file_path
        entry["transform_matrix"] = np.asarray(frame.camera_to_world, dtype=float).tolist()
        if not shared:
            entry.update(frame.intrinsics.to_dict())
            entry["camera_angle_x"] = frame.intrinsics.camera_angle_x
        out["frames"].append(entry)
    return out


def write_transforms(path: str | os.PathLike, frames: Sequence[Frame], **kwargs) -> None:
    """Write a transforms file atomically (see :func:`transforms_dict` for the arguments)."""
    write_json_atomic(path, transforms_dict(frames, **kwargs))
