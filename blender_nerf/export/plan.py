"""What an export will render, decided before anything is rendered or written.

:func:`build_plan` reads ``scene.nerf`` and the scene, checks everything an artist can get wrong
(and says what to do about it, as a :class:`~..scene.scene_io.SceneError`), and returns an
:class:`ExportPlan`: every view's split, file name, pose and intrinsics, plus the scene bounds.
The selected cameras and the animation come from the shared planner (``scene.shots``); the rig,
the resolution override and the splits are the export's own. It leaves the scene as it found it.

The subject is what shows in the render (``scene_io.choose_subject``); the plan names it and its
box in the scene's units (:attr:`ExportPlan.subject_text`), so the artist sees what was chosen.
The rig circles its centre (the subject's box centre, an object or a point), or, inside out,
stands close around it looking out (an interior seen from within).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import inf
from pathlib import Path

import bpy
import numpy as np

from ..nerf_engine.data.cameras import Intrinsics
from ..scene import geometry, ours, scene_io, shots
from ..scene.paths import check_not_foreign, check_writable, dataset_folder
from ..scene.scene_io import SceneError, Subject
from ..scene.shots import Shot
from ..scene.units import length

REFUSALS = shots.Refusals(
    no_selection="No camera is selected; select the cameras to export, or set Cameras to Rig.",
    no_active="The scene has no active camera to animate; add a camera and make it active "
    "(Ctrl+Numpad 0), or set Cameras to Rig.",
    no_active_at="Frame {frame} has no active camera; bind a camera to it.",
    empty_range="The frame range {start}–{end} is empty; set an End frame after the Start frame.",
    animated_camera=True,
)


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
    views: list[Shot]  # named by file path ("./train/r_0"), each with its split
    aabb: np.ndarray  # [2, 3]
    near: float
    far: float
    subject: list[str]  # object names
    subject_text: str = ""  # the subject's objects and box, in the scene's units, for the report
    rig_lens: RigLens | None = None
    depth: bool = False
    mask: bool = False
    colmap: bool = False  # also a COLMAP model of the training views (export/sparse.py)
    points: bool = False  # also points3d.ply from the training views' depth
    transparent: bool = True
    include_ours: bool = False  # render and bound what the add-on made too
    left_out: list[str] = field(default_factory=list)  # what the add-on made, left out
    notes: list[str] = field(default_factory=list)
    scene_transparent: bool = True  # the scene's own Film > Transparent (its world not rendered)

    def background_note(self) -> str:
        """What the dataset's background is, in a sentence for the report ("" when the scene
        and the dataset both leave the world out)."""
        if not self.transparent:
            return (
                "Background: opaque, the world is in every image; training learns it as an "
                "environment (a background by view direction) behind the NeRF, and renders show "
                "it, with the NeRF's own alpha."
            )
        if not self.scene_transparent:
            return (
                "Background: transparent, so the scene's world is left out of the images; turn "
                "Transparent Background off to keep it (training then learns it as an "
                "environment behind the NeRF)."
            )
        return ""


def build_plan(context: bpy.types.Context) -> ExportPlan:
    """Check the settings and the scene and work out every view. Raises SceneError."""
    scene = context.scene
    settings = scene.nerf
    root = dataset_folder(settings.dataset_dir)
    if (settings.export_depth or settings.export_mask) and not hasattr(
        scene, "compositing_node_group"
    ):
        raise SceneError("Depth and mask export need Blender 5.0 or newer; turn them off.")
    if settings.export_points and not settings.export_depth:
        raise SceneError(
            "Points for Splatting are made from each view's depth; turn on Depth too (or turn "
            "Points for Splatting off)."
        )
    inside_out = settings.camera_source == "RIG" and settings.rig_inside_out
    chosen = scene_io.choose_subject(
        context, settings.subject, keep_ground=inside_out, include_ours=settings.include_ours
    )
    subject = chosen.objects
    if not subject:
        raise SceneError(_nothing_to_export(settings.subject) + _ours_hint(scene, settings))
    rig_lens = None
    if settings.camera_source == "RIG":
        cameras, points, rig_lens, notes = _rig_shots(context, subject)
    else:
        (cameras, points), notes = _camera_shots(context, subject), []
    if len(points) == 0:
        raise SceneError(_nothing_to_export(settings.subject))
    views = _split_views(cameras, settings)
    aabb = np.stack([points.min(axis=0), points.max(axis=0)])
    aabb = _padded(aabb)
    near, far = geometry.near_far(aabb, np.stack([v.camera_to_world for v in views]))
    check_not_foreign(root)
    check_writable(root)
    notes += _clipping_notes(scene, views, aabb, points)
    return ExportPlan(
        root=root,
        views=views,
        aabb=aabb,
        near=near,
        far=far,
        subject=[ob.name for ob in subject],
        subject_text=_subject_text(context, chosen, aabb),
        rig_lens=rig_lens,
        depth=settings.export_depth,
        mask=settings.export_mask,
        colmap=settings.export_colmap,
        points=settings.export_points,
        transparent=settings.film_transparent,
        include_ours=settings.include_ours,
        left_out=[] if settings.include_ours else _left_out(scene),
        notes=notes,
        scene_transparent=scene.render.film_transparent,
    )


def _left_out(scene: bpy.types.Scene) -> list[str]:
    """The names of what the add-on made that the export leaves out of its images."""
    return sorted(ob.name for ob in ours.ours_in_render(scene))


def _ours_hint(scene: bpy.types.Scene, settings) -> str:
    """Why an object the artist sees is not the subject: the add-on made it."""
    left_out = [] if settings.include_ours else _left_out(scene)
    if not left_out:
        return ""
    names = ", ".join(f"'{name}'" for name in left_out)
    return (
        f" What the NeRF add-on made ({names}) is left out; turn on Include NeRF Results to "
        "export it."
    )


def _nothing_to_export(mode: str) -> str:
    if mode == "SELECTED":
        return "Nothing to export: no visible geometry is selected; select the subject objects."
    return (
        "Nothing to export: no visible object with geometry is enabled for rendering; "
        "unhide the subject or add one."
    )


def _points(context: bpy.types.Context, subject: list) -> np.ndarray:
    return scene_io.subject_points(subject, context.evaluated_depsgraph_get())


def _resolution(settings) -> tuple[int, int] | None:
    """The export's Override Resolution (a camera's own resolution still wins)."""
    if settings.use_resolution_override:
        return settings.resolution_x, settings.resolution_y
    return None


def _camera_shots(context, subject) -> tuple[list[Shot], np.ndarray]:
    """The selected cameras, or the active camera over the frame range, and the subject's
    points [N, 3] (at every frame of an animation)."""
    scene, settings = context.scene, context.scene.nerf
    chunks = []
    frames = shots.frame_range(
        scene,
        settings.anim_use_scene_range,
        settings.anim_frame_start,
        settings.anim_frame_end,
        settings.anim_frame_step,
    )
    planned = shots.plan_shots(
        context,
        settings.camera_source,
        REFUSALS,
        frames=frames,
        resolution=_resolution(settings),
        on_frame=lambda frame: chunks.append(_points(context, subject)),
    )
    if not chunks:  # still cameras: the subject as it is now
        chunks.append(_points(context, subject))
    return planned, np.concatenate(chunks)


def _rig_shots(context, subject) -> tuple[list[Shot], np.ndarray, RigLens, list[str]]:
    """The rig's shots around (or, inside out, from within) the subject, the subject's points
    [N, 3], the rig camera's lens and notes for the artist."""
    settings = context.scene.nerf
    if settings.rig_views < 1:
        raise SceneError("The rig has 0 views; set Views to at least 1 (100 or more to train).")
    lens, intrinsics = _rig_intrinsics(context)
    points = _points(context, subject)
    if len(points) == 0:
        raise SceneError(_nothing_to_export(settings.subject))
    center = _rig_center(context, points)
    low, high = settings.rig_elevation_min, settings.rig_elevation_max  # Upper Hemisphere: low>=0
    if settings.rig_inside_out and settings.rig_hemisphere:
        low = -90.0  # inside out the cameras look down at the floor too (Inside Out's tooltip)
    if high < low:
        raise SceneError(
            "The rig's Max Elevation is below its Min Elevation; raise Max Elevation or lower "
            "Min Elevation."
        )
    directions = geometry.sphere_directions(settings.rig_views, low, high, settings.rig_seed)
    if settings.rig_inside_out:
        poses, clip, notes = _inside_out_rig(context, points, center, directions)
    else:
        center, subject_radius = geometry.bounding_sphere(points, center)
        radius = settings.rig_radius or geometry.fit_radius(subject_radius, intrinsics)
        poses = geometry.rig_poses(center, radius, directions)
        clip_start = max(1e-3, 0.5 * (radius - subject_radius)) if radius > subject_radius else 1e-3
        clip = (min(clip_start, 0.1 * radius), 2.0 * (radius + subject_radius))
        notes = []
    rig_lens = RigLens(**lens, clip_start=clip[0], clip_end=clip[1])
    return [Shot("", pose, intrinsics) for pose in poses], points, rig_lens, notes


