"""Train NeRF from the panel: ``Scene.nerf`` -> :class:`~.train_job.TrainRequest` ->
:class:`~.train_job.TrainJob`, and the job's numbers and preview images back onto the scene.

:func:`start` checks the settings, finds the engine's Python (``engine_python``), starts the
trainer and hands the job to ``background`` under the scene's key: the timer (UI) or
``background.run_blocking`` (headless ``execute()``) then calls :func:`update_scene` after every
poll and :func:`finish_scene` once at the end. One job per scene: ``job_running`` is set for as
long as the job is watched.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from . import background, engine_python, scene_io
from .export_plan import check_writable, dataset_folder, folder_setting
from .jobs import ProcessJob
from .preferences import ADDON_ID, get_preferences
from .scene_io import SceneError
from .train_job import TrainJob, TrainRequest, parse_extra_args

PREVIEW_NAME = "NeRF Preview"
TARGET_NAME = "NeRF Ground Truth"
LEVELS = {"finished": "INFO", "cancelled": "WARNING", "failed": "ERROR"}


def job_key(scene: bpy.types.Scene) -> str:
    return f"train:{scene.session_uid}"


def running_job(scene: bpy.types.Scene) -> TrainJob | None:
    """The scene's training job while it runs."""
    return background.get(job_key(scene))


def checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("step_*.pt"))


def request_from_scene(scene: bpy.types.Scene, *, resume: bool = False) -> TrainRequest:
    """The plain-data training request from ``scene.nerf``; SceneError says what to fix."""
    nerf = scene.nerf
    dataset = dataset_folder(nerf.dataset_dir)
    if not any((dataset / name).is_file() for name in ("transforms_train.json", "transforms.json")):
        raise SceneError(
            f"Dataset Folder '{dataset}' has no transforms_train.json: export a dataset first "
            "(Dataset panel) or choose the folder of one."
        )
    run = folder_setting(nerf.run_dir, "Run Folder")
    found = checkpoints(run)
    if resume and not found:
        raise SceneError(f"Run Folder '{run}' has no checkpoint to resume; press Train instead.")
    if not resume and found:
        raise SceneError(
            f"Run Folder '{run}' already holds a trained run ({found[-1].name}): press Resume to "
            "continue it, or choose another Run Folder."
        )
    try:
        extra = parse_extra_args(nerf.train_extra_args)
    except ValueError as exc:
        raise SceneError(str(exc)) from exc
    check_writable(run, "run folder")  # last: a refused request leaves no folder behind
    return TrainRequest(
        dataset_dir=str(dataset),
        run_dir=str(run),
        preset=nerf.preset.lower(),
        steps=nerf.train_steps,
        max_seconds=nerf.train_seconds,
        device=nerf.device.lower(),
        resume=resume,
        extra_args=extra,
    )


def find_engine(context: bpy.types.Context) -> engine_python.EnginePython:
    """The interpreter from the preferences, Blender's own, or Install Dependencies'."""
    prefs = get_preferences(context)
    python_path = bpy.path.abspath(prefs.python_path) if prefs and prefs.python_path else ""
    return engine_python.resolve(python_path, engine_python.dependencies_dir(ADDON_ID))


def start(context: bpy.types.Context, *, resume: bool = False) -> TrainJob:
    """Start training the scene's settings; the job is watched until it ends. Raises SceneError,
    EngineSetupError or JobError (nothing started) with a message for the user."""
    scene = context.scene
    if scene.nerf.job_running or running_job(scene) is not None:
        raise SceneError("A job is already running in this scene: wait for it or cancel it.")
    request = request_from_scene(scene, resume=resume)
    engine = find_engine(context)
    job = TrainJob(request, engine.executable, env=engine.env())
    job.start()
    uid = scene.session_uid
    background.watch(
        job_key(scene),
        job,
        lambda job, events: _with_scene(uid, update_scene, job, events),
        lambda job: _with_scene(uid, finish_scene, job) or (LEVELS[job.state], job.message),
    )
    _reset(scene.nerf, job)
    return job


def run_blocking(scene: bpy.types.Scene) -> tuple[str, str]:
    """Headless: wait for the scene's job; (report level, message)."""
    return background.run_blocking(job_key(scene))


def update_scene(scene: bpy.types.Scene, job: TrainJob, events: list[dict]) -> None:
    """Copy the job's latest numbers into ``scene.nerf``; reload previews after a preview event."""
    nerf = scene.nerf
    nerf.train_step = job.step
    nerf.train_total_steps = 0 if job.request.until_budget else job.total_steps
    nerf.train_loss = job.loss or 0.0
    nerf.train_psnr = job.psnr or 0.0
    nerf.train_rays_per_s = job.rays_per_s or 0.0
    nerf.train_eta_s = job.eta_s or 0.0
    nerf.job_progress = job.progress
    nerf.job_status = status_line(job)
    if any(event["event"] == "preview" for event in events):
        show_previews(nerf, job)


def finish_scene(scene: bpy.types.Scene, job: TrainJob) -> tuple[str, str]:
    """The job ended: final numbers, previews, status; (report level, message)."""
    update_scene(scene, job, [])
    show_previews(scene.nerf, job)
    nerf = scene.nerf
    nerf.job_running = False
    nerf.job_status = job.message
    return LEVELS[job.state], job.message


def show_previews(nerf: bpy.types.PropertyGroup, job: TrainJob) -> None:
    """Load (or reload) the run's latest preview and its ground truth as Blender images."""
    for attr, path, name in (
        ("preview_image", job.preview_path, PREVIEW_NAME),
        ("target_image", job.target_path, TARGET_NAME),
    ):
        if not path or not Path(path).is_file():
            continue
        try:
            setattr(nerf, attr, scene_io.show_image_file(Path(path), name))
        except RuntimeError:  # unreadable right now: keep the last image, training goes on
            continue


def status_line(job: TrainJob) -> str:
    if job.done:
        return job.message
    if job.stop_requested:
        return "Stopping: the trainer saves a checkpoint…"
    if job.total_steps == 0:
        return "Starting the trainer (loading PyTorch)…"
    line = f"Training: step {job.step} of {job.total_steps}"
    if job.request.until_budget:  # the step count is only a ceiling: say the time instead
        budget = job.request.max_seconds
        line = f"Training: step {job.step}, {duration(job.elapsed_s or 0)} of {duration(budget)}"
    return f"{line} ({job.warnings[-1]})" if job.warnings else line


def duration(seconds: float) -> str:
    """``1h 02m``, ``3m 05s``, ``12s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _reset(nerf: bpy.types.PropertyGroup, job: ProcessJob) -> None:
    nerf.job_running = True
    nerf.job_progress = 0.0
    nerf.job_status = status_line(job)
    for name in ("train_step", "train_total_steps"):
        setattr(nerf, name, 0)
    for name in ("train_loss", "train_psnr", "train_rays_per_s", "train_eta_s"):
        setattr(nerf, name, 0.0)


def _with_scene(uid: int, function, *args):
    """Call ``function(scene, *args)`` for the scene with session ``uid``, if it still exists."""
    for scene in bpy.data.scenes:
        if scene.session_uid == uid:
            return function(scene, *args)
    return None
