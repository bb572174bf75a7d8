"""NeRF datasets on disk: ``transforms_*.json`` (NeRF-synthetic, instant-ngp, nerfstudio).

Reads
- NeRF-synthetic: ``transforms_{train,val,test}.json`` with only ``camera_angle_x`` (image size from
  the files) and ``file_path`` without extension (``./train/r_0`` -> ``train/r_0.png``);
- instant-ngp / nerfstudio ``transforms.json``: ``fl_x, fl_y, cx, cy, w, h`` at the top level or per
  frame, ``camera_angle_x/y``, ``aabb``, ``near``, ``far``. A single ``transforms.json`` is split by
  nerfstudio's ``{split}_filenames`` lists when present, else every 8th frame is held out for
  val/test (the LLFF convention).
- what COLMAP-made files add: lens distortion (``k1, k2, k3, k4, p1, p2``, ``camera_model``,
  ``is_fisheye``; the images are undistorted on load, see ``lens``), masks of pixels to ignore
  (nerfstudio's ``mask_path``, instant-ngp's ``dynamic_mask_*.png``; see ``masks``), and images
  that are a whole-number downscale of the size the file gives (``images_2/``: ``fl_x, fl_y, cx,
  cy`` are scaled with them). What the reader did about such files is said in ``Split.notes``.
  docs/formats.md lists every key.

Every problem raises :class:`DatasetError` naming the file, the frame index and the key, with what
to do about it. Image paths never leave the dataset folder (no absolute paths, ``..``, or
symlinks out).

numpy and the standard library only: the add-on imports this module inside Blender.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from .cameras import Intrinsics
from .depth import DEPTH_TOP_KEYS
from .fileio import write_json_atomic
from .frames import FRAME_KEYS, Frame, FrameReader, normalise_rel
from .images import ImageError, read_rgba
from .lens import FISHEYE, LensDistortion, undistort
from .masks import keep_pixels
from .transforms_fields import (
    DatasetError,
    check_camera_model,
    optional_number,
    parse_aabb,
)

SPLITS = ("train", "val", "test")
MAX_JSON_BYTES = 256 * 1024 * 1024
# More views than any GPU could hold (100k 800×800 images are 500 GB as float16); reading them
# would take minutes. A file with more frames is refused before any frame is looked at.
MAX_FRAMES = 100_000
HOLDOUT_EVERY = 8


@dataclass(frozen=True, eq=False)
class Split:
    """The frames of one split and the scene metadata that came with them."""

    name: str
    source: Path  # the transforms file
    frames: tuple[Frame, ...]
    aabb: np.ndarray | None = None  # [2, 3]: min and max corner
    near: float | None = None
    far: float | None = None
    notes: tuple[str, ...] = ()  # what the reader converted or left out, for the user (warnings)
    # top-level keys a frame may override that are read per frame later (depth.DEPTH_TOP_KEYS)
    defaults: dict = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.source.parent

    def first(self, n: int) -> Split:
        """The same split limited to its first ``n`` frames (all of them for n <= 0)."""
        return replace(self, frames=self.frames[:n]) if n > 0 else self

    def poses(self) -> np.ndarray:
        """[N, 4, 4] camera-to-world matrices."""
        return np.stack([f.camera_to_world for f in self.frames])


# --- reading ---------------------------------------------------------------------------------


def read_split(dataset_dir: str | os.PathLike, split: str, *, require_images: bool = True) -> Split:
    """The frames of ``split`` in ``dataset_dir``: ``transforms_<split>.json``, else
    ``transforms.json`` (see :func:`read_transforms` for ``require_images``)."""
    root = Path(dataset_dir)
    if split not in SPLITS:
        raise DatasetError(root, f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    if not root.is_dir():
        raise DatasetError(root, "dataset folder not found; export a dataset or check the path.")
    per_split = root / f"transforms_{split}.json"
    if per_split.is_file():
        return read_transforms(_inside(root, per_split), name=split, require_images=require_images)
    single = root / "transforms.json"
    if single.is_file():
        return read_transforms(
            _inside(root, single), name=split, subset=split, require_images=require_images
        )
    raise DatasetError(
        root,
        f"no transforms_{split}.json or transforms.json here; is this a NeRF dataset folder?",
    )


def _inside(root: Path, path: Path) -> Path:
    """``path`` itself, if it is not a symlink that leads out of the dataset folder."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise DatasetError(
            path,
            f"is a symlink to {path.resolve()}, outside the dataset folder; copy the file into "
            "the folder instead.",
        )
    return path


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
    image_sizes: bool = True,
    default_size: tuple[int, int] | None = None,
) -> Split:
    """Parse and validate one transforms file.

    ``subset`` picks a split out of a single ``transforms.json``. With ``require_images=False``
    (camera files for rendering, held-out views) frames need no ``file_path``, and one whose image
    does not exist gets ``image_path`` None. ``image_sizes`` checks a declared ``w``/``h`` against
    each existing image's header (a whole-number downscale scales the camera; anything else is
    refused); turn it off where no image reader is (inside Blender). ``default_size`` (w, h)
    stands in for frames with neither ``w``/``h`` nor an image (else they are refused).
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
    if len(raw_frames) > MAX_FRAMES:
        raise DatasetError(
            path,
            f"lists {len(raw_frames)} frames, over the limit of {MAX_FRAMES}; use fewer views "
            "(e.g. every n-th frame of a video).",
            key="frames",
        )
    check_camera_model(path, top, None)
    indices = _subset_indices(path, top, raw_frames, subset) if subset else range(len(raw_frames))
    if not indices:
        label = f"split '{subset or name}'" if (subset or name) else "the file"
        raise DatasetError(
            path, f"{label} has no frames; add views or change the split fractions.", key="frames"
        )
    reader = FrameReader(
        path,
        top,
        require_images=require_images,
        image_sizes=image_sizes,
        default_size=default_size,
    )
    frames = tuple(reader.frame(raw_frames[i], i) for i in indices)
    near = optional_number(path, top, "near", minimum=0.0)
    far = optional_number(path, top, "far", minimum=0.0)
    if near is not None and far is not None and not near < far:
        raise DatasetError(path, f"near ({near}) must be smaller than far ({far}).", key="far")
    return Split(
        name=name or subset or path.stem.removeprefix("transforms_"),
        source=path,
        frames=frames,
        aabb=parse_aabb(path, top.get("aabb")),
        near=near,
        far=far,
        notes=reader.notes(frames),
        defaults={k: top[k] for k in DEPTH_TOP_KEYS if k in top},
    )


def load_rgba(split: Split) -> list[np.ndarray]:
    """Every frame's image as float32 [H, W, 4] (sRGB colour, straight alpha), checked against its
    intrinsics' size and undistorted (see :func:`iter_views`)."""
    return list(iter_rgba(split))


