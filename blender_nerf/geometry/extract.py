"""Extract Mesh: ``scene.nerf`` -> :class:`MeshRequest` -> ``python -m nerf_engine mesh RUN --out
RUN/mesh.ply`` as a background engine job (watched like every other; Cancel stops it) -> when it
finished, the mesh object in the scene (``mesh_object``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from ..jobs import engine_python, watcher
from ..jobs.engine_job import EngineJob
from ..nerf_engine.data.mesh_ply import read_mesh_ply
from ..preferences import find_engine
from ..scene.paths import check_writable
from ..views import plan
from .mesh_object import build_mesh_object

KIND = "mesh"


@dataclass(frozen=True)
class MeshRequest:
    """Extract the surface of the run's latest checkpoint into ``out`` (a .ply file)."""

    run_dir: str
    out: str
    resolution: int = 256
    threshold: float = 0.0  # 0: the engine's automatic threshold
    floater_size: float = 0.02  # 0: keep every piece
    device: str = "auto"

    def command(self, python: str) -> list[str]:
        """The argument list (never a shell string) that runs this request with ``python``."""
        command = [
            python, "-m", "nerf_engine", "mesh", self.run_dir, "--out", self.out,
            "--resolution", str(self.resolution), "--floater-size", repr(self.floater_size),
            "--device", self.device, "--events", "jsonl",
        ]  # fmt: skip
        if self.threshold > 0:
            command += ["--threshold", repr(self.threshold)]
        return command


def start(context: bpy.types.Context) -> EngineJob:
    """Check everything, then start the extraction; the job is watched until it ends. Raises
    SceneError, EngineSetupError or JobError (nothing started, nothing changed)."""
    scene = context.scene
    nerf = scene.nerf
    watcher.ensure_idle(scene)
    run = plan.check_run(nerf.run_dir)
    check_writable(run.run_dir, "run folder")
    engine = find_engine(context)
    out = run.folder.mesh_path
    out.unlink(missing_ok=True)  # an unfinished extraction must not look like a finished one
    settings = nerf.mesh
    request = MeshRequest(
        run_dir=str(run.run_dir),
        out=str(out),
        resolution=settings.resolution,
        threshold=settings.threshold,
        floater_size=0.02 if settings.remove_floaters else 0.0,
        device=nerf.device.lower(),
    )
    job = EngineJob(
        [request.command(engine.executable)],
        label="Extract Mesh",
        env=engine.env(),
        cwd=engine_python.addon_dir(),
        grace_s=5.0,
        unit="slice",
    )
    job.start()

    def finish(scene: bpy.types.Scene, job: EngineJob) -> tuple[str, str]:
        return finish_scene(scene, job, run.run_dir, out)

    watcher.watch_scene(scene, KIND, job, finish=finish)
    return job


def finish_scene(
    scene: bpy.types.Scene, job: EngineJob, run_dir: Path, out: Path
) -> tuple[str, str]:
    """The job ended: build the mesh object from its PLY; (report level, message)."""
    if job.state != "finished":
        return watcher.LEVELS[job.state], job.message
    arrays = read_mesh_ply(out)
    settings = scene.nerf.mesh
    ob = build_mesh_object(
        scene, arrays, run_dir, decimate=settings.decimate, smooth=settings.smooth
    )
    return "INFO", (
        f"Extracted '{ob.name}': {len(arrays.vertices)} vertices, {len(arrays.faces)} "
        f"triangles (saved as '{out}').{job.warnings_text()}"
    )
