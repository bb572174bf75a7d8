"""The one watcher of every job that outlives the operator that started it (Train, Render Views,
Compare, Install Dependencies): a registry polled by a ``bpy.app.timers`` function on Blender's
main thread.

Each watched job comes with two callbacks, both run on the main thread: ``update(job, events)``
after every poll (copy numbers into Blender data) and ``finish(job) -> (level, message)`` once when
it ended (final state; the message is reported). Headless, :func:`run_blocking` drives the same
callbacks in a loop, so scripts and the panel go through one code path.

Scene jobs (an :class:`~.engine_job.EngineJob` of a scene: Train, Render Views, Compare) run one
at a time per scene (:func:`ensure_idle`) under ``<kind>:<scene uid>``; :func:`watch_scene` copies
each poll's progress and status into ``scene.nerf.job_progress``/``job_status``, and at the end
clears ``job_running`` and reports how it went (:data:`LEVELS`).

Loading another file stops every job (their scenes are gone; Resume picks a run up again);
disabling the add-on or quitting Blender stops them too (:func:`shutdown`, ``atexit``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import bpy

from ..scene.scene_io import SceneError
from . import process
from .engine_job import EngineJob
from .process import ProcessJob

TICK_S = 0.25  # timer interval while a job runs
POLL_S = 0.05  # headless polling interval
SHUTDOWN_TIMEOUT_S = 10.0  # graceful-stop budget when the add-on goes away

_LOG = logging.getLogger(__name__)
Update = Callable[[ProcessJob, list[dict]], None]
Finish = Callable[[ProcessJob], tuple[str, str]]
# Scene callbacks: ``update(scene, job, events)`` after each poll, ``finish(scene, job)`` once.
SceneUpdate = Callable[[bpy.types.Scene, EngineJob, list[dict]], None]
SceneFinish = Callable[[bpy.types.Scene, EngineJob], tuple[str, str]]
LEVELS = {"finished": "INFO", "cancelled": "WARNING", "failed": "ERROR"}  # report level by state


@dataclass
class Watch:
    job: ProcessJob
    update: Update
    finish: Finish


# Watched jobs by key ("train:<scene uid>", "render:…", "compare:…", "install"). Module state on
# purpose: a timer function and the load/exit handlers must all find the same jobs.
_WATCHED: dict[str, Watch] = {}
_DETACHED: list[ProcessJob] = []  # stopping after a file load; reaped by the timer


def get(key: str) -> ProcessJob | None:
    """The watched job under ``key`` while it runs."""
    watch = _WATCHED.get(key)
    return watch.job if watch is not None and not watch.job.done else None


def scene_key(kind: str, scene: bpy.types.Scene) -> str:
    """The key of a scene's job of ``kind`` ("train", "render", "compare")."""
    return f"{kind}:{scene.session_uid}"


def scene_job(scene: bpy.types.Scene) -> tuple[str, ProcessJob] | None:
    """(key, job) of the scene's running job of any kind; one runs at a time per scene."""
    suffix = f":{scene.session_uid}"
    for key, watch in _WATCHED.items():
        if key.endswith(suffix) and not watch.job.done:
            return key, watch.job
    return None


def watch(key: str, job: ProcessJob, update: Update, finish: Finish) -> None:
    """Poll ``job`` from the timer until it ends. One job per key."""
    if get(key) is not None:
        raise process.JobError(f"{key}: a job is already running")
    _WATCHED[key] = Watch(job, update, finish)
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_S, persistent=True)


def ensure_idle(scene: bpy.types.Scene) -> None:
    """Refuse to start a second job in a scene (an export, or any watched scene job)."""
    if scene.nerf.job_running or scene_job(scene) is not None:
        raise SceneError("A job is already running in this scene: wait for it or cancel it.")


def watch_scene(
    scene: bpy.types.Scene,
    kind: str,
    job: EngineJob,
    *,
    update: SceneUpdate | None = None,
    finish: SceneFinish | None = None,
) -> None:
    """Watch a started scene job under ``<kind>:<scene uid>``: after every poll its progress
    and status into ``scene.nerf``, then ``update(scene, job, events)``; once at the end
    ``finish(scene, job)`` (default: the job's own message, at the level of its state)."""
    uid = scene.session_uid

    def on_update(job: EngineJob, events: list[dict]) -> None:
        with_scene(uid, _show_progress, job, events, update)

    def on_finish(job: EngineJob) -> tuple[str, str]:
        outcome = with_scene(uid, _finish_scene, job, finish)
        return outcome or (LEVELS[job.state], job.message)

    watch(scene_key(kind, scene), job, on_update, on_finish)
    nerf = scene.nerf
    nerf.job_running = True
    nerf.job_progress = 0.0
    nerf.job_status = job.status()


def with_scene(uid: int, function, *args):
    """Call ``function(scene, *args)`` for the scene with session ``uid``, if it still exists."""
    for scene in bpy.data.scenes:
        if scene.session_uid == uid:
            return function(scene, *args)
    return None