def _rig_intrinsics(context) -> tuple[dict, Intrinsics]:
    """The rig camera's lens (the active camera's or the custom one) and its intrinsics."""
    scene, settings = context.scene, context.scene.nerf
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
    w, h = shots.camera_size(scene, None, _resolution(settings))
    intrinsics = geometry.blender_intrinsics(
        **lens,
        shift_x=0.0,
        shift_y=0.0,
        w=w,
        h=h,
        pixel_aspect_x=scene.render.pixel_aspect_x,
        pixel_aspect_y=scene.render.pixel_aspect_y,
    )
    return lens, intrinsics


def _rig_center(context, points: np.ndarray) -> np.ndarray:
    """The rig centre [3]: the subject's box centre, an object's position or a typed point."""
    settings = context.scene.nerf
    if settings.rig_center_mode == "OBJECT":
        target = settings.rig_center_object
        if target is None:
            raise SceneError(
                "Rig Centre is set to Object but no Centre Object is chosen; pick one (an empty "
                "placed where the rig should turn, say) or set Rig Centre to Subject."
            )
        matrix = target.evaluated_get(context.evaluated_depsgraph_get()).matrix_world
        return np.array(matrix.translation, dtype=np.float64)
    if settings.rig_center_mode == "POINT":
        return np.array(settings.rig_center_point, dtype=np.float64)
    return 0.5 * (points.min(axis=0) + points.max(axis=0))


