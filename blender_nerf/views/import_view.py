"""Import View: NeRF renders back into the scene, per camera, as

- an **image plane** parented to the camera that exactly fills its view at a distance (emission
  shader with the render's alpha, seen by the camera only), pixel-aligned through the camera;
- the camera's viewport **background image** (opacity, back or front);
- a **compositor background**: the render behind the scene's own render (Alpha Over), or with
  Depth Compositing in front of what it hides (Z Combine), with the shadows the scene's objects
  cast on it (``views/composite.py``).

A camera rendered over several frames gets an image sequence. Every datablock made here carries
the custom property ``nerf_import`` = the camera's name, so importing again for that camera
updates the same image, plane, material and nodes instead of adding new ones; and everything
made here, compositor nodes included, is marked as the add-on's own (``scene/ours.py``), so that
Export and Compare leave it out. A plane shows in its own camera only (``views.own_camera``).
:func:`plan_imports` and :func:`plan_compositor` check everything before :func:`apply_import`
changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..nerf_engine.data.cameras import Intrinsics
from ..scene import geometry, scene_io
from ..scene.ours import mark_ours
from ..scene.scene_io import SceneError
from ..scene.shots import camera_size
from ..scene.units import length
from . import composite, nerf_depth, shadow_catcher
from .composite import MAKER, TAG
from .nerf_depth import DepthSource
from .own_camera import show_to_own_camera

AUTO_CLIP = 0.9  # the automatic plane distance stays inside this fraction of Clip End
AUTO_BEHIND = 1.1  # and goes this far behind the farthest corner of the trained scene box


@dataclass(frozen=True)
class CameraImport:
    """The renders of one camera: one file, or one per frame (an image sequence). Not a camera
    at a pose (that is ``scene.shots.Shot``): a group of image files and the frames they show."""

    camera: str
    files: tuple[Path, ...]  # sorted by frame
    frames: tuple[int, ...]  # empty for a still
    size: tuple[int, int]  # (w, h) of the images

    @property
    def sequence(self) -> bool:
        return len(self.files) > 1


@dataclass(frozen=True)
class CompositorPlan:
    """What the compositor target needs besides the image: the NeRF's depth per file (empty:
    Alpha Over) and the mesh that catches the shadows (None: no shadows)."""

    depth: tuple[DepthSource, ...] = ()
    catcher: bpy.types.Object | None = None


def plan_imports(
    scene: bpy.types.Scene, folder: Path, views: list[dict], target: str, camera_name: str = ""
) -> list[CameraImport]:
    """What to import from ``views`` (``blender_views.json``); raises SceneError."""
    by_camera: dict[str, list[dict]] = {}
    for view in views:
        by_camera.setdefault(view["camera"], []).append(view)
    if camera_name:
        by_camera = {k: v for k, v in by_camera.items() if k == camera_name}
    elif target == "COMPOSITOR":  # one background for the scene: its active camera's
        active = scene.camera.name if scene.camera is not None else ""
        by_camera = {k: v for k, v in by_camera.items() if k == active}
    if not by_camera:
        which = camera_name or (scene.camera.name if scene.camera else "the active camera")
        raise SceneError(f"Render Folder '{folder}' has no NeRF render of camera '{which}'.")
    imports = []
    for name, group in sorted(by_camera.items()):
        camera = bpy.data.objects.get(name)
        if camera is None or camera.type != "CAMERA":
            raise SceneError(
                f"Camera '{name}' of the NeRF render is not in this file any more (renamed or "
                "deleted): press Render Views again."
            )
        if target == "PLANE":
            scene_io.check_perspective(camera)
        group.sort(key=lambda v: v.get("frame") or 0)
        size = (int(group[0]["w"]), int(group[0]["h"]))
        if target == "COMPOSITOR" and size != camera_size(scene, camera.data):
            w, h = camera_size(scene, camera.data)
            raise SceneError(
                f"The NeRF render of '{name}' is {size[0]}×{size[1]} but the scene renders "
                f"{w}×{h}: press Render Views again at this resolution."
            )
        files = tuple(folder / v["image"] for v in group)
        frames = tuple(int(v["frame"]) for v in group) if group[0].get("frame") is not None else ()
        imports.append(CameraImport(name, files, frames if len(files) > 1 else (), size))
    return imports


def plan_compositor(
    scene: bpy.types.Scene, folder: Path, item: CameraImport, settings: bpy.types.PropertyGroup
) -> CompositorPlan:
    """Check what Depth Compositing and Shadows on the NeRF need; raises SceneError."""
    depth = ()
    if settings.import_use_depth:
        depth = tuple(nerf_depth.plan_depths(folder, [path.stem for path in item.files]))
    catcher = shadow_catcher.check_catcher(scene) if settings.import_use_shadow_catcher else None
    return CompositorPlan(depth, catcher)


def plane_distance(
    scene: bpy.types.Scene,
    camera: bpy.types.Object,
    distance: float,
    aabb: np.ndarray | None = None,
) -> float:
    """The plane's distance: ``distance``; for 0 just behind the trained scene box ``aabb`` (as
    the camera sees it) and inside Clip End. SceneError (distances in ``scene``'s units) when
    the camera would clip it away."""
    start, end = scene_io.clip_range(camera)
    if distance <= 0.0:
        if aabb is None:
            return AUTO_CLIP * end
        pose = scene_io.camera_to_world(camera)[None]
        behind = AUTO_BEHIND * geometry.near_far(aabb, pose, margin=0.0)[1]
        return min(behind, AUTO_CLIP * end)
    if not start < distance < end:
        raise SceneError(
            f"Plane Distance {length(scene, distance)} is outside camera '{camera.name}''s clip "
            f"range {length(scene, start)}–{length(scene, end)}: choose a distance inside it "
            "(0 = automatic)."
        )
    return distance


def apply_import(
    scene: bpy.types.Scene,
    item: CameraImport,
    target: str,
    settings: bpy.types.PropertyGroup,
    aabb: np.ndarray | None = None,
    compositor: CompositorPlan | None = None,
) -> str:
    """Import one camera's renders as ``target``; returns what was done. ``aabb``: the trained
    scene box (for the automatic plane distance); ``compositor``: from :func:`plan_compositor`."""
    camera = bpy.data.objects[item.camera]
    image = _image(item)
    if target == "PLANE":
        distance = plane_distance(scene, camera, settings.import_distance, aabb)
        plane = _plane(scene, camera, image, item, distance)
        return (
            f"'{plane.name}' at {length(scene, distance)} in front of '{camera.name}' "
            "(seen through it only)"
        )
    if target == "CAMERA_BACKGROUND":
        _camera_background(camera, image, item, settings)
        return f"the background image of '{camera.name}'"
    return _compositor(scene, image, item, compositor or CompositorPlan())


def _compositor(scene, image, item: CameraImport, plan: CompositorPlan) -> str:
    depth = nerf_depth.planar_depth_image(item.camera, list(plan.depth)) if plan.depth else None
    if plan.catcher is not None:
        shadow_catcher.set_catcher(scene, plan.catcher)
    else:
        shadow_catcher.release_catchers(scene)
    composite.compositor_background(
        scene, image, item.camera, lambda node: _frame_range(node, item), depth,
        shadows=plan.catcher is not None,
    )  # fmt: skip
    how = "in front of what it hides (by depth)" if depth is not None else "behind the scene"
    shadows = f"; shadows caught by '{plan.catcher.name}'" if plan.catcher is not None else ""
    return (
        f"the compositor background of '{scene.name}' (from '{item.camera}', {how}"
        f"{shadows}; Film > Transparent and the Standard view transform are on)"
    )


# --- the image ------------------------------------------------------------------------------


def _tagged(collection, camera: str):
    return next((idb for idb in collection if idb.get(TAG) == camera), None)


def _image(item: CameraImport) -> bpy.types.Image:
    """The camera's NeRF image (a still, or a sequence from its first file), reloaded."""
    image = _tagged(bpy.data.images, item.camera)
    if image is None:
        image = bpy.data.images.load(str(item.files[0]), check_existing=False)
        image.name = f"NeRF {item.camera}"
        image[TAG] = item.camera
        mark_ours(image, MAKER)
    image.source = "SEQUENCE" if item.sequence else "FILE"
    image.filepath = str(item.files[0])
    image.alpha_mode = "STRAIGHT"
    image.colorspace_settings.name = "sRGB"
    image.reload()
    return image


def _frame_range(user, item: CameraImport) -> None:
    """Show frame N's file at scene frame N (``user``: an ImageUser or a compositor Image node)."""
    if not item.sequence:
        return
    first, last = item.frames[0], item.frames[-1]
    user.frame_start = first
    user.frame_offset = first - 1
    user.frame_duration = last - first + 1
    user.use_auto_refresh = True


# --- image plane ----------------------------------------------------------------------------


def plane_corners(intrinsics: Intrinsics, distance: float) -> np.ndarray:
    """[4, 3] camera-space corners of the image at ``distance`` along −Z: top-left, top-right,
    bottom-right, bottom-left (pixel (0, 0) is the top-left corner of the image)."""
    k = intrinsics
    corners = []
    for u, v in ((0.0, 0.0), (k.w, 0.0), (k.w, k.h), (0.0, k.h)):
        x = (u - k.cx) / k.fl_x * distance
        y = -(v - k.cy) / k.fl_y * distance
        corners.append((x, y, -distance))
    return np.array(corners)


def _plane(scene, camera, image, item: CameraImport, distance: float) -> bpy.types.Object:
    intrinsics = scene_io.camera_intrinsics(camera, scene, item.size)
    corners = plane_corners(intrinsics, distance)
    ob = _tagged(bpy.data.objects, camera.name)
    name = f"NeRF {camera.name}"
    mesh = mark_ours(bpy.data.meshes.new(name), MAKER)
    mesh.from_pydata([tuple(c) for c in corners], [], [(3, 2, 1, 0)])
    uv = mesh.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])  # loops 3, 2, 1, 0
    mesh.materials.append(_plane_material(camera.name, image, item))
    if ob is None:
        ob = bpy.data.objects.new(name, mesh)
        ob[TAG] = camera.name
        mark_ours(ob, MAKER)
        scene.collection.objects.link(ob)
    else:
        old = ob.data
        ob.data = mesh
        if old.users == 0:
            bpy.data.meshes.remove(old)
        mesh.name = name
    for attr in ("diffuse", "glossy", "transmission", "volume_scatter", "shadow"):
        setattr(ob, f"visible_{attr}", False)  # seen by the camera, lights nothing else
    ob.parent = camera
    ob.matrix_parent_inverse = Matrix.Identity(4)
    pose = Matrix(scene_io.camera_to_world(camera).tolist())
    ob.matrix_basis = camera.matrix_world.inverted() @ pose  # undo the camera's scale
    show_to_own_camera(ob, distance, MAKER)
    return ob


