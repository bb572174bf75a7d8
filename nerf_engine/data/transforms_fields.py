"""Field-level parsing of transforms files: matrices, numbers, intrinsics, bounds, image paths.

Each function validates one piece and raises :class:`DatasetError` naming the file, the frame and
the key. numpy and the standard library only (imported inside Blender through ``dataset``).
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from .cameras import Intrinsics
from .images import MAX_PIXELS, ImageError, image_size
from .lens import FISHEYE, RADIAL_TANGENTIAL, LensDistortion

IMAGE_SUFFIXES = (".png", ".exr", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2", "is_fisheye")
# COLMAP's models as ns-process-data and colmap2nerf write them into camera_model (None: not given).
PINHOLE_MODELS = (None, "PINHOLE", "SIMPLE_PINHOLE")
RADIAL_TANGENTIAL_MODELS = ("OPENCV", "SIMPLE_RADIAL", "RADIAL")
FISHEYE_MODELS = ("OPENCV_FISHEYE",)
CAMERA_MODELS = PINHOLE_MODELS + RADIAL_TANGENTIAL_MODELS + FISHEYE_MODELS
# instant-ngp keys for lenses that no pinhole image can show (its nerf_loader's read_lens).
NON_PINHOLE_KEYS = ("ftheta_p0", "latlong", "equirectangular")
UNDISTORT_ADVICE = (
    "convert the images to perspective ones first: COLMAP's image_undistorter writes undistorted "
    "images and a PINHOLE model (ns-process-data does not undistort); for 360° images "
    "ns-process-data's --camera-type equirectangular makes perspective crops."
)


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


def parse_matrix(path: Path, value, index: int) -> np.ndarray:
    where = {"frame": index, "key": "transform_matrix"}
    bad = _first_non_number(value)
    if bad is not None:
        raise DatasetError(path, f"entries must be numbers, found {bad!r}.", **where)
    try:
        m = np.array(value, dtype=np.float64)
    except OverflowError as exc:  # an integer too large for a float
        raise DatasetError(path, "contains a number too large for a float.", **where) from exc
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


def parse_number(
    path: Path, value, *, frame: int | None, key: str, minimum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DatasetError(path, f"expected a number, found {value!r}.", frame=frame, key=key)
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float
        value = math.inf
    if not math.isfinite(value):
        raise DatasetError(path, "must be finite.", frame=frame, key=key)
    if minimum is not None and value < minimum:
        raise DatasetError(
            path, f"must be at least {minimum}, found {value}.", frame=frame, key=key
        )
    return value


def optional_number(
    path: Path, obj: dict, key: str, *, minimum: float | None = None
) -> float | None:
    return (
        None
        if obj.get(key) is None
        else parse_number(path, obj[key], frame=None, key=key, minimum=minimum)
    )


def _level_of(top: dict, raw: dict, index: int, key: str):
    """(object, frame index) of ``key``: the frame's own value wins over the file's."""
    return (raw, index) if key in raw else (top, None) if key in top else (None, None)


def parse_intrinsics(
    path: Path,
    top: dict,
    raw: dict,
    index: int,
    image_path: Path | None,
    default_size: tuple[int, int] | None = None,
) -> Intrinsics:
    """The pinhole camera of frame ``index``. Without ``w``/``h`` the size comes from the image
    file, else from ``default_size`` (Import Cameras: the scene's render size; a field of view
    places a camera at any pixel count), else DatasetError."""

    def level_of(key):
        return _level_of(top, raw, index, key)

    size = {}
    for key in ("w", "h"):
        obj, frame = level_of(key)
        if obj is not None:
            value = parse_number(path, obj[key], frame=frame, key=key, minimum=1)
            if value != int(value):
                raise DatasetError(
                    path, f"must be a whole number of pixels, found {value}.", frame=frame, key=key
                )
            size[key] = int(value)
    if len(size) == 2 and size["w"] * size["h"] > MAX_PIXELS:
        raise DatasetError(
            path,
            f"{size['w']}×{size['h']} pixels is over the limit of {MAX_PIXELS}; "
            "give a smaller image size.",
            frame=index if "w" in raw else None,
            key="w",
        )
    if len(size) < 2:
        if image_path is not None:
            try:
                iw, ih = image_size(image_path)
            except ImageError as exc:
                raise DatasetError(path, str(exc), frame=index, key="file_path") from exc
        elif default_size is not None:
            iw, ih = _default_size(path, top, raw, index, default_size)
        else:
            raise DatasetError(path, "image size unknown: give 'w' and 'h'.", frame=index, key="w")
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
        centre[key] = default if obj is None else parse_number(path, obj[key], frame=frame, key=key)
    return Intrinsics(fl_x=fl_x, fl_y=fl_y, cx=centre["cx"], cy=centre["cy"], w=w, h=h)


def _default_size(
    path: Path, top: dict, raw: dict, index: int, default_size: tuple[int, int]
) -> tuple[int, int]:
    """``default_size``; when the camera is given by ``camera_angle_x`` and ``camera_angle_y``
    alone, the height follows from the two angles (square pixels) so both fields of view hold."""
    w, h = int(default_size[0]), int(default_size[1])
    if any(key in obj for key in ("fl_x", "fl_y") for obj in (top, raw)):
        return w, h
    angles = []
    for key in ("camera_angle_x", "camera_angle_y"):
        obj, frame = _level_of(top, raw, index, key)
        if obj is None:
            return w, h
        angles.append(parse_number(path, obj[key], frame=frame, key=key))
    if all(0.0 < a < math.pi for a in angles):  # (other angles are refused by the caller)
        h = max(1, round(w * math.tan(0.5 * angles[1]) / math.tan(0.5 * angles[0])))
    return w, h


def parse_distortion(path: Path, top: dict, raw: dict, index: int) -> LensDistortion | None:
    """The frame's lens distortion (key by key, the frame's value over the file's, as instant-ngp
    reads them), or None for a pinhole camera. Refuses what no pinhole image can show."""
    for key in NON_PINHOLE_KEYS:
        obj, frame = _level_of(top, raw, index, key)
        if obj is not None:
            raise DatasetError(
                path,
                f"instant-ngp's '{key}' lens is not a pinhole camera; {UNDISTORT_ADVICE}",
                frame=frame,
                key=key,
            )
    values, frames = {}, {}
    for key in ("k1", "k2", "k3", "k4", "p1", "p2"):
        obj, frames[key] = _level_of(top, raw, index, key)
        if obj is not None:
            values[key] = parse_number(path, obj[key], frame=frames[key], key=key)
    model_obj, _ = _level_of(top, raw, index, "camera_model")
    model = model_obj["camera_model"] if model_obj is not None else None
    fisheye_obj, fisheye_frame = _level_of(top, raw, index, "is_fisheye")
    is_fisheye = fisheye_obj is not None and fisheye_obj["is_fisheye"]
    if is_fisheye not in (True, False):
        raise DatasetError(
            path, f"expected true or false, found {is_fisheye!r}.", frame=fisheye_frame,
            key="is_fisheye",
        )  # fmt: skip
    fisheye = model in FISHEYE_MODELS or is_fisheye
    if not any(values.values()):
        return None
    if model in PINHOLE_MODELS[1:]:
        key = next(k for k, v in values.items() if v)
        raise DatasetError(
            path,
            f"camera model {model} has no lens distortion, but '{key}' is {values[key]}; set "
            "camera_model to OPENCV (or OPENCV_FISHEYE) if the images are distorted, else set "
            f"'{key}' to 0.",
            frame=frames[key],
            key=key,
        )
    if fisheye and (values.get("p1") or values.get("p2")):
        key = "p1" if values.get("p1") else "p2"
        raise DatasetError(
            path,
            "a fisheye lens (OPENCV_FISHEYE / is_fisheye) has no tangential coefficients p1, p2; "
            f"check the camera model, or set '{key}' to 0.",
            frame=frames[key],
            key=key,
        )
    if not fisheye and values.get("k4"):
        raise DatasetError(
            path,
            "k4 is a fisheye coefficient, but the camera is not a fisheye; set camera_model to "
            "OPENCV_FISHEYE (or is_fisheye to true) if it is one, else set 'k4' to 0.",
            frame=frames["k4"],
            key="k4",
        )
    return LensDistortion(FISHEYE if fisheye else RADIAL_TANGENTIAL, **values)


def _focal(path: Path, levels, fl_key: str, angle_key: str, size: int) -> float | None:
    """The focal length in pixels from the first (object, frame index) level that gives one."""
    for obj, frame in levels:
        if fl_key in obj:
            fl = parse_number(path, obj[fl_key], frame=frame, key=fl_key)
            if fl <= 0:
                raise DatasetError(
                    path, f"focal length must be positive, found {fl}.", frame=frame, key=fl_key
                )
            return fl
        if angle_key in obj:
            angle = parse_number(path, obj[angle_key], frame=frame, key=angle_key)
            if not 0.0 < angle < math.pi:
                raise DatasetError(
                    path,
                    f"field of view must be in (0, π) radians, found {angle}.",
                    frame=frame,
                    key=angle_key,
                )
            return 0.5 * size / math.tan(0.5 * angle)
    return None


def check_camera_model(path: Path, obj: dict, index: int | None) -> None:
    model = obj.get("camera_model")
    if model not in CAMERA_MODELS:
        raise DatasetError(
            path,
            f"camera model {model!r} is not supported (supported: "
            f"{', '.join(m for m in CAMERA_MODELS if m)}); {UNDISTORT_ADVICE}",
            frame=index,
            key="camera_model",
        )


def parse_aabb(path: Path, value) -> np.ndarray | None:
    if value is None:
        return None
    try:
        if _first_non_number(value) is not None:
            raise TypeError("not all numbers")
        box = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DatasetError(
            path, "expected [[min x, y, z], [max x, y, z]] of numbers.", key="aabb"
        ) from exc
    if box.shape != (2, 3) or not np.isfinite(box).all() or not (box[0] < box[1]).all():
        raise DatasetError(
            path, "expected finite [[min x, y, z], [max x, y, z]] with min < max.", key="aabb"
        )
    return box


def resolve_image_path(
    root: Path,
    file_path,
    source: Path,
    index: int,
    *,
    missing_ok: bool = False,
    key: str = "file_path",
) -> Path | None:
    """The image file for a frame's ``file_path`` (or another image key: ``mask_path``), which
    must stay inside ``root``.

    ``file_path`` may omit the extension (NeRF-synthetic). With ``missing_ok`` a safe path to a
    file that does not exist gives None instead of an error.
    """
    where = {"frame": index, "key": key}
    if file_path is not None and not isinstance(file_path, str):
        raise DatasetError(
            source,
            f"expected a string, found {type(file_path).__name__} {repr(file_path)[:60]}; give "
            "the image path relative to the dataset folder.",
            **where,
        )
    if file_path is None or not file_path.strip():
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
