"""Render Views: the trained NeRF seen through Blender cameras.

``scene.nerf`` -> :func:`~.plan.plan_view_shots` -> ``RENDER/cameras.json`` ->
``python -m nerf_engine render RUN --cameras ... --out RENDER`` as a background engine job
(watched like every other; Cancel stops it). When it finished, ``RENDER/blender_views.json``
records which camera and frame each image shows (Import View reads it) and the first image is
shown in the panel.
"""

from __future__ import annotations

import json
from pathlib import Path

import bpy

from ..jobs import watcher
from ..jobs.engine_job import EngineJob
from ..preferences import find_engine
from ..scene import scene_io
from ..scene.paths import check_writable, folder_setting
from ..scene.shots import Shot
from . import plan
from .jobs import RenderRequest, views_job

KIND = "render"
RENDER_IMAGE_NAME = "NeRF Render"
STALE = (plan.VIEWS_FILE, "render.json")


def start(context: bpy.types.Context) -> EngineJob:
    """Check everything, then start rendering; the job is watched until it ends. Raises
    SceneError, EngineSetupError or JobError (nothing started, nothing changed)."""
    scene = context.scene
    nerf = scene.nerf
    watcher.ensure_idle(scene)
    run = plan.check_run(nerf.run_dir)
    shots = plan.plan_view_shots(context)
    out = folder_setting(nerf.render_dir, "Render Folder")
    check_writable(out, "render folder")
    engine = find_engine(context)
    for name in STALE:  # an unfinished render must not look like a finished one
        (out / name).unlink(missing_ok=True)
    plan.write_cameras(out / plan.CAMERAS_FILE, shots)
    request = RenderRequest(
        run_dir=str(run.run_dir),
        cameras=str(out / plan.CAMERAS_FILE),
        out_dir=str(out),
        depth="png16" if nerf.render_depth else "none",
        device=nerf.device.lower(),
    )
    job = views_job([request.command(engine.executable)], engine, len(shots), "Render Views")
    job.notes = plan.range_notes(scene, shots, run)
    job.start()

    def finish(scene: bpy.types.Scene, job: EngineJob) -> tuple[str, str]:
        return finish_scene(scene, job, shots, run, out)

    watcher.watch_scene(scene, KIND, job, finish=finish)
    return job


def finish_scene(
    scene: bpy.types.Scene,
    job: EngineJob,
    shots: list[Shot],
    run: plan.RunInfo,
    out: Path,
) -> tuple[str, str]:
    """The job ended: record the views, show the first one; (report level, message)."""
    if job.state != "finished":
        return watcher.LEVELS[job.state], job.message
    manifest = json.loads((out / "render.json").read_text(encoding="utf-8"))
    plan.write_views(out, shots, run)
    first = out / f"{shots[0].name}.png"
    if first.is_file():
        scene.nerf.render_image = scene_io.show_image_file(first, RENDER_IMAGE_NAME)
    count = len(manifest.get("views", []))
    return "INFO", (
        f"Rendered {count} view{'s' if count != 1 else ''} of the NeRF at step "
        f"{manifest.get('step', '?')} into '{out}'.{job.warnings_text()}"
    )
