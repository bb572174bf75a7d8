"""Which Blender cameras Render Views and Compare render, decided before anything starts.

:func:`plan_shots` turns ``scene.nerf.render_source`` (the active camera, the selected cameras,
or the active camera over a frame range) into :class:`Shot` s: plain data with each camera's pose
and exact intrinsics at the scene's resolution (or the camera's own, Camera > NeRF), and a view
name that is also the image's file name. :func:`check_run` checks the run folder. Both raise
:class:`~.scene_io.SceneError` with what to do, and leave the scene as they found it.

A render folder gets ``cameras.json`` (what the engine renders) and ``blender_views.json`` (which
camera and frame each image belongs to: what Import View reads).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from . import geometry, scene_io
from .export_plan import folder_setting
from .nerf_engine.data.cameras import Intrinsics
from .nerf_engine.data.dataset import Frame, read_split, write_transforms
from .nerf_engine.data.fileio import write_json_atomic
from .scene_io import SceneError

VIEWS_FILE = "blender_views.json"
CAMERAS_FILE = "cameras.json"


@dataclass(frozen=True, eq=False)
class Shot:
    """One image to render: a camera at a frame."""

    name: str  # view name: the image is <name>.png
    camera: str  # the camera object's name
    frame: int | None  # the scene frame (None: the current one)
    camera_to_world: np.ndarray  # [4, 4]
    intrinsics: Intrinsics


@dataclass(frozen=True)
class RunInfo:
    """A trained run folder: its latest checkpoint and the dataset it was trained on."""

    run_dir: Path
    checkpoint: Path
    dataset_dir: Path | None
    train_size: tuple[int, int] | None  # (w, h) of its training images, when readable
    aabb: np.ndarray | None = None  # [2, 3] the scene box it was trained in
    near: float = 0.0  # the ray range it renders (its training cameras')
    far: float = float("inf")


def check_run(run_setting: str) -> RunInfo:
    """The run folder of the ``run_dir`` setting, refused without a trained checkpoint."""
    run = folder_setting(run_setting, "Run Folder")
    found = sorted((run / "checkpoints").glob("step_*.pt"))
    if not found:
        raise SceneError(
            f"Run Folder '{run}' holds no trained NeRF (no checkpoints/step_*.pt): train one "
            "first (Training panel) or choose the folder of a trained run."
        )
    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SceneError(
            f"Run Folder '{run}' has no readable config.json ({exc}): is it a training run?"
        ) from exc
    box = config.get("scene") if isinstance(config, dict) else None
    bounds = {}
    if isinstance(box, dict) and {"aabb", "near", "far"} <= set(box):
        bounds = {"aabb": np.asarray(box["aabb"], float), "near": box["near"], "far": box["far"]}
    dataset, size = None, None
    try:
        dataset = Path(config["dataset"])
        first = read_split(dataset, "train").frames[0].intrinsics
        size = (first.w, first.h)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a run without its dataset still renders; only the size check is skipped
    return RunInfo(run, found[-1], dataset, size, **bounds)


def range_notes(shots: list[Shot], run: RunInfo) -> list[str]:
    """Warnings for cameras that see part of the run's scene box nearer or farther than the
    ray range the engine renders (its training cameras' near–far): that part comes out empty."""
    if run.aabb is None:
        return []
    notes, seen = [], set()
    for shot in shots:
        if shot.camera in seen:
            continue
        near, far = geometry.near_far(run.aabb, shot.camera_to_world[None], margin=0.0)
        if near < run.near or far > run.far:
            seen.add(shot.camera)
            notes.append(
                f"Camera '{shot.camera}' sees the scene box {near:.3g}–{far:.3g} away, but the "
                f"run renders only {run.near:.3g}–{run.far:.3g} (its training cameras' range): "
                "parts of the NeRF may be cut off; move the camera into that range."
            )
    return notes


def camera_size(scene: bpy.types.Scene, camera_data: bpy.types.Camera) -> tuple[int, int]:
    """The size a camera renders at: its own (Camera > NeRF) or the scene's, at the scene's
    resolution percentage."""
    own = getattr(camera_data, "nerf", None)
    if own is not None and own.use_resolution:
        return scene_io.render_size(scene, (own.resolution_x, own.resolution_y))
    return scene_io.render_size(scene)


def plan_shots(context: bpy.types.Context, source: str) -> list[Shot]:
    """The shots of ``source`` ('ACTIVE', 'SELECTED' or 'ANIMATION'); raises SceneError."""
    scene = context.scene
    if source == "SELECTED":
        cameras = sorted(
            (ob for ob in context.selected_objects if ob.type == "CAMERA"), key=lambda o: o.name
        )
        if not cameras:
            raise SceneError("No camera is selected: select the cameras to render.")
        shots = [_shot(scene, camera, None) for camera in cameras]
    elif source == "ANIMATION":
        shots = _animation_shots(scene)
    else:
        camera = _active_camera(scene, "")
        shots = [_shot(scene, camera, None)]
    return _unique_names(shots)


def _active_camera(scene: bpy.types.Scene, when: str) -> bpy.types.Object:
    camera = scene.camera
    if camera is None or camera.type != "CAMERA":
        raise SceneError(
            f"The scene has no active camera{when}: add a camera and make it active "
            "(Ctrl+Numpad 0), or set Cameras to Selected Cameras."
        )
    return camera


def _shot(scene: bpy.types.Scene, camera: bpy.types.Object, frame: int | None) -> Shot:
    intrinsics = scene_io.camera_intrinsics(camera, scene, camera_size(scene, camera.data))
    name = safe_name(camera.name) + (f"_{frame:04d}" if frame is not None else "")
    return Shot(name, camera.name, frame, scene_io.camera_to_world(camera), intrinsics)


def _animation_shots(scene: bpy.types.Scene) -> list[Shot]:
    nerf = scene.nerf
    if nerf.render_use_scene_range:
        start, end, step = scene.frame_start, scene.frame_end, scene.frame_step
    else:
        start, end, step = nerf.render_frame_start, nerf.render_frame_end, nerf.render_frame_step
    frames = range(start, end + 1, max(1, step))
    if not frames:
        raise SceneError(f"The frame range {start}–{end} is empty: set End after Start.")
    shots = []
    with scene_io.frame_kept(scene):
        for frame in frames:
            scene.frame_set(frame)
            shots.append(_shot(scene, _active_camera(scene, f" at frame {frame}"), frame))
    return shots


def safe_name(name: str) -> str:
    """A file-name-safe form of an object name: letters, digits, '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "camera"


def _unique_names(shots: list[Shot]) -> list[Shot]:
    seen: set[str] = set()
    unique = []
    for index, shot in enumerate(shots):
        name = shot.name if shot.name not in seen else f"{shot.name}_{index}"
        seen.add(name)
        unique.append(Shot(name, shot.camera, shot.frame, shot.camera_to_world, shot.intrinsics))
    return unique


def check_sizes(shots: list[Shot], run: RunInfo) -> None:
    """Compare measures the NeRF at the size it was trained at: refuse other sizes."""
    if run.train_size is None:
        return
    w, h = run.train_size
    for shot in shots:
        if (shot.intrinsics.w, shot.intrinsics.h) != (w, h):
            raise SceneError(
                f"The run in '{run.run_dir}' was trained on {w}×{h} images but camera "
                f"'{shot.camera}' renders {shot.intrinsics.w}×{shot.intrinsics.h} here: set the "
                f"resolution to {w}×{h} at 100%, or choose the run trained on this scene."
            )


def write_cameras(path: Path, shots: list[Shot]) -> None:
    """The engine's cameras file: a transforms file whose frames need no images."""
    frames = [Frame(s.camera_to_world, s.intrinsics, file_path=s.name) for s in shots]
    write_transforms(path, frames, extra={"generator": "blender-nerf"})


def write_views(folder: Path, shots: list[Shot], run: RunInfo) -> None:
    """``blender_views.json``: which camera and frame each image of ``folder`` shows."""
    views = [
        {
            "name": s.name,
            "image": f"{s.name}.png",
            "camera": s.camera,
            "frame": s.frame,
            "w": s.intrinsics.w,
            "h": s.intrinsics.h,
        }
        for s in shots
    ]
    manifest = {"generator": "blender-nerf", "run": str(run.run_dir), "views": views}
    if run.aabb is not None:
        manifest["aabb"] = run.aabb.tolist()
    write_json_atomic(folder / VIEWS_FILE, manifest)


def read_views(folder: Path) -> tuple[list[dict], np.ndarray | None]:
    """The views of the last Render Views into ``folder`` whose images exist, and the run's scene
    box (None if unknown); SceneError when there are none."""
    path = folder / VIEWS_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        views = [v for v in manifest["views"] if {"name", "image", "camera"} <= set(v)]
        aabb = np.asarray(manifest["aabb"], float) if "aabb" in manifest else None
    except (OSError, ValueError, KeyError, TypeError):
        views, aabb = [], None
    views = [v for v in views if (folder / v["image"]).is_file()]
    if not views:
        raise SceneError(
            f"Render Folder '{folder}' holds no finished NeRF render ({VIEWS_FILE} and its "
            "images): press Render Views first."
        )
    return views, aabb if aabb is not None and aabb.shape == (2, 3) else None
