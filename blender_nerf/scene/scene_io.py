"""The bridge between Blender objects and plain data: cameras -> intrinsics and poses, subject
objects -> points and bounds, image files -> Blender images. The only module of the add-on that
reads geometry from bpy objects; the math lives in :mod:`.geometry`, the camera planning in
:mod:`.shots`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..nerf_engine.data.cameras import Intrinsics
from .geometry import blender_intrinsics, ground_planes, normalized_pose
from .ours import is_ours, mark_ours

GEOMETRY_TYPES = frozenset(
    {"MESH", "CURVE", "SURFACE", "META", "FONT", "CURVES", "POINTCLOUD", "VOLUME", "GREASEPENCIL"}
)


class SceneError(ValueError):
    """The scene cannot be exported as it is; the message says what to change."""


def render_size(
    scene: bpy.types.Scene, resolution: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The rendered image size in pixels: ``resolution`` (or the scene's) scaled by the scene's
    resolution percentage, rounded down as Blender does."""
    render = scene.render
    res_x, res_y = resolution or (render.resolution_x, render.resolution_y)
    pct = render.resolution_percentage
    w, h = res_x * pct // 100, res_y * pct // 100
    if w < 1 or h < 1:
        raise SceneError(
            f"The render size is {w}×{h} pixels ({res_x}×{res_y} at {pct}%); "
            "raise the resolution or the percentage."
        )
    return w, h


def check_perspective(camera_object: bpy.types.Object) -> None:
    """Refuse cameras that a pinhole dataset cannot describe (orthographic, panoramic)."""
    data = camera_object.data
    kind = data.type
    if kind != "PERSP":
        what = {"ORTHO": "orthographic", "PANO": "panoramic"}.get(kind, kind.lower())
        detail = ""
        if kind == "PANO":  # say which projection: fisheye, equirectangular, ...
            item = data.bl_rna.properties["panorama_type"].enum_items.get(data.panorama_type)
            detail = f" (Panorama Type: {item.name if item else data.panorama_type})"
        raise SceneError(
            f"Camera '{camera_object.name}' is {what}; NeRF datasets need perspective cameras"
            f"{detail}. Set its Lens > Type to Perspective."
        )


def camera_intrinsics(
    camera_object: bpy.types.Object, scene: bpy.types.Scene, size: tuple[int, int]
) -> Intrinsics:
    """Pinhole intrinsics of a perspective camera rendered at ``size`` = (w, h) pixels with the
    scene's pixel aspect. Reads the evaluated camera, so animated lenses give the current frame's
    value."""
    check_perspective(camera_object)
    cam = _evaluated(camera_object).data
    w, h = size
    return blender_intrinsics(
        lens=cam.lens,
        sensor_width=cam.sensor_width,
        sensor_height=cam.sensor_height,
        sensor_fit=cam.sensor_fit,
        shift_x=cam.shift_x,
        shift_y=cam.shift_y,
        w=w,
        h=h,
        pixel_aspect_x=scene.render.pixel_aspect_x,
        pixel_aspect_y=scene.render.pixel_aspect_y,
    )


def camera_lens(camera_object: bpy.types.Object) -> dict:
    """The lens of a perspective camera as plain values: ``lens``, ``sensor_width``,
    ``sensor_height`` (mm) and ``sensor_fit``."""
    check_perspective(camera_object)
    cam = camera_object.data
    return {
        "lens": cam.lens,
        "sensor_width": cam.sensor_width,
        "sensor_height": cam.sensor_height,
        "sensor_fit": cam.sensor_fit,
    }


def clip_range(camera_object: bpy.types.Object) -> tuple[float, float]:
    """(clip_start, clip_end) of a camera: what it renders, along its viewing axis."""
    cam = _evaluated(camera_object).data
    return cam.clip_start, cam.clip_end


def new_camera(name: str, collection: bpy.types.Collection, maker: str, **lens) -> bpy.types.Object:
    """A new perspective camera object linked to ``collection``, marked as made by the add-on's
    ``maker`` (:mod:`.ours`); ``lens`` sets the camera data's attributes (lens, sensor_width,
    sensor_height, sensor_fit, clip_start, clip_end)."""
    data = mark_ours(bpy.data.cameras.new(name), maker)
    data.type = "PERSP"
    for attr, value in lens.items():
        setattr(data, attr, value)
    camera = mark_ours(bpy.data.objects.new(name, data), maker)
    collection.objects.link(camera)
    return camera


