"""Which camera renders at which pose: the one camera planner of Export Dataset, Render Views and
Compare, and the one plain-data "camera at a pose" (:class:`Shot`).

:func:`plan_shots` turns a camera source (the active camera, the selected cameras, or the active
camera over a frame range) into shots with each camera's pose and exact intrinsics at its size:
the camera's own resolution (Camera > NeRF) if it has one, else the caller's override, else the
scene's, always at the scene's resolution percentage. It checks what an artist can get wrong and
raises :class:`~.scene_io.SceneError` in the caller's words (:class:`Refusals`), and leaves the
scene on the frame it was on. Export adds its rig and the dataset splits on top.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import bpy
import numpy as np

from ..nerf_engine.data.cameras import Intrinsics
from ..nerf_engine.data.dataset import Frame
from . import scene_io
from .scene_io import SceneError


@dataclass(frozen=True, eq=False)
class Shot:
    """One image: a camera at a pose, with the intrinsics it renders at.

    ``name`` is the image's name (a view name such as ``Camera_0001``, or a dataset file path
    without extension such as ``./train/r_0``); ``camera`` the Blender object's name (None: the
    export's temporary rig camera); ``frame`` the scene frame it is seen at (None: the current
    one); ``split`` its dataset split (None outside a dataset).
    """

    name: str
    camera_to_world: np.ndarray  # [4, 4] OpenGL convention, no scale
    intrinsics: Intrinsics  # pixels
    camera: str | None = None
    frame: int | None = None
    split: str | None = None

    def to_frame(self) -> Frame:
        """The engine's frame of this shot, ``file_path`` = its name."""
        return Frame(self.camera_to_world, self.intrinsics, file_path=self.name)


@dataclass(frozen=True)
class Refusals:
    """What a feature tells the artist when there is no camera to plan, in its own words:
    ``no_selection``; ``no_active`` (the scene has no active camera); ``no_active_at`` (none at
    ``{frame}`` of an animation); ``empty_range`` (``{start}``–``{end}`` holds no frame).
    ``animated_camera`` also refuses an animation whose scene has no active camera before its
    first frame is set (with ``no_active``)."""

    no_selection: str
    no_active: str
    no_active_at: str
    empty_range: str
    animated_camera: bool = False


def plan_shots(
    context: bpy.types.Context,
    source: str,
    refusals: Refusals,
    *,
    frames: range | None = None,
    resolution: tuple[int, int] | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> list[Shot]:
    """The shots of ``source`` ('ACTIVE', 'SELECTED' or 'ANIMATION'), uniquely named after
    their cameras (and frames). ``frames``: the animation's scene frames; ``resolution``: the
    size to render at instead of the scene's; ``on_frame(frame)`` is called at each animation
    frame while the scene is on it. Raises SceneError."""
    scene = context.scene
    if source == "SELECTED":
        cameras = selected_cameras(context)
        if not cameras:
            raise SceneError(refusals.no_selection)
        shots = [shot_of(scene, camera, resolution=resolution) for camera in cameras]
    elif source == "ANIMATION":
        frames = range(0) if frames is None else frames
        shots = _animation_shots(scene, refusals, frames, resolution, on_frame)
    else:
        shots = [shot_of(scene, _active_camera(scene, refusals.no_active), resolution=resolution)]
    return _unique_names(shots)


def selected_cameras(context: bpy.types.Context) -> list[bpy.types.Object]:
    """The selected camera objects, sorted by name."""
    cameras = (ob for ob in context.selected_objects if ob.type == "CAMERA")
    return sorted(cameras, key=lambda ob: ob.name)


def frame_range(scene: bpy.types.Scene, use_scene: bool, start: int, end: int, step: int) -> range:
    """The scene frames from ``start`` to ``end`` (inclusive) every ``step``; with ``use_scene``
    the scene's own start, end and step."""
    if use_scene:
        start, end, step = scene.frame_start, scene.frame_end, scene.frame_step
    return range(start, end + 1, max(1, step))


def camera_size(
    scene: bpy.types.Scene,
    camera_data: bpy.types.Camera | None,
    resolution: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """The size (w, h) in pixels a camera renders at: its own (Camera > NeRF), else
    ``resolution``, else the scene's; at the scene's resolution percentage."""
    own = getattr(camera_data, "nerf", None)
    if own is not None and own.use_resolution:
        return scene_io.render_size(scene, (own.resolution_x, own.resolution_y))
    return scene_io.render_size(scene, resolution)


def shot_of(
    scene: bpy.types.Scene,
    camera: bpy.types.Object,
    frame: int | None = None,
    *,
    resolution: tuple[int, int] | None = None,
) -> Shot:
    """The shot of ``camera`` as the scene is now (seen at ``frame``), named after both."""
    size = camera_size(scene, camera.data, resolution)
    intrinsics = scene_io.camera_intrinsics(camera, scene, size)
    name = safe_name(camera.name) + (f"_{frame:04d}" if frame is not None else "")
    return Shot(name, scene_io.camera_to_world(camera), intrinsics, camera.name, frame)


def safe_name(name: str) -> str:
    """A file-name-safe form of an object name: letters, digits, '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "camera"


def _active_camera(scene: bpy.types.Scene, refusal: str) -> bpy.types.Object:
    camera = scene.camera
    if camera is None or camera.type != "CAMERA":
        raise SceneError(refusal)
    return camera


def _animation_shots(
    scene: bpy.types.Scene,
    refusals: Refusals,
    frames: range,
    resolution: tuple[int, int] | None,
    on_frame: Callable[[int], None] | None,
) -> list[Shot]:
    if refusals.animated_camera and scene.camera is None:
        raise SceneError(refusals.no_active)
    if not frames:
        raise SceneError(refusals.empty_range.format(start=frames.start, end=frames.stop - 1))
    shots = []
    with scene_io.frame_kept(scene):
        for frame in frames:
            scene.frame_set(frame)
            camera = _active_camera(scene, refusals.no_active_at.format(frame=frame))
            shots.append(shot_of(scene, camera, frame, resolution=resolution))
            if on_frame is not None:
                on_frame(frame)
    return shots


def _unique_names(shots: list[Shot]) -> list[Shot]:
    seen: set[str] = set()
    unique = []
    for index, shot in enumerate(shots):
        name = shot.name if shot.name not in seen else f"{shot.name}_{index}"
        seen.add(name)
        unique.append(shot if name == shot.name else replace(shot, name=name))
    return unique
