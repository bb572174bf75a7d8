"""One view of a transforms file: :class:`Frame`, and the reader of a file's frames.

Besides pose and pinhole intrinsics (``transforms_fields``), a frame of a real-world file may carry
lens distortion (``lens``), masks of pixels to ignore (``masks``), and an image that is a
whole-number downscale of the size the file gives (nerfstudio's ``images_2/``, nerf-pytorch's
``half_res``): its camera is then scaled with the image. :class:`FrameReader` also words the notes
that say what it converted or left out (``Split.notes``, shown to the user as warnings).

numpy and the standard library only (image headers are read through ``images``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .cameras import Intrinsics
from .images import ImageError, image_size
from .lens import FISHEYE, LensDistortion
from .masks import IGNORE_NONZERO, IGNORE_ZERO, PixelMask, dynamic_mask_path
from .transforms_fields import (
    DISTORTION_KEYS,
    INTRINSIC_KEYS,
    DatasetError,
    check_camera_model,
    parse_distortion,
    parse_intrinsics,
    parse_matrix,
    resolve_image_path,
)

_OWN_KEYS = ("file_path", "transform_matrix", "camera_model", "mask_path")
FRAME_KEYS = frozenset((*_OWN_KEYS, *INTRINSIC_KEYS, *DISTORTION_KEYS))
# blender-nerf exports before 'object_mask_path' wrote their object masks (255 = subject) under
# 'mask_path', named '<image>_mask.png'; nerfstudio reads mask_path as pixels to ignore (0).
OUR_GENERATOR = "blender-nerf"
LEGACY_OBJECT_MASK_SUFFIX = "_mask"
MAX_DOWNSCALE = 64  # images_2 ... images_8 in practice; a larger "factor" is another camera


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera view: pose, intrinsics and (for training data) its image."""

    camera_to_world: np.ndarray  # [4, 4] float64, OpenGL convention
    intrinsics: Intrinsics  # the pinhole camera of the image as loaded (undistorted, downscaled)
    file_path: str | None = None  # as written in the JSON, relative to the dataset folder
    image_path: Path | None = None  # resolved file inside the dataset folder
    # Other per-frame keys, kept as read and written back (depth_file_path, object_mask_path, ...).
    extra: dict = field(default_factory=dict)
    distortion: LensDistortion | None = None  # of the photo; removed when the image is loaded
    mask_path: str | None = None  # nerfstudio's mask (0 = ignore), as written in the JSON
    masks: tuple[PixelMask, ...] = ()  # resolved masks of pixels to ignore (mask_path, dynamic)


def normalise_rel(file_path: str) -> str:
    """A relative path as written in a JSON, without './', backslashes and image extension."""
    posix = file_path.replace("\\", "/")
    while posix.startswith("./"):
        posix = posix[2:]
    return str(PurePosixPath(posix).with_suffix("")) if PurePosixPath(posix).suffix else posix