def camera_to_world(camera_object: bpy.types.Object) -> np.ndarray:
    """The camera's 4×4 world matrix without scale (OpenGL convention, as Blender renders it)."""
    matrix = np.array(_evaluated(camera_object).matrix_world, dtype=np.float64)
    if np.linalg.det(matrix[:3, :3]) <= 0:
        raise SceneError(
            f"Camera '{camera_object.name}' has a zero or negative scale (a mirrored view); "
            "apply a positive scale to it and its parents."
        )
    return normalized_pose(matrix)


def set_camera_pose(camera_object: bpy.types.Object, c2w: np.ndarray) -> None:
    """Place an unparented camera at the camera-to-world matrix ``c2w``."""
    from mathutils import Matrix

    camera_object.matrix_world = Matrix(np.asarray(c2w, dtype=np.float64).tolist())


@dataclass(frozen=True, eq=False)
class Subject:
    """The objects a dataset is about, and how they were chosen.

    ``objects``: sorted by name; ``mode``: the rule ('AUTO', 'SELECTED' or 'VISIBLE', the
    Subject setting); ``left_out``: names of the ground or backdrop planes that Auto left out.
    """

    objects: list[bpy.types.Object]
    mode: str
    left_out: tuple[str, ...] = ()


def choose_subject(
    context: bpy.types.Context, mode: str, *, keep_ground: bool = False, include_ours: bool = False
) -> Subject:
    """The subject of a dataset: objects that show in the render (:func:`rendered_objects`).
    What the add-on made (:mod:`.ours`: imported NeRF planes, extracted meshes) is never the
    subject, even when selected, unless ``include_ours``.

    ``mode`` 'SELECTED': the selected ones; 'VISIBLE': all of them; 'AUTO': all of them but a
    ground or backdrop plane far larger than the rest (:func:`.geometry.ground_planes`), unless
    ``keep_ground`` (an inside-out rig, where the room around is the subject). The selection
    plays no part in 'AUTO': what happens to be selected is not what the artist wants to capture.
    """
    rendered = [
        ob for ob in rendered_objects(context.view_layer) if include_ours or not is_ours(ob)
    ]
    if mode == "SELECTED":
        return Subject([ob for ob in rendered if ob.select_get()], mode)
    if mode != "AUTO" or keep_ground or len(rendered) < 2:
        return Subject(rendered, mode)
    depsgraph = context.evaluated_depsgraph_get()
    evaluated = [ob.evaluated_get(depsgraph) for ob in rendered]
    boxes = np.stack([_world_box(ob) for ob in evaluated])
    ground = ground_planes(boxes, np.array([tuple(ob.dimensions) for ob in evaluated]))
    # what the add-on made is in only when the artist asked for it (Include NeRF Results): an
    # imported image plane is flat and large, but it is not a floor to leave out
    ground = [bool(g) and not is_ours(ob) for ob, g in zip(rendered, ground, strict=True)]
    kept = [ob for ob, g in zip(rendered, ground, strict=True) if not g]
    left_out = tuple(ob.name for ob, g in zip(rendered, ground, strict=True) if g)
    return Subject(kept, mode, left_out)


def subject_objects(
    context: bpy.types.Context, mode: str, *, include_ours: bool = False
) -> list[bpy.types.Object]:
    """The objects of :func:`choose_subject` (``mode`` 'AUTO', 'SELECTED' or 'VISIBLE'), sorted
    by name."""
    return choose_subject(context, mode, include_ours=include_ours).objects


def rendered_objects(view_layer: bpy.types.ViewLayer) -> list[bpy.types.Object]:
    """The geometry objects that show in ``view_layer``'s renders, sorted by name.

    An object shows when some collection holding it is included in the view layer (not
    excluded, held out or indirect only) and enabled for rendering all the way down from the
    scene's collection, and the object itself is enabled for rendering, visible to camera rays,
    and neither a holdout nor a shadow catcher. Hiding in the viewport (H, the monitor icon)
    plays no part: the render ignores it.
    """
    found: dict[str, bpy.types.Object] = {}
    pending = [view_layer.layer_collection]
    while pending:
        layer_collection = pending.pop()
        if layer_collection.exclude or layer_collection.holdout:
            continue
        if layer_collection.indirect_only or layer_collection.collection.hide_render:
            continue
        found.update((ob.name, ob) for ob in layer_collection.collection.objects)
        pending.extend(layer_collection.children)
    shown = (
        ob
        for ob in found.values()
        if ob.type in GEOMETRY_TYPES
        and not ob.hide_render
        and ob.visible_camera
        and not ob.is_holdout
        and not ob.is_shadow_catcher
    )
    return sorted(shown, key=lambda ob: ob.name)


