"""Train NeRF from the panel: ``Scene.nerf`` -> :class:`~.job.TrainRequest` ->
:class:`~.job.TrainJob`, and the job's numbers and preview images back onto the scene.

:func:`start` checks the settings, finds the engine's Python (``preferences.find_engine``),
starts the trainer and hands the job to the watcher under the scene's key: the timer (UI) or
``watcher.run_blocking`` (headless ``execute()``) then calls :func:`update_scene` after every
poll and :func:`finish_scene` once at the end. One job per scene: ``job_running`` is set for as
long as the job is watched.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from .. import properties_devices as devices
from ..jobs import watcher
from ..nerf_engine.data.run_folder import RunFolder
from ..preferences import find_engine, get_preferences
from ..scene import scene_io
from ..scene.paths import check_writable, dataset_folder, folder_setting
from ..scene.scene_io import SceneError
from .job import TrainJob, TrainRequest, parse_extra_args

KIND = "train"
PREVIEW_NAME = "NeRF Preview"
TARGET_NAME = "NeRF Ground Truth"


def running_job(scene: bpy.types.Scene) -> TrainJob | None:
    """The scene's training job while it runs."""
    return watcher.get(watcher.scene_key(KIND, scene))


def checkpoints(run: Path) -> list[Path]:
    """The run folder's checkpoints, oldest first (none when it cannot be listed)."""
    try:
        return RunFolder(run).checkpoints()
    except OSError:  # unreadable: check_writable says what is wrong with the folder
        return []


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
        count, launcher = devices.chosen(nerf.devices, get_preferences(bpy.context))
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
        devices=count,
        launcher=launcher,
    )


def start(context: bpy.types.Context, *, resume: bool = False) -> TrainJob:
    """Start training the scene's settings; the job is watched until it ends. Raises SceneError,
    EngineSetupError or JobError (nothing started) with a message for the user."""
    scene = context.scene
    watcher.ensure_idle(scene)
    request = request_from_scene(scene, resume=resume)
    engine = find_engine(context)
    job = TrainJob(request, engine.executable, env=engine.env())
    job.start()
    watcher.watch_scene(scene, KIND, job, update=update_scene, finish=finish_scene)
    nerf = scene.nerf
    for name in ("train_step", "train_total_steps"):
        setattr(nerf, name, 0)
    for name in ("train_loss", "train_psnr", "train_rays_per_s", "train_eta_s"):
        setattr(nerf, name, 0.0)
    return job


def update_scene(scene: bpy.types.Scene, job: TrainJob, events: list[dict]) -> None:
    """Copy the job's latest numbers into ``scene.nerf``; reload previews after a preview event."""
    nerf = scene.nerf
    nerf.train_step = job.step
    nerf.train_total_steps = job.total_steps  # 0: the time budget ends the run
    nerf.train_loss = job.loss or 0.0
    nerf.train_psnr = job.psnr or 0.0
    nerf.train_rays_per_s = job.rays_per_s or 0.0
    nerf.train_eta_s = job.eta_s or 0.0
    if any(event["event"] == "preview" for event in events):
        show_previews(nerf, job)


def finish_scene(scene: bpy.types.Scene, job: TrainJob) -> tuple[str, str]:
    """The job ended: final numbers and previews; (report level, message)."""
    update_scene(scene, job, [])
    show_previews(scene.nerf, job)
    return watcher.LEVELS[job.state], job.message


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