def _show_progress(scene, job: EngineJob, events: list[dict], update: SceneUpdate | None) -> None:
    scene.nerf.job_progress = job.progress
    scene.nerf.job_status = job.status()
    if update is not None:
        update(scene, job, events)


def _finish_scene(scene, job: EngineJob, finish: SceneFinish | None) -> tuple[str, str]:
    nerf = scene.nerf
    nerf.job_running = False
    nerf.job_progress = job.progress
    try:
        level, message = finish(scene, job) if finish else (LEVELS[job.state], job.message)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # its output is unreadable
        level, message = "ERROR", f"{job.label} failed: could not read its results ({exc})"
    nerf.job_status = message
    return level, message


def run_blocking(key: str) -> tuple[str, str]:
    """Headless: poll the job watched under ``key`` until it ends, then finish it. Stops it on
    any exception (KeyboardInterrupt, a test's timeout) so that no child outlives the call."""
    watch = _WATCHED[key]
    job = watch.job
    try:
        while not job.done:
            watch.update(job, job.poll())
            if not job.done:
                time.sleep(POLL_S)
    except BaseException:
        job.cancel(SHUTDOWN_TIMEOUT_S)
        _finish(key)
        raise
    return _finish(key)


def run_scene_blocking(scene: bpy.types.Scene, kind: str) -> tuple[str, str]:
    """Headless: wait for the scene's job of ``kind``; (report level, message)."""
    return run_blocking(scene_key(kind, scene))


def tick() -> float | None:
    """The timer: poll every job, apply, finish and report the ended ones. Never raises."""
    for key in list(_WATCHED):
        watch = _WATCHED[key]
        try:
            watch.update(watch.job, watch.job.poll())
            if watch.job.done:
                _report(*_finish(key))
        except Exception as exc:  # a bug: stop the child rather than leave it unwatched
            _LOG.exception("watching %s", key)
            watch.job.request_stop()
            _WATCHED.pop(key, None)
            _DETACHED.append(watch.job)
            _report("ERROR", f"blender-nerf: internal error while watching a job: {exc}")
    for job in list(_DETACHED):
        job.poll()
        if job.done:
            _DETACHED.remove(job)
    redraw_sidebars()
    return TICK_S if (_WATCHED or _DETACHED) else None


def _finish(key: str) -> tuple[str, str]:
    watch = _WATCHED.pop(key)
    return watch.finish(watch.job)


def _report(level: str, message: str) -> None:
    """Put a job's outcome in the Info log and status bar (from a timer there is no operator),
    and make what its end changed in the scene (numbers, images) one undo step."""
    with contextlib.suppress(RuntimeError):  # an ERROR report raises after it is logged
        bpy.ops.nerf.job_report(level=level, message=message)
    if bpy.ops.ed.undo_push.poll():
        bpy.ops.ed.undo_push(message="NeRF job finished")


def redraw_sidebars() -> None:
    """Redraw the 3D Viewports (the NeRF tab) and the preferences: a job's state changed."""
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "PREFERENCES"):
                area.tag_redraw()


@bpy.app.handlers.persistent
def stop_on_load(*_args) -> None:
    """Before another file loads: stop every scene's job (the scene is about to go)."""
    for key in [k for k in _WATCHED if k != "install"]:
        watch = _WATCHED.pop(key)
        watch.job.request_stop()
        _DETACHED.append(watch.job)


@bpy.app.handlers.persistent
def running_after_undo(*_args) -> None:
    """After undo or redo: each scene's ``job_running`` says whether a job of it runs now. Train,
    Render Views and Compare started from the panel are undo steps taken while their job ran;
    going back to one must not bring back a job that has ended (the panel would stay locked)."""
    for scene in bpy.data.scenes:
        nerf = getattr(scene, "nerf", None)
        if nerf is not None and nerf.job_running != (scene_job(scene) is not None):
            nerf.job_running = scene_job(scene) is not None


def shutdown(timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
    """Stop every child process and wait for it (unregister, interpreter exit)."""
    process.stop_all(timeout)
    for key in list(_WATCHED):
        try:
            _finish(key)
        except Exception:  # Blender data may be half gone at exit; the children are stopped
            _LOG.exception("finishing %s", key)
    _DETACHED.clear()


UNDO_HANDLERS = (bpy.app.handlers.undo_post, bpy.app.handlers.redo_post)


def register() -> None:
    bpy.app.handlers.load_pre.append(stop_on_load)
    for handlers in UNDO_HANDLERS:
        handlers.append(running_after_undo)
    atexit.register(process.stop_all)


def unregister() -> None:
    shutdown()
    atexit.unregister(process.stop_all)
    if stop_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(stop_on_load)
    for handlers in UNDO_HANDLERS:
        if running_after_undo in handlers:
            handlers.remove(running_after_undo)
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