def _inside_out_rig(context, points, center, directions):
    """Poses of cameras close around ``center`` looking out, their clip range and notes.
    Raises SceneError when the centre is not inside the subject's box."""
    scene, settings = context.scene, context.scene.nerf
    aabb = np.stack([points.min(axis=0), points.max(axis=0)])
    auto = geometry.inside_out_radius(center, aabb)
    if auto <= 0:
        raise SceneError(
            "An inside-out rig stands inside the subject, but its centre "
            f"{_point_text(scene, center)} is outside the subject's box "
            f"({_box_text(scene, aabb)}); set Rig Centre to Subject or to a point inside the room."
        )
    radius = settings.rig_radius or auto
    poses = geometry.inside_out_poses(center, radius, directions)
    far = geometry.near_far(aabb, poses)[1]
    nearest = geometry.nearest_distance(points, poses[:, :3, 3])
    clip = (max(1e-6, min(1e-3 * far, 0.5 * nearest)), 2.0 * far)
    notes = []
    outside = ((poses[:, :3, 3] < aabb[0]) | (poses[:, :3, 3] > aabb[1])).any(axis=1)
    if outside.any():
        notes.append(
            f"{int(outside.sum())} of {len(poses)} inside-out cameras stand outside the "
            f"subject's box ({_box_text(scene, aabb)}): lower the rig's Radius (0 fits it)."
        )
    return poses, clip, notes


