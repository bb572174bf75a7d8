"""Compare: the NeRF against Blender's own renders of the same cameras.

Blender renders the ground truth (``RUN/compare/ground_truth/``, with object masks) right away;
then a background engine job renders the NeRF for the same cameras (``RUN/compare/nerf/``) and
runs ``python -m nerf_engine compare``, which writes ``RUN/compare/report.json`` (PSNR and
SSIM per view and mean, also inside the object mask), ``side_by_side*.png`` and
``training_curve.png``. At the end the numbers go into ``scene.nerf.compare_*`` and the images
into Blender.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import bpy

from ..jobs import watcher
from ..jobs.engine_job import EngineJob
from ..preferences import find_engine
from ..scene import scene_io
from ..scene.paths import check_writable
from ..views import plan
from ..views.jobs import RenderRequest, views_job
from .ground_truth import render_ground_truth

KIND = "compare"
SIDE_BY_SIDE_NAME = "NeRF Side by Side"
CURVE_NAME = "NeRF Training Curve"


@dataclass(frozen=True)
class CompareRequest:
    """Render the NeRF for the cameras whose ground truth is in ``gt_dir``, then compare."""

    run_dir: str
    cameras: str
    gt_dir: str
    nerf_dir: str
    out_dir: str
    device: str = "auto"

    def commands(self, python: str) -> list[list[str]]:
        """The two argument lists (render, then compare) that run this with ``python``."""
        render = RenderRequest(self.run_dir, self.cameras, self.nerf_dir, "none", self.device)
        compare = [
            python, "-m", "nerf_engine", "compare", "--gt", self.gt_dir, "--nerf", self.nerf_dir,
            "--run", self.run_dir, "--out", self.out_dir, "--events", "jsonl",
        ]  # fmt: skip
        return [render.command(python), compare]

    @property
    def report_path(self) -> Path:
        return Path(self.out_dir) / "report.json"


def start(context: bpy.types.Context) -> EngineJob:
    """Check, render the ground truth, start the engine's part. Raises SceneError,
    EngineSetupError or JobError; the scene is left as it was in every case."""
    scene = context.scene
    nerf = scene.nerf
    watcher.ensure_idle(scene)
    run = plan.check_run(nerf.run_dir)
    shots = plan.plan_view_shots(context)
    plan.check_sizes(shots, run)
    out = run.folder.compare_dir
    check_writable(out, "run folder")
    engine = find_engine(context)
    for stale in ("ground_truth", "nerf"):
        shutil.rmtree(out / stale, ignore_errors=True)
    (out / "report.json").unlink(missing_ok=True)
    subject = scene_io.subject_objects(context, nerf.subject)
    nerf.job_status = f"Compare: Blender renders {len(shots)} ground-truth views…"
    render_ground_truth(
        context, shots, out / "ground_truth", transparent=nerf.film_transparent, subject=subject
    )
    plan.write_cameras(out / plan.CAMERAS_FILE, shots)
    request = CompareRequest(
        run_dir=str(run.run_dir),
        cameras=str(out / plan.CAMERAS_FILE),
        gt_dir=str(out / "ground_truth"),
        nerf_dir=str(out / "nerf"),
        out_dir=str(out),
        device=nerf.device.lower(),
    )
    job = views_job(request.commands(engine.executable), engine, len(shots), "Compare")
    job.notes = plan.range_notes(scene, shots, run)
    job.start()
    watcher.watch_scene(
        scene, KIND, job, finish=lambda scene, job: finish_scene(scene, job, request)
    )
    return job


def finish_scene(
    scene: bpy.types.Scene, job: EngineJob, request: CompareRequest
) -> tuple[str, str]:
    """The job ended: numbers into ``scene.nerf``, images into Blender; (level, message)."""
    if job.state != "finished":
        return watcher.LEVELS[job.state], job.message
    report = json.loads(request.report_path.read_text(encoding="utf-8"))
    nerf = scene.nerf
    for key in ("psnr", "ssim", "psnr_mask", "ssim_mask"):
        value = report.get(key)
        setattr(nerf, f"compare_{key}", value if value is not None else 0.0)
    nerf.compare_views = int(report["n_views"])
    nerf.compare_report = str(request.report_path)
    out = Path(request.out_dir)
    nerf.compare_image = scene_io.show_image_file(out / report["side_by_side"], SIDE_BY_SIDE_NAME)
    if report.get("training_curve"):
        nerf.curve_image = scene_io.show_image_file(out / report["training_curve"], CURVE_NAME)
    # the engine's warnings: the report's notes, and the render's (an older checkpoint used)
    notes = "".join(f" Note: {warning.rstrip('.')}." for warning in job.warnings)
    return "INFO", summary(report, request.report_path) + notes


def summary(report: dict, path: Path) -> str:
    """One line: the mean numbers of a Compare report."""

    def number(key: str, fmt: str) -> str:
        value = report.get(key)
        return format(value, fmt) if value is not None else "n/a"

    return (
        f"Compared {report['n_views']} view(s): PSNR {number('psnr', '.2f')} dB, SSIM "
        f"{number('ssim', '.3f')}; on the object PSNR {number('psnr_mask', '.2f')} dB, SSIM "
        f"{number('ssim_mask', '.3f')} ({path})."
    )
