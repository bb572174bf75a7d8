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
        top = json.loads(path.read_bytes().decode("utf-8-sig"))  # tolerate a BOM
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
    """Indices of ``split``'s frames in a single ``transforms.json``.

    nerfstudio's ``{split}_filenames`` lists win when any is present (``val`` and ``test`` stand in
    for each other; a split with no list gets every frame the other lists leave out); else every
    ``HOLDOUT_EVERY``-th frame is held out for val and test.
    """
    lists = {
        s: _filename_set(path, top[f"{s}_filenames"], f"{s}_filenames")
        for s in SPLITS
        if top.get(f"{s}_filenames") is not None
    }
    if not lists:
        held_out = [i for i in range(len(raw_frames)) if i % HOLDOUT_EVERY == 0]
        if split == "train":
            return [i for i in range(len(raw_frames)) if i % HOLDOUT_EVERY != 0] or held_out
        return held_out
    names = {
        i: _normalise_rel(str(fr.get("file_path", "")))
        for i, fr in enumerate(raw_frames)
        if isinstance(fr, dict)
    }
    key = split if split in lists else {"train": None, "val": "test", "test": "val"}[split]
    if key not in lists:  # no list of its own: every frame the other lists leave out
        others = set().union(*lists.values())
        return [i for i, name in names.items() if name not in others]
    unmatched = lists[key] - set(names.values())
    if unmatched:
        raise DatasetError(
            path,
            f"lists {len(unmatched)} file(s) that no frame has, e.g. {sorted(unmatched)[0]!r}; "
            "fix the list or the frames' file_path.",
            key=f"{key}_filenames",
        )
    return [i for i, name in names.items() if name in lists[key]]


def _filename_set(path: Path, names, key: str) -> set[str]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DatasetError(path, "expected a list of image paths (strings).", key=key)
    return {_normalise_rel(n) for n in names}


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
    if require_images or file_path is not None:  # camera files may name images not made yet
        image_path = resolve_image_path(
            path.parent, file_path, path, index, missing_ok=not require_images
        )
    intrinsics = _parse_intrinsics(path, top, raw, index, image_path)
    return Frame(c2w, intrinsics, file_path, image_path)


def _parse_matrix(path: Path, value, index: int) -> np.ndarray:
    where = {"frame": index, "key": "transform_matrix"}
    bad = _first_non_number(value)
    if bad is not None:
        raise DatasetError(path, f"entries must be numbers, found {bad!r}.", **where)
    try:
        m = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # ragged rows
        raise DatasetError(
            path, "not a matrix of numbers (rows of different lengths?).", **where
        ) from exc
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise DatasetError(path, f"expected 4×4 (or 3×4) numbers, found shape {m.shape}.", **where)
    if not np.isfinite(m).all():
        raise DatasetError(path, "contains NaN or infinity.", **where)
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-4):
        raise DatasetError(path, f"last row must be [0, 0, 0, 1], found {m[3].tolist()}.", **where)
    scale = np.linalg.norm(m[:3, :3], axis=0)
    if not (np.isfinite(scale).all() and scale.min() > 1e-12):
        raise DatasetError(path, "rotation part is singular (zero scale); fix the camera.", **where)
    m[:3, :3] /= scale  # drop any camera scale; the scale itself says nothing about the view
    det = float(np.linalg.det(m[:3, :3]))
    if abs(det) < 1e-6:
        raise DatasetError(
            path, "rotation part is singular (parallel axes); fix the camera.", **where
        )
    if det < 0:
        raise DatasetError(
            path,
            "rotation part is mirrored (negative determinant); remove the negative scale.",
            **where,
        )
    m[3] = [0.0, 0.0, 0.0, 1.0]
    return m


def _first_non_number(value):
    """The first leaf of nested lists that is not a real number (bools and strings count), else
    None. numpy would quietly turn "1" into 1.0 and True into 1.0."""
    if isinstance(value, list):
        return next((bad for bad in map(_first_non_number, value) if bad is not None), None)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value if value is not None else "null"
    return None


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
    levels = [(raw, index), (top, None)]
    fl_x = _focal(path, levels, "fl_x", "camera_angle_x", w)
    if fl_x is None:
        raise DatasetError(
            path, "no focal length: give 'fl_x' or 'camera_angle_x'.", frame=index, key="fl_x"
        )
    # Key by key, as instant-ngp reads them: a frame's camera_angle_x beats the file's fl_x.
    fl_y = _focal(path, levels, "fl_y", "camera_angle_y", h) or fl_x
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