def _plane_material(camera: str, image, item: CameraImport) -> bpy.types.Material:
    mat = _tagged(bpy.data.materials, camera)
    if mat is None:
        mat = bpy.data.materials.new(f"NeRF {camera}")
        mat[TAG] = camera
        mark_ours(mat, MAKER)
    if mat.node_tree is None:  # Blender before 5.0 (5.0 materials always have nodes)
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.extension = "EXTEND"
    _frame_range(tex.image_user, item)
    emission = nodes.new("ShaderNodeEmission")
    transparent = nodes.new("ShaderNodeBsdfTransparent")
    mix = nodes.new("ShaderNodeMixShader")
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(tex.outputs["Color"], emission.inputs["Color"])
    links.new(tex.outputs["Alpha"], mix.inputs["Fac"])
    links.new(transparent.outputs[0], mix.inputs[1])
    links.new(emission.outputs[0], mix.inputs[2])
    links.new(mix.outputs[0], output.inputs["Surface"])
    for node, x in zip((tex, emission, mix, output), (-600, -300, 0, 250), strict=True):
        node.location = (x, 0)
    transparent.location = (-300, 200)
    return mat


# --- camera background ----------------------------------------------------------------------


def _camera_background(camera, image, item: CameraImport, settings) -> None:
    data = camera.data
    for background in list(data.background_images):
        if background.image is not None and background.image.get(TAG) == camera.name:
            data.background_images.remove(background)
    background = data.background_images.new()
    background.image = image
    background.alpha = settings.import_opacity
    background.display_depth = settings.import_depth
    background.frame_method = "STRETCH"
    _frame_range(background.image_user, item)
    data.show_background_images = True