def _split_views(planned: list[Shot], settings) -> list[Shot]:
    """Name every shot by its split and file path (``./val/r_0``); SceneError when too few."""
    n = len(planned)
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
    for shot, split in zip(planned, labels, strict=True):
        views.append(replace(shot, name=f"./{split}/r_{counters[split]}", split=split))
        counters[split] += 1
    return views


def _clipping_notes(scene, views: list[Shot], aabb: np.ndarray, points: np.ndarray) -> list[str]:
    """Warnings for scene cameras whose clip range may cut off part of the subject: Clip End
    nearer than the box's farthest corner, or Clip Start beyond the box (from a camera outside
    it) or beyond the subject's nearest point (from a camera inside the box, as in a room)."""
    notes = []
    lo, hi = aabb
    for name in sorted({v.camera for v in views if v.camera is not None}):
        poses = np.stack([v.camera_to_world for v in views if v.camera == name])
        far = geometry.near_far(aabb, poses, margin=0.0)[1]
        inside = np.all((poses[:, :3, 3] >= lo) & (poses[:, :3, 3] <= hi), axis=1)
        near = min(
            geometry.near_far(aabb, poses[~inside], margin=0.0)[0] if not inside.all() else inf,
            geometry.nearest_distance(points, poses[inside, :3, 3]),
        )
        start, end = scene_io.clip_range(bpy.data.objects[name])
        if start > near or end < far:
            notes.append(
                f"Camera '{name}' clips at {length(scene, start)}–{length(scene, end)} but the "
                f"subject lies {length(scene, near)}–{length(scene, far)} away; parts of it may "
                "be cut off (raise Clip End or lower Clip Start)."
            )
    return notes


def _subject_text(context, subject: Subject, aabb: np.ndarray) -> str:
    """What the export chose as its subject, for the report: the rule, the objects, the box (in
    the scene's units) and what Auto left out, with what to do if that is wrong."""
    settings = context.scene.nerf
    rule = settings.bl_rna.properties["subject"].enum_items[subject.mode].name
    text = (
        f"Subject ({rule}): {_names(subject.objects)}; scene box {_box_text(context.scene, aabb)}"
    )
    if subject.left_out:
        text += (
            f"; left out as ground or backdrop: {_names(subject.left_out)} (it still renders and "
            "may show outside the box: turn off its render or make it a Shadow Catcher, or set "
            "Subject to Everything)"
        )
    selected = {ob.name for ob in subject.objects if ob.select_get()}
    if subject.mode == "AUTO" and selected and len(selected) < len(subject.objects):
        text += (
            "; the selection plays no part (set Subject to Selected to export only "
            f"{_names(selected)})"
        )
    return text + "."


def _names(objects, most: int = 8) -> str:
    """Quoted object names, the first ``most`` of them: 'A', 'B', 'C' and 2 more."""
    names = sorted(getattr(ob, "name", ob) for ob in objects)
    shown = ", ".join(f"'{name}'" for name in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _box_text(scene, aabb: np.ndarray) -> str:
    """'x −1 m to 1 m, y …, z …' in the scene's units (coordinates that are zero to within a
    millionth of the box's size read as 0)."""
    lo, hi = np.asarray(aabb, dtype=np.float64)
    tiny = 1e-6 * float(np.max(hi - lo))
    parts = []
    for axis, a, b in zip("xyz", lo, hi, strict=True):
        a, b = (0.0 if abs(v) <= tiny else v for v in (a, b))
        parts.append(f"{axis} {length(scene, a)} to {length(scene, b)}")
    return ", ".join(parts)


def _point_text(scene, point) -> str:
    return "(" + ", ".join(length(scene, float(v)) for v in point) + ")"


def _padded(aabb: np.ndarray) -> np.ndarray:
    """Give a flat box (a plane, a single point) some thickness: aabb needs min < max."""
    lo, hi = aabb
    pad = max(float(np.max(hi - lo)) * 1e-3, 1e-4)
    grow = np.where(hi - lo < pad, 0.5 * pad, 0.0)
    return np.stack([lo - grow, hi + grow])