class FrameReader:
    """Parses the frames of one file with the same settings (see ``dataset.read_transforms``) and
    remembers what it converted, for :meth:`notes`."""

    def __init__(
        self,
        path: Path,
        top: dict,
        *,
        require_images: bool,
        image_sizes: bool,
        default_size: tuple[int, int] | None,
    ):
        self.path, self.top = path, top
        self.require_images, self.image_sizes = require_images, image_sizes
        self.default_size = default_size
        self.downscaled: list[tuple[int, str]] = []  # (factor, file_path) of scaled frames
        self.defaulted: list[tuple[int, int]] = []  # sizes given to frames without one
        self.legacy_masks = 0  # blender-nerf object masks under mask_path, not applied
        self.centre_outside: list[str] = []  # file_path of frames whose cx, cy is off the image

    def frame(self, raw, index: int) -> Frame:
        path, top = self.path, self.top
        if not isinstance(raw, dict):
            raise DatasetError(
                path, f"expected an object, found {type(raw).__name__}.", frame=index
            )
        if "transform_matrix" not in raw:
            raise DatasetError(
                path,
                "missing; every frame needs its 4×4 camera-to-world matrix.",
                frame=index,
                key="transform_matrix",
            )
        c2w = parse_matrix(path, raw["transform_matrix"], index)
        check_camera_model(path, raw, index)
        file_path, image_path = raw.get("file_path"), None
        if self.require_images or file_path is not None:  # camera files: images not made yet
            image_path = resolve_image_path(
                path.parent, file_path, path, index, missing_ok=not self.require_images
            )
        sized = any(k in obj for k in ("w", "h") for obj in (raw, top))
        intrinsics = parse_intrinsics(path, top, raw, index, image_path, self.default_size)
        if not sized and image_path is None and self.default_size is not None:
            self.defaulted.append((intrinsics.w, intrinsics.h))
        if sized and image_path is not None and self.image_sizes:
            intrinsics = self._fit_to_image(intrinsics, image_path, str(file_path), index)
        if not (0.0 <= intrinsics.cx <= intrinsics.w and 0.0 <= intrinsics.cy <= intrinsics.h):
            self.centre_outside.append(str(file_path))
        distortion = parse_distortion(path, top, raw, index)
        mask_path, masks = self._masks(raw, index, file_path, image_path)
        extra = {k: v for k, v in raw.items() if k not in FRAME_KEYS}
        return Frame(c2w, intrinsics, file_path, image_path, extra, distortion, mask_path, masks)

    def _fit_to_image(
        self, intr: Intrinsics, image_path: Path, file_path: str, index: int
    ) -> Intrinsics:
        """The camera of the image as it is: the declared one, or that one scaled when the image
        is a whole-number downscale of it (nerfstudio's images_N/, nerf-pytorch's half_res)."""
        try:
            iw, ih = image_size(image_path)
        except ImageError as exc:
            raise DatasetError(self.path, str(exc), frame=index, key="file_path") from exc
        if (iw, ih) == (intr.w, intr.h):
            return intr
        factor = round(intr.w / iw)
        if 2 <= factor <= MAX_DOWNSCALE and _is_downscale(intr.w, intr.h, iw, ih, factor):
            self.downscaled.append((factor, file_path))
            return intr.scaled(iw, ih)
        raise DatasetError(
            self.path,
            f"image {image_path.name} is {iw}×{ih} but the camera says {intr.w}×{intr.h}, which "
            "is not a whole-number multiple of it; if the images were resized, scale fl_x, fl_y, "
            "cx and cy by the same factor as w and h (or re-export the images).",
            frame=index,
            key="w",
        )

    def _masks(self, raw: dict, index: int, file_path, image_path: Path | None):
        """(mask_path as written, the frame's masks of pixels to ignore)."""
        masks = []
        mask_path = raw.get("mask_path")
        if mask_path is not None and self._legacy_object_mask(mask_path, file_path):
            self.legacy_masks += 1
        elif mask_path is not None and (image_path is not None or self.require_images):
            found = resolve_image_path(
                self.path.parent, mask_path, self.path, index, key="mask_path"
            )
            masks.append(PixelMask(found, IGNORE_ZERO, "mask_path"))
        if image_path is not None:
            dynamic = dynamic_mask_path(image_path)
            if dynamic.is_file() and dynamic.resolve().is_relative_to(self.path.parent.resolve()):
                masks.append(PixelMask(dynamic.resolve(), IGNORE_NONZERO, "dynamic_mask"))
        return mask_path, tuple(masks)

    def _legacy_object_mask(self, mask_path, file_path) -> bool:
        """An older blender-nerf export's object mask ('<image>_mask.png' under mask_path)."""
        if self.top.get("generator") != OUR_GENERATOR:
            return False
        if not (isinstance(mask_path, str) and isinstance(file_path, str)):
            return False
        return normalise_rel(mask_path) == normalise_rel(file_path) + LEGACY_OBJECT_MASK_SUFFIX

    def notes(self, frames: Sequence[Frame]) -> tuple[str, ...]:
        """What the user should know about how these frames were read (one line each)."""
        name, notes = self.path.name, []
        if self.downscaled:
            factors = " or ".join(f"1/{f}" for f in sorted({f for f, _ in self.downscaled}))
            notes.append(
                f"{name}: {len(self.downscaled)} image(s) are {factors} of the size the file "
                f"gives (e.g. '{self.downscaled[0][1]}'); fl_x, fl_y, cx and cy were scaled with "
                "them, as nerfstudio does for images_N/ folders and nerf-pytorch for half_res."
            )
        if self.defaulted:
            w, h = self.defaulted[0]
            notes.append(
                f"{name}: {len(self.defaulted)} frame(s) give no image size ('w', 'h') and have "
                f"no image; they were given {w}×{h} pixels (their field of view is kept)."
            )
        if self.centre_outside:
            k = next(f.intrinsics for f in frames if str(f.file_path) == self.centre_outside[0])
            notes.append(
                f"{name}: the principal point (cx {k.cx:g}, cy {k.cy:g}) of "
                f"{len(self.centre_outside)} frame(s) lies outside their {k.w}×{k.h} image (e.g. "
                f"'{self.centre_outside[0]}'); if the images were resized, scale fl_x, fl_y, cx "
                "and cy by the same factor as w and h."
            )
        notes += mask_notes(name, frames, self.legacy_masks)
        distorted = [f for f in frames if f.distortion is not None]
        if distorted and self.image_sizes:
            notes.append(
                f"{name}: {len(distorted)} frame(s) have lens distortion "
                f"({describe(distorted[0].distortion)}); their images are undistorted with "
                "OpenCV when loaded, onto the pinhole camera fl_x, fl_y, cx, cy of the file."
            )
        return tuple(notes)


def _is_downscale(w: int, h: int, iw: int, ih: int, factor: int) -> bool:
    """``iw``×``ih`` is ``w``×``h`` divided by ``factor``, rounded either way (ffmpeg, Pillow and
    nerfstudio's own downscaling round differently)."""
    return abs(iw - w / factor) < 1.0 and abs(ih - h / factor) < 1.0


def describe(distortion: LensDistortion) -> str:
    """'OpenCV radial-tangential: k1 0.0578, k2 -0.0805, p1 ..., p2 ...' (or fisheye k1..k4)."""
    fisheye = distortion.model == FISHEYE
    keys = ("k1", "k2", "k3", "k4") if fisheye else ("k1", "k2", "p1", "p2")
    values = ", ".join(f"{k} {getattr(distortion, k):.4g}" for k in keys)
    return f"{'OpenCV fisheye' if fisheye else 'OpenCV radial-tangential'}: {values}"


def mask_notes(name: str, frames: Sequence[Frame], legacy: int) -> list[str]:
    notes = []
    for key, what in (
        ("mask_path", "nerfstudio's mask_path, 0 = ignore"),
        ("dynamic_mask", "instant-ngp's dynamic_mask_*.png, non-zero = ignore"),
    ):
        count = sum(any(m.key == key for m in f.masks) for f in frames)
        if count:
            notes.append(
                f"{name}: {count} frame(s) have masks ({what}); the pixels they mark are left "
                "out of training and evaluation."
            )
    if legacy:
        notes.append(
            f"{name}: {legacy} frame(s) of this older blender-nerf export name object masks "
            "under 'mask_path'; they are not masks of pixels to ignore and are not applied "
            "(exports now write them as 'object_mask_path', leaving 'mask_path' to nerfstudio)."
        )
    return notes
