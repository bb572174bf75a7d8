"""Render Views: the trained NeRF seen through Blender cameras.

``scene.nerf`` -> :func:`~.view_plan.plan_shots` -> ``RENDER/cameras.json`` ->
``python -m nerf_engine render RUN --cameras ... --out RENDER`` as a background job (progress from
its ``[i/n]`` lines, Cancel stops it). When it finished, ``RENDER/blender_views.json`` records which
camera and frame each image shows (Import View reads it) and the first image is shown in the panel.
"""

from __future__ import annotations

import json
from pathlib import Path

import bpy

from . import engine_python, scene_io, scene_jobs, view_plan
from .export_plan import check_writable, folder_setting
from .training import find_engine
from .view_jobs import RenderRequest, ViewsJob

KIND = "render"
RENDER_IMAGE_NAME = "NeRF Render"
STALE = (view_plan.VIEWS_FILE, "render.json")


def start(context: bpy.types.Context) -> ViewsJob:
    """Check everything, then start rendering; the job is watched until it ends. Raises
    SceneError, EngineSetupError or JobError (nothing started, nothing changed)."""
    scene = context.scene
    nerf = scene.nerf
    scene_jobs.ensure_idle(scene)
    run = view_plan.check_run(nerf.run_dir)
    shots = view_plan.plan_shots(context, nerf.render_source)
    out = folder_setting(nerf.render_dir, "Render Folder")
    check_writable(out, "render folder")
    engine = find_engine(context)
    for name in STALE:  # an unfinished render must not look like a finished one
        (out / name).unlink(missing_ok=True)
    view_plan.write_cameras(out / view_plan.CAMERAS_FILE, shots)
    request = RenderRequest(
        run_dir=str(run.run_dir),
        cameras=str(out / view_plan.CAMERAS_FILE),
        out_dir=str(out),
        depth="png16" if nerf.render_depth else "none",
        device=nerf.device.lower(),
    )
    job = ViewsJob(
        [request.command(engine.executable)],
        len(shots),
        label="Render Views",
        env=engine.env(),
        cwd=engine_python.addon_dir(),
    )
    job.notes = view_plan.range_notes(shots, run)
    job.start()

    def finish(scene: bpy.types.Scene, job: ViewsJob) -> tuple[str, str]:
        return finish_scene(scene, job, shots, run, out)

    scene_jobs.watch(scene, KIND, job, finish)
    return job


def finish_scene(
    scene: bpy.types.Scene,
    job: ViewsJob,
    shots: list[view_plan.Shot],
    run: view_plan.RunInfo,
    out: Path,
) -> tuple[str, str]:
    """The job ended: record the views, show the first one; (report level, message)."""
    if job.state != "finished":
        return scene_jobs.LEVELS[job.state], job.message
    manifest = json.loads((out / "render.json").read_text(encoding="utf-8"))
    view_plan.write_views(out, shots, run)
    first = out / f"{shots[0].name}.png"
    if first.is_file():
        scene.nerf.render_image = scene_io.show_image_file(first, RENDER_IMAGE_NAME)
    count = len(manifest.get("views", []))
    return "INFO", (
        f"Rendered {count} view{'s' if count != 1 else ''} of the NeRF at step "
        f"{manifest.get('step', '?')} into '{out}'."
    )