def iter_rgba(split: Split) -> Iterator[np.ndarray]:
    """:func:`load_rgba` one image at a time (a large dataset never sits in memory as float32).
    Masked pixels are in the images as they are: training and evaluation use :func:`iter_views`."""
    for rgba, _ in iter_views(split):
        yield rgba


def iter_views(split: Split) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Each frame's image and the pixels that may be training or evaluation targets, one frame at
    a time: (rgba float32 [H, W, 4], valid bool [H, W], or None when every pixel is valid).

    The image is what the frame's pinhole camera sees: undistorted when the photo has lens
    distortion. A pixel is not valid when a mask says to ignore it or, after undistortion, when it
    sees past the edge of the photo (or next to an ignored pixel)."""
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
                "fix w and h in the JSON, scaling fl_x, fl_y, cx and cy by the same factor (or "
                "re-export the image).",
                frame=index,
                key="w",
            )
        try:
            valid = keep_pixels(frame.masks, w, h)
        except (ImageError, ValueError) as exc:
            key = frame.masks[0].key if frame.masks else "mask_path"
            raise DatasetError(split.source, str(exc), frame=index, key=key) from exc
        if frame.distortion is not None:
            rgba, inside = undistort(rgba, intr, frame.distortion)
            if valid is not None:
                kept, _ = undistort(valid[..., None].astype(np.float32), intr, frame.distortion)
                inside &= kept[..., 0] > 0.999
            valid = inside
        yield rgba, valid


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(path, "file not found.")
    try:
        size = path.stat().st_size
        data = b"" if size == 0 or size > MAX_JSON_BYTES else path.read_bytes()
    except OSError as exc:  # no read permission, I/O error
        raise DatasetError(
            path, f"cannot be read ({exc.strerror or exc}); check the file's permissions."
        ) from exc
    if size == 0:
        raise DatasetError(path, "file is empty; re-export the dataset.")
    if size > MAX_JSON_BYTES:
        raise DatasetError(
            path,
            f"file is {size} bytes, over the {MAX_JSON_BYTES}-byte limit for a transforms file; "
            "check that this is the right file, or use fewer views.",
        )
    try:
        top = json.loads(data.decode("utf-8-sig"))  # tolerate a BOM
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc}); save it as UTF-8.") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(
            path,
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; fix or "
            "re-export the file.",
        ) from exc
    except RecursionError as exc:
        raise DatasetError(path, "JSON nested too deeply; is this a transforms file?") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DatasetError(path, f"malformed JSON ({exc}); fix or re-export the file.") from exc
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
        i: normalise_rel(str(fr.get("file_path", "")))
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
    return {normalise_rel(n) for n in names}


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
        clash = FRAME_KEYS.intersection(frame.extra)
        if clash:
            raise ValueError(f"frame {index}: extra keys {sorted(clash)} are not extra")
        entry.update(frame.extra)
        if frame.mask_path is not None:
            entry["mask_path"] = _relative_file_path(frame.mask_path, index)
        if not shared:
            entry.update(_intrinsics_json(frame.intrinsics))
        if frame.distortion is not None:
            entry.update(_distortion_json(frame.distortion))
        out["frames"].append(entry)
    return out


def _intrinsics_json(intr: Intrinsics) -> dict:
    return {
        "camera_angle_x": float(intr.camera_angle_x),
        **{k: float(v) for k, v in intr.to_dict().items() if k not in ("w", "h")},
        "w": int(intr.w),
        "h": int(intr.h),
    }


def _distortion_json(distortion: LensDistortion) -> dict:
    fisheye = distortion.model == FISHEYE
    keys = ("k1", "k2", "k3", "k4") if fisheye else ("k1", "k2", "k3", "p1", "p2")
    out: dict = {k: float(getattr(distortion, k)) for k in keys}
    if fisheye:
        out["is_fisheye"] = True  # instant-ngp's key; it may stand on a frame, camera_model not
    return out


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
