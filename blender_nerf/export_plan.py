"""What an export will render, decided before anything is rendered or written.

:func:`build_plan` reads ``scene.nerf`` and the scene, checks everything an artist can get wrong
(and says what to do about it, as a :class:`~.scene_io.SceneError`), and returns an
:class:`ExportPlan`: every view's split, file name, pose and intrinsics, plus the scene bounds.
It leaves the scene as it found it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from . import geometry, scene_io
from .nerf_engine.data.cameras import Intrinsics
from .nerf_engine.data.dataset import MAX_JSON_BYTES
from .scene_io import SceneError

GENERATOR = "blender-nerf"  # the "generator" key of the transforms files an export writes


@dataclass(frozen=True, eq=False)
class View:
    """One image to render."""

    split: str
    file_path: str  # relative to the dataset folder, without extension: "./train/r_0"
    camera_to_world: np.ndarray  # [4, 4]
    intrinsics: Intrinsics
    camera_name: str | None  # None: the temporary rig camera
    frame: int | None = None  # the scene frame to render at (animation)


@dataclass(frozen=True)
class RigLens:
    """Lens of the temporary rig camera."""

    lens: float
    sensor_width: float
    sensor_height: float
    sensor_fit: str
    clip_start: float
    clip_end: float


@dataclass(eq=False)
class ExportPlan:
    root: Path
    views: list[View]
    aabb: np.ndarray  # [2, 3]
    near: float
    far: float
    subject: list[str]  # object names
    rig_lens: RigLens | None = None
    depth: bool = False
    mask: bool = False
    transparent: bool = True
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Shot:
    camera_to_world: np.ndarray
    intrinsics: Intrinsics
    camera_name: str | None
    frame: int | None = None


def build_plan(context: bpy.types.Context) -> ExportPlan:
    """Check the settings and the scene and work out every view. Raises SceneError."""
    scene = context.scene
    settings = scene.nerf
    root = dataset_folder(settings.dataset_dir)
    if (settings.export_depth or settings.export_mask) and not hasattr(
        scene, "compositing_node_group"
    ):
        raise SceneError("Depth and mask export need Blender 5.0 or newer; turn them off.")
    subject = scene_io.subject_objects(context, settings.subject)
    if not subject:
        raise SceneError(_nothing_to_export(settings.subject))
    source = settings.camera_source
    rig_lens = None
    with scene_io.frame_kept(scene):
        if source == "RIG":
            shots, points, rig_lens = _rig_shots(context, subject)
        elif source == "SELECTED":
            shots, points = _selected_shots(context, subject)
        else:
            shots, points = _animation_shots(context, subject)
    if len(points) == 0:
        raise SceneError(_nothing_to_export(settings.subject))
    views = _split_views(shots, settings)
    aabb = np.stack([points.min(axis=0), points.max(axis=0)])
    aabb = _padded(aabb)
    near, far = geometry.near_far(aabb, np.stack([v.camera_to_world for v in views]))
    check_not_foreign(root)
    check_writable(root)
    notes = _clipping_notes(views, aabb)
    return ExportPlan(
        root=root,
        views=views,
        aabb=aabb,
        near=near,
        far=far,
        subject=[ob.name for ob in subject],
        rig_lens=rig_lens,
        depth=settings.export_depth,
        mask=settings.export_mask,
        transparent=settings.film_transparent,
        notes=notes,
    )


def dataset_folder(path_setting: str) -> Path:
    """The absolute dataset folder from the ``dataset_dir`` setting."""
    return folder_setting(path_setting, "Dataset Folder")


def folder_setting(path_setting: str, label: str) -> Path:
    """The absolute folder of the path setting shown as ``label`` (``//``: the .blend's folder)."""
    if not path_setting.strip():
        raise SceneError(f"No {label.lower()}: set {label} in the NeRF panel.")
    if path_setting.startswith("//") and not bpy.data.filepath:
        raise SceneError(
            f"{label} '{path_setting}' is relative to the .blend file, which is not saved "
            "yet; save the file or choose an absolute folder."
        )
    return Path(bpy.path.abspath(path_setting)).resolve()


def check_writable(root: Path, label: str = "dataset folder") -> None:
    """Create ``root`` (the ``label``) if needed and prove a file can be written there."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nerf_probe_", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SceneError(
            f"Cannot write to the {label} '{root}' ({reason}); choose a folder you can write to."
        ) from exc


def check_not_foreign(root: Path) -> None:
    """Refuse a folder that holds a dataset made by something else: an export would overwrite
    its transforms files and images (``train/r_0.png``) with ours."""
    names = ["transforms.json", *(f"transforms_{s}.json" for s in ("train", "val", "test"))]
    for path in (root / name for name in names):
        if path.is_file() and not _made_here(path):
            raise SceneError(
                f"Dataset Folder '{root}' holds a dataset that blender-nerf did not make "
                f"({path.name}); exporting would overwrite it. Choose an empty folder, or move "
                "that dataset away first."
            )


def _made_here(path: Path) -> bool:
    """Whether the transforms file ``path`` was written by this add-on's export."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return False
        top = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # unreadable: not one of ours (those are written atomically)
        return False
    return isinstance(top, dict) and top.get("generator") == GENERATOR


def _nothing_to_export(mode: str) -> str:
    if mode == "SELECTED":
        return "Nothing to export: no visible geometry is selected; select the subject objects."
    return (
        "Nothing to export: no visible object with geometry is enabled for rendering; "
        "unhide the subject or add one."
    )


def _points(context: bpy.types.Context, subject: list) -> np.ndarray:
    return scene_io.subject_points(subject, context.evaluated_depsgraph_get())


def _size(scene: bpy.types.Scene, camera_data=None) -> tuple[int, int]:
    settings = scene.nerf
    own = getattr(camera_data, "nerf", None)
    if own is not None and own.use_resolution:
        return scene_io.render_size(scene, (own.resolution_x, own.resolution_y))
    if settings.use_resolution_override:
        return scene_io.render_size(scene, (settings.resolution_x, settings.resolution_y))
    return scene_io.render_size(scene)


def _rig_shots(context, subject) -> tuple[list[_Shot], np.ndarray, RigLens]:
    scene, settings = context.scene, context.scene.nerf
    if settings.rig_views < 1:
        raise SceneError("The rig has 0 views; set Views to at least 1 (100 or more to train).")
    if settings.rig_lens_source == "ACTIVE_CAMERA":
        camera = scene.camera
        if camera is None or camera.type != "CAMERA":
            raise SceneError(
                "The rig copies the active camera's lens but the scene has no active camera; "
                "add a camera or set the rig's Lens to Custom."
            )
        lens = scene_io.camera_lens(camera)
    else:
        lens = {
            "lens": settings.rig_lens,
            "sensor_width": settings.rig_sensor_width,
            "sensor_height": settings.rig_sensor_width,
            "sensor_fit": "AUTO",
        }
    w, h = _size(scene)
    intrinsics = geometry.blender_intrinsics(
        **lens,
        shift_x=0.0,
        shift_y=0.0,
        w=w,
        h=h,
        pixel_aspect_x=scene.render.pixel_aspect_x,
        pixel_aspect_y=scene.render.pixel_aspect_y,
    )
    points = _points(context, subject)
    if len(points) == 0:
        raise SceneError(_nothing_to_export(settings.subject))
    center, subject_radius = geometry.bounding_sphere(points)
    radius = settings.rig_radius or geometry.fit_radius(subject_radius, intrinsics)
    low = settings.rig_elevation_min
    if settings.rig_hemisphere:
        low = max(low, 0.0)
    high = max(settings.rig_elevation_max, low)
    directions = geometry.sphere_directions(settings.rig_views, low, high, settings.rig_seed)
    poses = geometry.rig_poses(center, radius, directions)
    clip_start = max(1e-3, 0.5 * (radius - subject_radius)) if radius > subject_radius else 1e-3
    clip_start = min(clip_start, 0.1 * radius)
    rig_lens = RigLens(**lens, clip_start=clip_start, clip_end=2.0 * (radius + subject_radius))
    shots = [_Shot(pose, intrinsics, None) for pose in poses]
    return shots, points, rig_lens


def _selected_shots(context, subject) -> tuple[list[_Shot], np.ndarray]:
    cameras = sorted(
        (ob for ob in context.selected_objects if ob.type == "CAMERA"), key=lambda ob: ob.name
    )
    if not cameras:
        raise SceneError(
            "No camera is selected; select the cameras to export, or set Cameras to Rig."
        )
    shots = []
    for camera in cameras:
        size = _size(context.scene, camera.data)
        intrinsics = scene_io.camera_intrinsics(camera, context.scene, size)
        shots.append(_Shot(scene_io.camera_to_world(camera), intrinsics, camera.name))
    return shots, _points(context, subject)


def _animation_frames(scene: bpy.types.Scene) -> range:
    settings = scene.nerf
    if settings.anim_use_scene_range:
        start, end, step = scene.frame_start, scene.frame_end, scene.frame_step
    else:
        start, end, step = (
            settings.anim_frame_start,
            settings.anim_frame_end,
            settings.anim_frame_step,
        )
    frames = range(start, end + 1, max(1, step))
    if not frames:
        raise SceneError(
            f"The frame range {start}–{end} is empty; set an End frame after the Start frame."
        )
    return frames


def _animation_shots(context, subject) -> tuple[list[_Shot], np.ndarray]:
    scene = context.scene
    if scene.camera is None:
        raise SceneError(
            "The scene has no active camera to animate; add a camera and make it active "
            "(Ctrl+Numpad 0), or set Cameras to Rig."
        )
    shots, chunks = [], []
    for frame in _animation_frames(scene):
        scene.frame_set(frame)
        camera = scene.camera  # timeline markers may switch cameras
        if camera is None or camera.type != "CAMERA":
            raise SceneError(f"Frame {frame} has no active camera; bind a camera to it.")
        size = _size(scene, camera.data)
        intrinsics = scene_io.camera_intrinsics(camera, scene, size)
        shots.append(_Shot(scene_io.camera_to_world(camera), intrinsics, camera.name, frame))
        chunks.append(_points(context, subject))
    return shots, np.concatenate(chunks)


def _split_views(shots: list[_Shot], settings) -> list[View]:
    n = len(shots)
    if n == 0:
        raise SceneError("There are no views to export; add cameras or rig views.")
    if settings.split_mode == "FRACTION":
        if settings.split_val + settings.split_test >= 1.0:
            raise SceneError(
                "Validation and test fractions add up to 1 or more, leaving nothing to train on; "
                "lower them."
            )
        n_val, n_test = geometry.split_counts(
            n, "FRACTION", settings.split_val, settings.split_test
        )
        while n_val + n_test >= n and n_val + n_test > 0:  # too few views: hold out fewer
            n_val, n_test = (n_val - 1, n_test) if n_val >= n_test else (n_val, n_test - 1)
    else:
        n_val, n_test = settings.split_val_count, settings.split_test_count
        if n_val + n_test >= n:
            raise SceneError(
                f"{n} views cannot hold out {n_val} for validation and {n_test} for testing and "
                "still train; add views or hold out fewer."
            )
    labels = geometry.assign_splits(n, n_val, n_test)
    counters = dict.fromkeys(("train", "val", "test"), 0)
    views = []
    for shot, split in zip(shots, labels, strict=True):
        name = f"./{split}/r_{counters[split]}"
        counters[split] += 1
        views.append(
            View(split, name, shot.camera_to_world, shot.intrinsics, shot.camera_name, shot.frame)
        )
    return views


def _clipping_notes(views: list[View], aabb: np.ndarray) -> list[str]:
    """Warnings for scene cameras whose clip range may cut off part of the subject."""
    notes = []
    for name in sorted({v.camera_name for v in views if v.camera_name is not None}):
        poses = np.stack([v.camera_to_world for v in views if v.camera_name == name])
        near, far = geometry.near_far(aabb, poses, margin=0.0)
        start, end = scene_io.clip_range(bpy.data.objects[name])
        if start > near or end < far:
            notes.append(
                f"Camera '{name}' clips at {start:g}–{end:g} but the subject lies {near:.3g}–"
                f"{far:.3g} away; parts of it may be cut off (raise Clip End or lower Clip Start)."
            )
    return notes


def _padded(aabb: np.ndarray) -> np.ndarray:
    """Give a flat box (a plane, a single point) some thickness: aabb needs min < max."""
    lo, hi = aabb
    pad = max(float(np.max(hi - lo)) * 1e-3, 1e-4)
    grow = np.where(hi - lo < pad, 0.5 * pad, 0.0)
    return np.stack([lo - grow, hi + grow])
