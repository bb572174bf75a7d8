"""Training as an :class:`~..jobs.engine_job.EngineJob`: ``python -m nerf_engine train ...
--events jsonl``.

:class:`TrainRequest` is the plain-data form of the Training panel's settings (built from
``Scene.nerf`` by ``start.py``); :class:`TrainJob` runs it and keeps the latest numbers of each
engine event (step, loss, PSNR, rays/s, ETA, preview and checkpoint paths) on top of what every
engine job keeps (warnings, the error). No bpy here.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..jobs.engine_job import EngineJob, as_float, as_int

MANAGED_ARGS = ("--out", "--events", "--resume")  # the add-on sets these itself
NPROC_ARGS = ("--nproc-per-node", "--nproc_per_node")  # torchrun's processes per machine


@dataclass(frozen=True)
class TrainRequest:
    """What ``python -m nerf_engine train`` is asked to do (plain data from ``Scene.nerf``)."""

    dataset_dir: str
    run_dir: str
    preset: str = "preview"
    # 0: the preset's; with a time budget, as many as the budget allows (the engine then trains for
    # the whole budget, the learning rate decaying over it: a preset's own steps would stop
    # `preview` after ~3 minutes on a 2-core CPU, where 10 minutes measured 33.8 dB, not 29.5 dB)
    steps: int = 0
    max_seconds: float = 0.0  # 0: no budget
    device: str = "auto"
    resume: bool = False
    extra_args: tuple[str, ...] = ()  # e.g. ("--set", "batch_rays=1024")
    devices: int = 1  # training processes (one per GPU); more than 1: under torchrun
    launcher: tuple[str, ...] = ()  # a cluster's torchrun command (empty: torchrun here)

    def command(self, python: str) -> list[str]:
        """The argument list (never a shell string) that runs this request with ``python``."""
        cmd = [*self.launch(python), "-m", "nerf_engine", "train", self.dataset_dir]
        cmd += ["--out", self.run_dir]
        cmd += ["--events", "jsonl", "--device", self.device]
        if not self.resume:  # a resumed run keeps its own preset unless asked otherwise
            cmd += ["--preset", self.preset]
        if self.steps > 0:
            cmd += ["--steps", str(self.steps)]
        if self.max_seconds > 0:
            cmd += ["--max-seconds", f"{self.max_seconds:g}"]
        if self.resume:
            cmd.append("--resume")
        return cmd + list(self.extra_args)

    def launch(self, python: str) -> list[str]:
        """What starts the engine: ``python`` for one device; else torchrun — the cluster's
        command, or ``python -m torch.distributed.run --standalone`` on this computer — with
        ``--nproc-per-node`` (unless the cluster's command gives it)."""
        if self.devices <= 1 and not self.launcher:
            return [python]
        prefix = list(self.launcher) or [python, "-m", "torch.distributed.run", "--standalone"]
        if not any(arg.split("=")[0] in NPROC_ARGS for arg in prefix):
            prefix += ["--nproc-per-node", str(max(self.devices, 1))]
        return prefix


def parse_extra_args(text: str) -> tuple[str, ...]:
    """Split the "Extra Arguments" field like a shell would; refuse what the add-on manages."""
    try:
        args = tuple(shlex.split(text))
    except ValueError as exc:
        raise ValueError(f"Extra engine arguments: {exc} in {text!r}") from exc
    for arg in args:
        if arg.split("=", 1)[0] in MANAGED_ARGS:
            raise ValueError(
                f"Extra engine arguments: {arg.split('=', 1)[0]} is set by the panel "
                "(Run Folder, Resume); remove it."
            )
    return args


class TrainJob(EngineJob):
    """``python -m nerf_engine train ... --events jsonl``: the latest numbers of each event kind."""

    def __init__(
        self,
        request: TrainRequest,
        python: str,
        *,
        env: Mapping[str, str] | None = None,
        grace_s: float = 30.0,
    ):
        super().__init__(
            [request.command(python)],
            env=env,
            label="Training",
            grace_s=grace_s,
        )
        self.request = request
        self.started = False  # the engine's start event arrived (PyTorch and the data loaded)
        self.total_steps = 0  # the run's step count; 0: its time budget ends it
        self.budget_s = request.max_seconds  # the run's time budget (the start event's)
        self.loss: float | None = None
        self.psnr: float | None = None
        self.rays_per_s: float | None = None
        self.eta_s: float | None = None
        self.elapsed_s: float | None = None
        self.preview_path: str | None = None
        self.target_path: str | None = None
        self.checkpoint: str | None = None
        self.stopped: str | None = None  # the done event's reason
        self.final_psnr: float | None = None

    @property
    def progress(self) -> float:
        """0..1: steps done, or the time budget spent if that is further along."""
        if self.stopped in ("completed", "time_budget"):
            return 1.0
        fraction = self.step / self.total_steps if self.total_steps else 0.0
        if self.budget_s > 0 and self.elapsed_s:
            fraction = max(fraction, self.elapsed_s / self.budget_s)
        return min(1.0, max(0.0, fraction))

    def status(self) -> str:
        """One line for the panel: the step (or the time budget spent), the last warning."""
        if self.done:
            return self.message
        if self.stop_requested:
            return "Stopping: the trainer saves a checkpoint…"
        if not self.started:
            return "Starting the trainer (loading PyTorch)…"
        line = f"Training: step {self.step} of {self.total_steps}"
        if not self.total_steps:  # the time budget ends the run: say the time instead
            spent, budget = duration(self.elapsed_s or 0), duration(self.budget_s)
            line = f"Training: step {self.step}, {spent} of {budget}"
        return f"{line} ({self.warnings[-1]})" if self.warnings else line

    def on_event(self, record: dict) -> None:
        super().on_event(record)  # step, warnings, error
        kind = record["event"]
        if kind == "start":
            self.started = True
            self.total_steps = as_int(record.get("total_steps"))
            self.budget_s = as_float(record.get("max_seconds")) or self.budget_s
        elif kind == "progress":
            for key in ("loss", "psnr", "rays_per_s", "eta_s", "elapsed_s"):
                setattr(self, key, as_float(record.get(key)))
        elif kind == "preview":
            self.preview_path = record.get("latest") or record.get("path")
            self.target_path = record.get("target") or self.target_path
        elif kind == "checkpoint":
            self.checkpoint = record.get("path") or self.checkpoint
        elif kind == "done":
            self.stopped = str(record.get("stopped") or "completed")
            self.checkpoint = record.get("checkpoint") or self.checkpoint
            self.final_psnr = as_float(record.get("psnr"))

    def outcome(self, returncode: int) -> tuple[str, str]:
        if self.error:
            return super().outcome(returncode)  # "Training failed: <the engine's message>"
        # torchrun (several devices) exits 1 on the SIGTERM it forwards to the trainers, which
        # still save and report their stop: their done event is what counts then
        torchrun = self.request.devices > 1 or bool(self.request.launcher)
        ended = returncode == 0 or (torchrun and self.stopped in ("signal", "cancelled"))
        if self.stopped is not None and ended:
            if self.stopped in ("signal", "cancelled"):
                saved = Path(self.checkpoint).name if self.checkpoint else "a checkpoint"
                of = f" of {self.total_steps}" if self.total_steps else ""
                return "cancelled", (
                    f"Training stopped at step {self.step}{of}; {saved} is saved, Resume "
                    "continues from it."
                )
            return "finished", self.summary()
        if self.stop_requested:
            if self.killed:
                how = f"did not stop within {self.grace_s:g} s and was killed"
            elif not self.started:  # still loading: no signal handler yet
                how = "stopped while starting up"
            else:
                how = f"exited with status {returncode}"
            return "cancelled", (
                f"Training stopped: the trainer {how} before saving a checkpoint; Resume "
                "continues from the last periodic one, if any."
            )
        return "failed", f"Training failed: {self.failure_reason(returncode)}"

    def summary(self) -> str:
        why = " (time budget reached)" if self.stopped == "time_budget" else ""
        psnr = f", test PSNR {self.final_psnr:.2f} dB" if self.final_psnr is not None else ""
        text = f"Trained to step {self.step}{why} in '{self.request.run_dir}'{psnr}."
        return text + self.warnings_text()


def duration(seconds: float) -> str:
    """``1h 02m``, ``3m 05s``, ``12s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
