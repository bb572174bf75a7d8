"""What Render Views and Compare render, decided before anything starts.

:func:`plan_view_shots` plans ``scene.nerf.render_source`` (the active camera, the selected
cameras, or the active camera over a frame range) with the shared planner (``scene.shots``): each
camera's pose and exact intrinsics at the scene's resolution (or the camera's own, Camera > NeRF),
named after the camera and frame (the image's file name). :func:`check_run` checks the run folder
through the engine's one reader of it (``RunFolder``). Both raise
:class:`~..scene.scene_io.SceneError` with what to do, and leave the scene as they found it.

A render folder gets ``cameras.json`` (what the engine renders) and ``blender_views.json`` (which
camera and frame each image belongs to: what Import View reads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..nerf_engine.data.dataset import read_split, write_transforms
from ..nerf_engine.data.fileio import write_json_atomic
from ..nerf_engine.data.run_folder import RunFolder, RunFolderError, SceneBounds
from ..scene import geometry, shots
from ..scene.paths import GENERATOR, folder_setting
from ..scene.scene_io import SceneError
from ..scene.shots import Shot
from ..scene.units import length

VIEWS_FILE = "blender_views.json"
CAMERAS_FILE = "cameras.json"
REFUSALS = shots.Refusals(
    no_selection="No camera is selected: select the cameras to render.",
    no_active="The scene has no active camera: add a camera and make it active (Ctrl+Numpad 0), "
    "or set Cameras to Selected Cameras.",
    no_active_at="The scene has no active camera at frame {frame}: add a camera and make it "
    "active (Ctrl+Numpad 0), or set Cameras to Selected Cameras.",
    empty_range="The frame range {start}–{end} is empty: set End after Start.",
)


@dataclass(frozen=True)
class RunInfo:
    """A trained run folder: its latest checkpoint and the dataset it was trained on."""

    folder: RunFolder
    checkpoint: Path
    dataset_dir: Path | None
    train_size: tuple[int, int] | None  # (w, h) of its training images, when readable
    bounds: SceneBounds | None = None  # the scene box and ray range it was trained in

    @property
    def run_dir(self) -> Path:
        return self.folder.path


def check_run(run_setting: str) -> RunInfo:
    """The run folder of the ``run_dir`` setting, refused without a trained checkpoint."""
    run = folder_setting(run_setting, "Run Folder")
    folder = RunFolder(run)
    try:
        checkpoint = folder.latest_checkpoint()
    except OSError:
        checkpoint = None
    if checkpoint is None:
        raise SceneError(
            f"Run Folder '{run}' holds no trained NeRF (no checkpoints/step_*.pt): train one "
            "first (Training panel) or choose the folder of a trained run."
        )
    try:
        bounds = folder.scene_bounds()
        dataset = folder.dataset_dir()
    except RunFolderError as exc:
        raise SceneError(
            f"Run Folder '{run}' has no readable config.json ({exc}): is it a training run?"
        ) from exc
    size = None
    try:
        if dataset is not None:
            first = read_split(dataset, "train").frames[0].intrinsics
            size = (first.w, first.h)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a run without its dataset still renders; only the size check is skipped
    return RunInfo(folder, checkpoint, dataset, size, bounds)


def plan_view_shots(context: bpy.types.Context) -> list[Shot]:
    """The shots of ``scene.nerf.render_source``; raises SceneError."""
    scene = context.scene
    nerf = scene.nerf
    frames = shots.frame_range(
        scene,
        nerf.render_use_scene_range,
        nerf.render_frame_start,
        nerf.render_frame_end,
        nerf.render_frame_step,
    )
    return shots.plan_shots(context, nerf.render_source, REFUSALS, frames=frames)


def range_notes(scene: bpy.types.Scene, planned: list[Shot], run: RunInfo) -> list[str]:
    """Warnings for cameras that see part of the run's scene box nearer or farther than the
    ray range the engine renders (its training cameras' near–far): that part comes out empty.
    Distances in ``scene``'s units."""
    if run.bounds is None:
        return []
    box = run.bounds
    notes, seen = [], set()
    for shot in planned:
        if shot.camera in seen:
            continue
        near, far = geometry.near_far(box.aabb, shot.camera_to_world[None], margin=0.0)
        if near < box.near or far > box.far:
            seen.add(shot.camera)
            notes.append(
                f"Camera '{shot.camera}' sees the scene box {length(scene, near)}–"
                f"{length(scene, far)} away, but the run renders only {length(scene, box.near)}–"
                f"{length(scene, box.far)} from a camera (as far as its training cameras saw): "
                "parts of the NeRF may be cut off; move the camera into that range."
            )
    return notes


def check_sizes(planned: list[Shot], run: RunInfo) -> None:
    """Compare measures the NeRF at the size it was trained at: refuse other sizes."""
    if run.train_size is None:
        return
    w, h = run.train_size
    for shot in planned:
        if (shot.intrinsics.w, shot.intrinsics.h) != (w, h):
            raise SceneError(
                f"The run in '{run.run_dir}' was trained on {w}×{h} images but camera "
                f"'{shot.camera}' renders {shot.intrinsics.w}×{shot.intrinsics.h} here: set the "
                f"resolution to {w}×{h} at 100%, or choose the run trained on this scene."
            )


def write_cameras(path: Path, planned: list[Shot]) -> None:
    """The engine's cameras file: a transforms file whose frames need no images."""
    frames = [shot.to_frame() for shot in planned]
    write_transforms(path, frames, extra={"generator": GENERATOR})


def write_views(folder: Path, planned: list[Shot], run: RunInfo) -> None:
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
        for s in planned
    ]
    manifest = {"generator": GENERATOR, "run": str(run.run_dir), "views": views}
    if run.bounds is not None:
        manifest["aabb"] = run.bounds.aabb.tolist()
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