def _world_box(ob_eval: bpy.types.Object) -> np.ndarray:
    """The world-space box [2, 3] (min, max) around an object's bounding box."""
    corners = np.array([tuple(c) for c in ob_eval.bound_box], dtype=np.float64)
    matrix = np.array(ob_eval.matrix_world, dtype=np.float64)
    world = corners @ matrix[:3, :3].T + matrix[:3, 3]
    return np.stack([world.min(axis=0), world.max(axis=0)])


def subject_points(objects: list[bpy.types.Object], depsgraph: bpy.types.Depsgraph) -> np.ndarray:
    """[N, 3] world-space points of the evaluated objects: mesh vertices where the object has a
    mesh (modifiers applied), else the corners of its bounding box. An object disabled in
    viewports (the monitor icon) is not evaluated there: its own mesh counts, without modifiers."""
    chunks = [_object_points(ob.evaluated_get(depsgraph)) for ob in objects]
    chunks = [c for c in chunks if len(c)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 3))


def _object_points(ob_eval: bpy.types.Object) -> np.ndarray:
    local = None
    try:
        mesh = ob_eval.to_mesh()
    except RuntimeError:
        mesh = None
    if mesh is not None:
        count = len(mesh.vertices)
        if count:
            flat = np.empty(count * 3, dtype=np.float32)
            mesh.vertices.foreach_get("co", flat)
            local = flat.reshape(-1, 3).astype(np.float64)
        ob_eval.to_mesh_clear()
    if local is None:
        corners = np.array([tuple(c) for c in ob_eval.bound_box], dtype=np.float64)
        if not np.any(corners):  # an object with no extent at all (an empty curve)
            return np.zeros((0, 3))
        local = corners
    matrix = np.array(ob_eval.matrix_world, dtype=np.float64)
    return local @ matrix[:3, :3].T + matrix[:3, 3]


def _evaluated(ob: bpy.types.Object) -> bpy.types.Object:
    return ob.evaluated_get(bpy.context.evaluated_depsgraph_get())


def read_image(path: Path) -> np.ndarray:
    """The pixels of an image file as float32 [h, w, channels], row 0 at the top, raw values (no
    colour transform: for data such as depth)."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.is_data = True
        w, h = image.size
        flat = np.empty(w * h * image.channels, dtype=np.float32)
        image.pixels.foreach_get(flat)
        return flat.reshape(h, w, image.channels)[::-1].copy()
    finally:
        bpy.data.images.remove(image)


def write_exr(path: Path, values: np.ndarray) -> None:
    """Write a single-channel float32 [h, w] array (row 0 at the top) as an RGBA 32-bit EXR with the
    value in R, G and B and alpha 1 (what every EXR reader opens)."""
    h, w = values.shape
    image = bpy.data.images.new(".nerf_exr", w, h, alpha=True, float_buffer=True, is_data=True)
    try:
        rgba = np.ones((h, w, 4), dtype=np.float32)
        rgba[..., :3] = values[::-1, :, None]
        image.pixels.foreach_set(rgba.ravel())
        image.filepath_raw = str(path)
        image.file_format = "OPEN_EXR"
        image.save()
    finally:
        bpy.data.images.remove(image)


def show_image_file(path: Path, name: str) -> bpy.types.Image:
    """The Blender image of the file ``path``, loaded once and re-read from disk on every call,
    named ``name`` (Blender may add a suffix); its preview icon shows the new pixels at once."""
    image = bpy.data.images.load(str(path), check_existing=True)
    mark_ours(image, "NeRF")
    if not image.name.startswith(name):
        image.name = name
    image.reload()
    width, height = image.size
    if width and height:
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        preview = image.preview_ensure()
        preview.image_size = (width, height)
        preview.image_pixels_float.foreach_set(pixels)
        preview.icon_size = (width, height)
        preview.icon_pixels_float.foreach_set(pixels)
    return image


@contextlib.contextmanager
def frame_kept(scene: bpy.types.Scene):
    """Put the scene back on its frame (and subframe) afterwards."""
    frame, subframe = scene.frame_current, scene.frame_subframe
    try:
        yield
    finally:
        if (scene.frame_current, scene.frame_subframe) != (frame, subframe):
            scene.frame_set(frame, subframe=subframe)