def _focal(path: Path, levels, fl_key: str, angle_key: str, size: int) -> float | None:
    """The focal length in pixels from the first (object, frame index) level that gives one."""
    for obj, frame in levels:
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
        if _first_non_number(value) is not None:
            raise TypeError("not all numbers")
        box = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(
            path, "expected [[min x, y, z], [max x, y, z]] of numbers.", key="aabb"
        ) from exc
    if box.shape != (2, 3) or not np.isfinite(box).all() or not (box[0] < box[1]).all():
        raise DatasetError(
            path, "expected finite [[min x, y, z], [max x, y, z]] with min < max.", key="aabb"
        )
    return box


def resolve_image_path(
    root: Path, file_path, source: Path, index: int, *, missing_ok: bool = False
) -> Path | None:
    """The image file for a frame's ``file_path``, which must stay inside ``root``.

    ``file_path`` may omit the extension (NeRF-synthetic). With ``missing_ok`` a safe path to a
    file that does not exist gives None instead of an error.
    """
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
    try:
        found = _find_inside(root, posix)
    except (OSError, ValueError, RuntimeError) as exc:  # NUL bytes, too long, symlink loops
        raise DatasetError(source, f"{file_path!r} cannot be opened ({exc}).", **where) from exc
    if found is None:
        raise DatasetError(
            source,
            f"{file_path!r} leads outside the dataset folder (via '..' or a symlink); "
            "keep images inside it.",
            **where,
        )
    if found.is_file() or missing_ok:
        return found if found.is_file() else None
    raise DatasetError(
        source, f"image {file_path!r} not found (also tried {', '.join(IMAGE_SUFFIXES)}).", **where
    )


def _find_inside(root: Path, posix: str) -> Path | None:
    """The resolved file for ``posix`` (with or without an image suffix) or, if none exists, the
    resolved path itself; None when that is outside ``root``."""
    root_real = root.resolve()
    base = root / posix
    for candidate in [base] + [base.with_name(base.name + suffix) for suffix in IMAGE_SUFFIXES]:
        if candidate.is_file() or candidate.is_symlink():
            real = candidate.resolve()
            if not real.is_relative_to(root_real):
                return None
            if real.is_file():
                return real
    real = base.resolve()
    return real if real.is_relative_to(root_real) else None


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
    original NeRF code reads ``camera_angle_x``); differing ones are written on every frame.
    Matrices are always written 4×4; numpy scalars become plain JSON numbers."""
    if not frames:
        raise ValueError("a transforms file needs at least one frame")
    first = frames[0].intrinsics
    shared = all(f.intrinsics == first for f in frames)
    out: dict = {"camera_angle_x": first.camera_angle_x, "camera_angle_y": first.camera_angle_y}
    if shared:
        out.update(_intrinsics_json(first))
    if aabb is not None:
        out["aabb"] = np.asarray(aabb, dtype=float).tolist()
    if near is not None:
        out["near"] = float(near)
    if far is not None:
        out["far"] = float(far)
    out.update(extra or {})
    out["frames"] = []
    for index, frame in enumerate(frames):
        entry: dict = {}
        if frame.file_path is not None:
            entry["file_path"] = _relative_file_path(frame.file_path, index)
        entry["transform_matrix"] = _matrix_json(frame.camera_to_world, index)
        if not shared:
            entry.update(_intrinsics_json(frame.intrinsics))
        out["frames"].append(entry)
    return out


def _intrinsics_json(intr: Intrinsics) -> dict:
    return {
        "camera_angle_x": float(intr.camera_angle_x),
        **{k: float(v) for k, v in intr.to_dict().items() if k not in ("w", "h")},
        "w": int(intr.w),
        "h": int(intr.h),
    }


def _matrix_json(camera_to_world, index: int) -> list:
    m = np.asarray(camera_to_world, dtype=np.float64)
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise ValueError(f"frame {index}: camera_to_world must be 4×4 or 3×4, not {m.shape}")
    return m.tolist()


def _relative_file_path(file_path: str, index: int) -> str:
    posix = PurePosixPath(file_path.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(file_path).drive or ".." in posix.parts:
        raise ValueError(
            f"frame {index}: file_path {file_path!r} must be relative to the dataset folder "
            "without '..' (readers refuse anything else)"
        )
    return file_path


def write_transforms(path: str | os.PathLike, frames: Sequence[Frame], **kwargs) -> None:
    """Write a transforms file atomically (see :func:`transforms_dict` for the arguments)."""
    write_json_atomic(path, transforms_dict(frames, **kwargs))
