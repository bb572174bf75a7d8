"""Engine jobs that belong to a scene (Render Views, Compare; Train has its own module): one at
a time per scene, watched by ``background`` under ``<kind>:<scene uid>``, their progress copied
into ``scene.nerf.job_progress``/``job_status`` and their outcome reported."""

from __future__ import annotations

from collections.abc import Callable

import bpy

from . import background
from .scene_io import SceneError
from .view_jobs import ViewsJob

LEVELS = {"finished": "INFO", "cancelled": "WARNING", "failed": "ERROR"}
SceneFinish = Callable[[bpy.types.Scene, ViewsJob], tuple[str, str]]


def ensure_idle(scene: bpy.types.Scene) -> None:
    """Refuse to start a second job in a scene."""
    if scene.nerf.job_running or background.scene_job(scene) is not None:
        raise SceneError("A job is already running in this scene: wait for it or cancel it.")


def watch(scene: bpy.types.Scene, kind: str, job: ViewsJob, finish: SceneFinish) -> None:
    """Watch a started job: progress into ``scene.nerf`` after every poll, ``finish(scene, job)``
    once at the end (it returns the report's level and message)."""
    uid = scene.session_uid

    def on_update(job: ViewsJob, events: list[dict]) -> None:
        with_scene(uid, show_progress, job)

    def on_finish(job: ViewsJob) -> tuple[str, str]:
        outcome = with_scene(uid, _finish, job, finish)
        return outcome or (LEVELS[job.state], job.message)

    background.watch(background.scene_key(kind, scene), job, on_update, on_finish)
    nerf = scene.nerf
    nerf.job_running = True
    nerf.job_progress = 0.0
    nerf.job_status = job.status()


def run_blocking(scene: bpy.types.Scene, kind: str) -> tuple[str, str]:
    """Headless: wait for the scene's job of ``kind``; (report level, message)."""
    return background.run_blocking(background.scene_key(kind, scene))


def show_progress(scene: bpy.types.Scene, job: ViewsJob) -> None:
    scene.nerf.job_progress = job.progress
    scene.nerf.job_status = job.status()


def _finish(scene: bpy.types.Scene, job: ViewsJob, finish: SceneFinish) -> tuple[str, str]:
    nerf = scene.nerf
    nerf.job_running = False
    nerf.job_progress = job.progress
    try:
        level, message = finish(scene, job)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # its output is unreadable
        level, message = "ERROR", f"{job.label} failed: could not read its results ({exc})"
    nerf.job_status = message
    return level, message


def with_scene(uid: int, function, *args):
    """Call ``function(scene, *args)`` for the scene with session ``uid``, if it still exists."""
    for scene in bpy.data.scenes:
        if scene.session_uid == uid:
            return function(scene, *args)
    return None
