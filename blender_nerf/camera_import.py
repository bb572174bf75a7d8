"""Import Cameras: Blender cameras with exact intrinsics from a transforms file (ours,
NeRF-synthetic, instant-ngp or nerfstudio), so a NeRF trained on a dataset made elsewhere can be
rendered (and compared) from Blender cameras.

:func:`camera_lens` inverts :func:`~.geometry.blender_intrinsics`: a horizontal sensor fit, the
focal length and lens shift from ``fl_x``, ``cx``, ``cy``; ``fl_y`` ≠ ``fl_x`` becomes the scene's
pixel aspect (one for every camera: a file whose frames disagree is refused). A frame whose size
differs from the scene's render size gets its own resolution (Camera > NeRF). The cameras go into
a collection named after the file; importing the same file again replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from . import scene_io
from .nerf_engine.cameras import Intrinsics
from .nerf_engine.dataset import SPLITS, Frame, read_transforms
from .scene_io import SceneError
from .view_plan import safe_name

SENSOR_WIDTH = 36.0  # mm; any value gives the same picture, this one is Blender's default
TAG = "nerf_cameras"  # custom property on the collection: the file it came from
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class CameraFrame:
    name: str
    frame: Frame


def read_camera_frames(path: Path) -> list[CameraFrame]:
    """The frames of a transforms file, or of every split of a dataset folder, with camera names
    (images need not exist). Raises SceneError naming the file and the problem."""
    try:
        if path.is_dir():
            files = [(f"{s}_", path / f"transforms_{s}.json") for s in SPLITS]
            files = [(prefix, f) for prefix, f in files if f.is_file()]
            if not files and (path / "transforms.json").is_file():
                files = [("", path / "transforms.json")]
            if not files:
                raise SceneError(f"'{path}' holds no transforms file to import cameras from.")
        else:
            files = [("", path)]
        named = [
            (prefix, frame)
            for prefix, file in files
            for frame in read_transforms(file, require_images=False).frames
        ]
    except ValueError as exc:  # DatasetError: names the file, frame and key
        if isinstance(exc, SceneError):
            raise
        raise SceneError(f"Cannot import cameras: {exc}") from exc
    frames = []
    for index, (prefix, frame) in enumerate(named):
        stem = _stem(frame.file_path) if frame.file_path else f"view_{index:04d}"
        frames.append(CameraFrame(f"{prefix}{safe_name(stem)}", frame))
    return frames


def _stem(file_path: str) -> str:
    name = Path(file_path.replace("\\", "/")).name
    return name.rsplit(".", 1)[0] if name.lower().endswith(IMAGE_SUFFIXES) else name


def pixel_aspect(frames: list[CameraFrame]) -> float:
    """fl_x / fl_y shared by every frame: the pixel aspect y/x they need; SceneError if not."""
    ratios = [f.frame.intrinsics.fl_x / f.frame.intrinsics.fl_y for f in frames]
    if max(ratios) - min(ratios) > 1e-6 * max(ratios):
        raise SceneError(
            "The cameras' fl_x/fl_y ratios differ; Blender has one pixel aspect per scene. "
            "Import the cameras of one device at a time."
        )
    return ratios[0]


def camera_lens(intrinsics: Intrinsics, ratio: float) -> dict:
    """Camera data settings (lens, sensor, shift) whose Blender intrinsics at ``intrinsics.w``×
    ``intrinsics.h`` with pixel aspect y/x = ``ratio`` are ``intrinsics``."""
    k = intrinsics
    return {
        "sensor_fit": "HORIZONTAL",
        "sensor_width": SENSOR_WIDTH,
        "sensor_height": SENSOR_WIDTH,
        "lens": k.fl_x * SENSOR_WIDTH / k.w,
        "shift_x": (0.5 * k.w - k.cx) / k.w,
        "shift_y": (k.cy - 0.5 * k.h) * ratio / k.w,
    }


def import_cameras(context: bpy.types.Context, path: Path) -> tuple[bpy.types.Collection, str]:
    """Create the cameras of ``path``; returns their collection and a note on scene changes."""
    scene = context.scene
    frames = read_camera_frames(path)
    ratio = pixel_aspect(frames)
    near, far = _clip(path)
    note = _set_pixel_aspect(scene, ratio)
    collection = _collection(scene, path)
    scene_size = scene_io.render_size(scene)
    for item in frames:
        k = item.frame.intrinsics
        camera = scene_io.new_camera(
            item.name, collection, **camera_lens(k, ratio), clip_start=near, clip_end=far
        )
        scene_io.set_camera_pose(camera, item.frame.camera_to_world)
        if (k.w, k.h) != scene_size:
            own = camera.data.nerf
            own.use_resolution = True
            own.resolution_x, own.resolution_y = k.w, k.h
    if scene.camera is None:
        scene.camera = collection.objects[0]
    return collection, note


def _clip(path: Path) -> tuple[float, float]:
    """Clip range around the file's near/far (Blender's defaults where it has none)."""
    try:
        split = read_transforms(path, require_images=False) if path.is_file() else None
    except ValueError:
        split = None
    near = split.near if split is not None and split.near else None
    far = split.far if split is not None and split.far else None
    return (0.5 * near if near else 0.1), (2.0 * far if far else 1000.0)


def _set_pixel_aspect(scene: bpy.types.Scene, ratio: float) -> str:
    render = scene.render
    current = render.pixel_aspect_y / render.pixel_aspect_x
    if abs(current - ratio) <= 1e-6 * ratio:
        return ""
    render.pixel_aspect_x, render.pixel_aspect_y = (1.0, ratio) if ratio >= 1 else (1 / ratio, 1.0)
    return (
        f" Set the scene's pixel aspect to {render.pixel_aspect_x:g}:{render.pixel_aspect_y:g} "
        "(the cameras have non-square pixels)."
    )


def _collection(scene: bpy.types.Scene, path: Path) -> bpy.types.Collection:
    """A fresh collection for the file's cameras; an earlier import of it is removed first."""
    key = str(path.resolve())
    for old in [c for c in bpy.data.collections if c.get(TAG) == key]:
        for ob in list(old.objects):
            data = ob.data
            bpy.data.objects.remove(ob)
            if data is not None and data.users == 0:
                bpy.data.cameras.remove(data)
        bpy.data.collections.remove(old)
    collection = bpy.data.collections.new(f"NeRF Cameras {path.stem}")
    collection[TAG] = key
    scene.collection.children.link(collection)
    return collection
