"""Import Cameras: Blender cameras with exact intrinsics from a transforms file (ours,
NeRF-synthetic, instant-ngp or nerfstudio) or a COLMAP text model (a ``sparse/0`` folder, a
dataset folder holding one, or its ``cameras.txt``/``images.txt``), so a NeRF trained on a dataset
made elsewhere can be rendered (and compared) from Blender cameras.

:func:`camera_lens` inverts :func:`~..scene.geometry.blender_intrinsics`: a horizontal sensor
fit, the focal length and lens shift from ``fl_x``, ``cx``, ``cy``; ``fl_y`` ≠ ``fl_x`` becomes
the scene's pixel aspect (one for every camera: a file whose frames disagree is refused). A frame
whose size differs from the scene's render size gets its own resolution (Camera > NeRF). The
cameras go into a collection named after the file; importing the same file again replaces them.

Real-world files: a frame without ``w``/``h`` and without an image (BlenderNeRF's NeRF-format test
cameras: only ``camera_angle_x``) gets the scene's render size — a field of view places a camera
at any pixel count; lens distortion (COLMAP-made files) is left out: a Blender camera is the
file's pinhole part, which is also the camera the engine trains on (it undistorts the images).
Both come back as warnings.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from ..nerf_engine.data.cameras import Intrinsics
from ..nerf_engine.data.colmap import find_model, read_colmap_text
from ..nerf_engine.data.dataset import SPLITS, read_transforms
from ..nerf_engine.data.frames import describe
from ..scene import scene_io
from ..scene.ours import mark_ours
from ..scene.scene_io import SceneError
from ..scene.shots import Shot, safe_name

SENSOR_WIDTH = 36.0  # mm; any value gives the same picture, this one is Blender's default
MAX_CAMERAS = 10_000  # more make Blender slow to use (and to import again)
TAG = "nerf_cameras"  # custom property on the collection: the file it came from
MAKER = "Import Cameras"  # the add-on's mark on what it made (scene/ours.py)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".webp", ".tif", ".tiff")


def read_camera_frames(
    path: Path, default_size: tuple[int, int] | None = None
) -> tuple[list[Shot], list[str]]:
    """The frames of a transforms file, or of every split of a dataset folder, as shots named
    after the cameras to make (images need not exist; frames without any size get
    ``default_size``), and warnings for the user. Raises SceneError naming the file and the
    problem."""
    model = find_model(path)
    if model is not None and not _transforms_files(path):
        return _colmap_frames(model)
    try:
        if path.is_dir():
            files = [(f"{s}_", path / f"transforms_{s}.json") for s in SPLITS]
            files = [(prefix, f) for prefix, f in files if f.is_file()]
            if not files and (path / "transforms.json").is_file():
                files = [("", path / "transforms.json")]
            if not files:
                raise SceneError(
                    f"'{path}' holds no transforms file and no COLMAP model (sparse/0/cameras.txt"
                    " and images.txt) to import cameras from."
                )
        else:
            files = [("", path)]
        splits = [
            (prefix, read_transforms(
                file, require_images=False, image_sizes=False, default_size=default_size
            ))
            for prefix, file in files
        ]  # fmt: skip
    except ValueError as exc:  # DatasetError: names the file, frame and key
        if isinstance(exc, SceneError):
            raise
        raise SceneError(f"Cannot import cameras: {exc}") from exc
    named = [(prefix, frame) for prefix, split in splits for frame in split.frames]
    frames = []
    for index, (prefix, frame) in enumerate(named):
        stem = _stem(frame.file_path) if frame.file_path else f"view_{index:04d}"
        name = f"{prefix}{safe_name(stem)}"
        frames.append(Shot(name, frame.camera_to_world, frame.intrinsics))
    # (notes on masks concern training, not cameras)
    warnings = [note for _, split in splits for note in split.notes if "mask" not in note]
    distorted = [frame for _, frame in named if frame.distortion is not None]
    if distorted:
        warnings.append(
            f"{len(distorted)} camera(s) have lens distortion ({describe(distorted[0].distortion)})"
            "; Blender cameras are pinhole, so only the pinhole part (fl_x, fl_y, cx, cy) was "
            "imported — the camera the engine trains on after undistorting the images."
        )
    return frames, warnings


def _transforms_files(path: Path) -> bool:
    """Whether ``path`` is, or is a folder with, a transforms file (they win over COLMAP)."""
    if path.is_file():
        return path.suffix.lower() == ".json"
    names = [f"transforms_{s}.json" for s in SPLITS] + ["transforms.json"]
    return any((path / name).is_file() for name in names)


def _colmap_frames(model: Path) -> tuple[list[Shot], list[str]]:
    """The images of a COLMAP text model as shots named after their files ('train/r_0.png' ->
    'train_r_0'), and a warning for distorting cameras."""
    try:
        views = read_colmap_text(model)
    except ValueError as exc:  # DatasetError: names the file and line
        raise SceneError(f"Cannot import cameras: {exc}") from exc
    frames = [
        Shot(safe_name(_stem(v.name.replace("/", "_"))), v.camera_to_world, v.intrinsics)
        for v in views
    ]
    distorted = [v for v in views if v.distortion is not None]
    warnings = []
    if distorted:
        warnings.append(
            f"{len(distorted)} camera(s) have lens distortion ({describe(distorted[0].distortion)})"
            "; Blender cameras are pinhole, so only the pinhole part (fx, fy, cx, cy) was imported."
        )
    return frames, warnings


def _stem(file_path: str) -> str:
    name = Path(file_path.replace("\\", "/")).name
    return name.rsplit(".", 1)[0] if name.lower().endswith(IMAGE_SUFFIXES) else name


def pixel_aspect(frames: list[Shot]) -> float:
    """fl_x / fl_y shared by every frame: the pixel aspect y/x they need; SceneError if not."""
    ratios = [f.intrinsics.fl_x / f.intrinsics.fl_y for f in frames]
    if max(ratios) - min(ratios) > 1e-6 * max(ratios):
        raise SceneError(
            "The cameras' fl_x/fl_y ratios differ; Blender has one pixel aspect per scene. "
            "Import the cameras of one device at a time."
        )
    limit = bpy.types.RenderSettings.bl_rna.properties["pixel_aspect_x"].hard_max
    if not 1.0 / limit <= ratios[0] <= limit:
        raise SceneError(
            f"The cameras' fl_x/fl_y ratio is {ratios[0]:.4g}; Blender's pixel aspect allows "
            f"1/{limit:g} to {limit:g}. Check fl_x and fl_y in the file."
        )
    return ratios[0]


def check_fits_blender(frames: list[Shot], ratio: float, source: Path) -> None:
    """Refuse, before anything is created, a file whose cameras Blender cannot reproduce (it
    would clamp the values and show another picture): too many cameras, a field of view too wide
    for a Blender lens, an image larger than Blender renders."""
    if len(frames) > MAX_CAMERAS:
        raise SceneError(
            f"'{source}' holds {len(frames)} cameras; Import Cameras creates at most "
            f"{MAX_CAMERAS}. Import one split's transforms file, or thin out the frames."
        )
    min_lens = bpy.types.Camera.bl_rna.properties["lens"].hard_min
    max_size = bpy.types.RenderSettings.bl_rna.properties["resolution_x"].hard_max
    for index, item in enumerate(frames):
        k = item.intrinsics
        where = f"'{source}', frame {index} ('{item.name}')"
        if max(k.w, k.h) > max_size:
            raise SceneError(
                f"{where} is {k.w}×{k.h} pixels; Blender renders at most {max_size} a side. "
                "Check 'w' and 'h' in the file."
            )
        if camera_lens(k, ratio)["lens"] < min_lens:
            raise SceneError(
                f"{where}: fl_x {k.fl_x:g} for a {k.w}-pixel-wide image is a field of view "
                f"wider than a Blender lens can show (under {min_lens:g} mm). Check 'fl_x' "
                "(or 'camera_angle_x') in the file."
            )


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


def import_cameras(
    context: bpy.types.Context, path: Path
) -> tuple[bpy.types.Collection, str, list[str]]:
    """Create the cameras of ``path``; returns their collection, a note on scene changes and
    warnings on what was converted or left out."""
    scene = context.scene
    frames, warnings = read_camera_frames(path, scene_io.render_size(scene))
    ratio = pixel_aspect(frames)
    check_fits_blender(frames, ratio, path)
    near, far = _clip(path)
    note = _set_pixel_aspect(scene, ratio)
    collection = _collection(scene, path)
    scene_size = scene_io.render_size(scene)
    for item in frames:
        k = item.intrinsics
        camera = scene_io.new_camera(
            item.name, collection, MAKER, **camera_lens(k, ratio), clip_start=near, clip_end=far
        )
        scene_io.set_camera_pose(camera, item.camera_to_world)
        if (k.w, k.h) != scene_size:
            own = camera.data.nerf
            own.use_resolution = True
            own.resolution_x, own.resolution_y = k.w, k.h
    if scene.camera is None:
        scene.camera = collection.objects[0]
    return collection, note, warnings


def _clip(path: Path) -> tuple[float, float]:
    """Clip range around the file's near/far (Blender's defaults where it has none)."""
    try:
        split = (
            read_transforms(path, require_images=False, image_sizes=False, default_size=(1, 1))
            if path.is_file()
            else None
        )
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
    old = [c for c in bpy.data.collections if c.get(TAG) == key]
    objects = {ob for c in old for ob in c.objects}
    data = {ob.data for ob in objects if ob.data is not None}
    bpy.data.batch_remove([*old, *objects])  # one call: removing one by one is quadratic
    bpy.data.batch_remove([d for d in data if d.users == 0])
    collection = mark_ours(bpy.data.collections.new(f"NeRF Cameras {path.stem}"), MAKER)
    collection[TAG] = key
    scene.collection.children.link(collection)
    return collection
