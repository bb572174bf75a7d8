"""Training: ``train(config, dataset_dir, run_dir, on_event=...)`` -> the run folder.

Read top to bottom: load the data and the scene box, build coarse + fine networks and Adam, then
loop — random rays from all training images, coarse and fine renders, MSE on both, an exponentially
decaying learning rate — with progress events, preview renders of a held-out view and atomic
checkpoints. ``resume=True`` continues the latest checkpoint with the same optimizer state, step
and random stream, so a stopped-and-resumed run equals an uninterrupted one. A NaN/inf loss rolls
back to the last good state with half the learning rate and a ``warning`` event (see ``guard``);
when that keeps happening training stops with :class:`~.guard.DivergedError`.

The run folder: ``config.json``, ``events.jsonl``, ``checkpoints/step_*.pt``, ``previews/*.png``,
``metrics.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import __version__
from ..checkpoint import (
    CheckpointError,
    build_model,
    checkpoint_path,
    list_checkpoints,
    prune_checkpoints,
    read_newest,
    remove_partial_checkpoints,
    save_checkpoint,
)
from ..config import TrainConfig, validate
from ..data.dataset import Frame, iter_rgba, read_split
from ..data.events import EventLog, stop_on_signals
from ..data.fileio import make_dir, write_json_atomic
from ..data.scene_box import SceneBox, scene_box
from ..eval.metrics import mse_to_psnr
from ..nerf.model import NeRF, autocast, render_rays
from ..nerf.rays import CameraTensors, PixelSampler, RayBounds
from ..runtime import (
    autocast_dtype,
    configure_process,
    configure_threads,
    enable_tf32,
    new_generator,
    rays_per_pass,
    resolve_device,
)
from .guard import DivergedError, LastGood
from .outputs import final_eval, preview_frame, write_preview, write_preview_target

OnEvent = Callable[[dict], None]


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    stopped: str  # "completed", "time_budget", "signal" or "cancelled"
    psnr: float | None  # mean test PSNR of the final evaluation, if one ran


@dataclass
class TrainState:
    config: TrainConfig
    dataset_dir: str
    run_dir: Path
    device: torch.device
    dtype: torch.dtype | None
    box: SceneBox
    bounds: RayBounds
    sampler: PixelSampler
    model: NeRF
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    background: torch.Tensor
    preview: Frame
    pass_rays: int
    chunk_rays: int
    step: int = 0
    checkpoint_step: int = -1  # the step of the newest checkpoint written in this session
    time_fraction: float = 0.0  # share of the time budget used (drives the learning rate too)
    preview_step: int = -1
    lr_scale: float = 1.0  # halved by every NaN rollback; saved in checkpoints
    notes: list[str] = field(default_factory=list)  # warnings for the log (unreadable checkpoints)


def train(
    config: TrainConfig,
    dataset_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    on_event: OnEvent | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a NeRF on ``dataset_dir`` into ``run_dir``; see the module docstring.

    ``on_event`` receives every event (also written to ``events.jsonl``); ``should_stop`` is polled
    every step for a cooperative cancel. SIGINT/SIGTERM checkpoint and return (main thread only).
    """
    configure_process()
    validate(config)
    run_dir = Path(run_dir)
    checkpoints = _check_run_dir(run_dir, resume)
    make_dir(run_dir)
    remove_partial_checkpoints(run_dir)  # left by a process killed while writing one
    with (
        EventLog(run_dir / "events.jsonl", on_event, append=resume) as log,
        stop_on_signals() as sig,
    ):
        try:
            state = build_state(config, str(Path(dataset_dir).resolve()), run_dir, checkpoints)
            return _run(state, log, sig, should_stop or (lambda: False))
        except Exception as exc:
            log.emit("error", 0, message=str(exc), kind=type(exc).__name__)
            raise


def _check_run_dir(run_dir: Path, resume: bool) -> list[Path]:
    checkpoints = list_checkpoints(run_dir)
    if resume and not checkpoints:
        raise CheckpointError(f"{run_dir}: no checkpoint to resume from; train without --resume.")
    if not resume and checkpoints:
        raise CheckpointError(
            f"{run_dir}: already holds a trained run ({checkpoints[-1].name}); pass --resume to "
            "continue it or choose another output folder. Nothing was changed."
        )
    return checkpoints


def build_state(
    config: TrainConfig, dataset_dir: str, run_dir: Path, checkpoints: list[Path] = ()
) -> TrainState:
    """Everything a training step needs: data on the device, model, optimizer, random stream;
    restored from ``checkpoints[-1]`` when given."""
    device = resolve_device(config.device)
    enable_tf32(device)
    configure_threads(config.threads)
    resumed, resumed_path, skipped = read_newest(checkpoints) if checkpoints else (None, None, [])
    if resumed is not None:
        _check_same_architecture(config, resumed, resumed_path)
    train_split = read_split(dataset_dir, "train")
    box = SceneBox.from_dict(json.loads(resumed["scene"])) if resumed else scene_box(train_split)
    cameras = CameraTensors.from_frames(train_split.frames, box, device)
    sampler = PixelSampler(iter_rgba(train_split), cameras, device)
    torch.manual_seed(config.seed)
    model = NeRF(config.model, config.sampling, torch.tensor(box.unit_aabb())).to(device)
    if config.compile:
        model.compile_fields()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = new_generator(device, config.seed)
    state = TrainState(
        config=config,
        dataset_dir=dataset_dir,
        run_dir=run_dir,
        device=device,
        dtype=autocast_dtype(config.mixed_precision, device),
        box=box,
        bounds=RayBounds(box, config.sampling.use_aabb, device),
        sampler=sampler,
        model=model,
        optimizer=optimizer,
        generator=generator,
        background=torch.tensor(config.background, dtype=torch.float32, device=device),
        preview=preview_frame(dataset_dir, train_split),
        pass_rays=rays_per_pass(config, device, training=True),
        chunk_rays=rays_per_pass(config, device, training=False),
    )
    state.notes = skipped
    if resumed is not None:
        _restore(state, resumed, resumed_path)
    return state


def _check_same_architecture(config: TrainConfig, checkpoint: dict, path: Path) -> None:
    saved = json.loads(checkpoint["config"])
    for key in ("model", "sampling"):
        if saved.get(key) != config.to_dict()[key]:
            raise CheckpointError(
                f"{path}: the run was trained with different {key} settings ({saved.get(key)}); "
                "resume with the run's own config.json settings."
            )


def _restore(state: TrainState, checkpoint: dict, path: Path) -> None:
    model, _, _ = build_model(checkpoint, path, state.device)
    state.model.load_state_dict(model.state_dict())
    try:
        state.optimizer.load_state_dict(checkpoint["optimizer"])
        state.generator.set_state(checkpoint["generator"])
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: optimizer or random state does not fit ({exc}).") from exc
    state.step = int(checkpoint["step"])
    state.lr_scale = float(checkpoint.get("lr_scale", 1.0))


def _run(
    state: TrainState, log: EventLog, signalled: Callable[[], bool], cancelled: Callable[[], bool]
) -> TrainResult:
    cfg = state.config
    write_preview_target(state)
    write_json_atomic(
        state.run_dir / "config.json",
        {
            "engine_version": __version__,
            "dataset": state.dataset_dir,
            "device": str(state.device),
            "autocast": str(state.dtype).removeprefix("torch.") if state.dtype else "off",
            "scene": state.box.to_dict(),
            "config": cfg.to_dict(),
        },
    )
    log.emit(
        "start",
        state.step,
        total_steps=cfg.steps,
        preset=cfg.preset,
        device=str(state.device),
        autocast=str(state.dtype).removeprefix("torch.") if state.dtype else "off",
        resumed=state.step > 0,
        n_train_rays=int(state.sampler.rgba.shape[0]),
    )
    for note in state.notes:
        log.emit("warning", state.step, message=note)
    first_step = state.step
    last_good = LastGood(state.model, state.optimizer, state.step)
    stopped = _loop(state, log, last_good, signalled, cancelled)
    if state.step > last_good.step:  # stopped between checks: never save an unchecked state
        _healthy(state, last_good, torch.zeros(()), log)
    if state.step > first_step and state.checkpoint_step != state.step:
        _checkpoint(state, log)  # (a run stopped before its first step has nothing to save)
    saved = list_checkpoints(state.run_dir)
    path = saved[-1] if saved else None
    final_psnr = None
    if stopped in ("completed", "time_budget"):
        if state.preview_step != state.step:
            write_preview(state, log)
        final_psnr = final_eval(state, log)
    log.emit("done", state.step, stopped=stopped, checkpoint=path and str(path), psnr=final_psnr)
    return TrainResult(state.run_dir, state.step, stopped, final_psnr)


def _loop(
    state: TrainState,
    log: EventLog,
    last_good: LastGood,
    signalled: Callable[[], bool],
    cancelled: Callable[[], bool],
) -> str:
    cfg = state.config
    started = time.perf_counter()
    window = _Window(started)
    while state.step < cfg.steps:
        if signalled():
            return "signal"
        if cancelled():
            return "cancelled"
        elapsed = time.perf_counter() - started
        if cfg.max_seconds:
            state.time_fraction = elapsed / cfg.max_seconds
            if elapsed >= cfg.max_seconds:
                return "time_budget"
        loss, fine_mse, n_samples = train_step(state)
        state.step += 1
        window.add(loss, fine_mse, cfg.batch_rays, n_samples)
        report = state.step % cfg.log_every == 0 or state.step == cfg.steps
        preview = state.step % cfg.preview_every == 0
        save = state.step % cfg.checkpoint_every == 0
        if (report or preview or save) and not _healthy(state, last_good, window.loss, log):
            window.reset(time.perf_counter())
            continue
        if report:
            log.emit("progress", state.step, **window.report(state, started))
        if preview:
            write_preview(state, log)
        if save:
            _checkpoint(state, log)
    return "completed"


def _healthy(state: TrainState, last_good: LastGood, loss, log: EventLog) -> bool:
    """Keep the state in memory when the loss since the last check and the weights are finite;
    else roll back to the last good state with half the learning rate and a warning — or, after
    ``max_in_a_row`` failures, save that state and raise :class:`DivergedError`."""
    if last_good.check(state.step, loss):
        return True
    failed_step, state.step = state.step, last_good.step
    state.lr_scale *= 0.5
    if last_good.given_up:
        kept = "nothing was trained yet"
        if state.step > 0:
            saved = checkpoint_path(state.run_dir, state.step)
            kept = f"the last good state is saved as {saved}"
            if state.step != state.checkpoint_step:
                _checkpoint(state, log)
        raise DivergedError(
            f"training diverged: the loss or the weights became NaN/inf {last_good.max_in_a_row} "
            f"times in a row (last between steps {state.step} and {failed_step}), even at "
            f"{state.lr_scale:g}× the learning rate; {kept}. Lower the learning rate "
            "(--set lr=...), try --set mixed_precision=off, or check the dataset."
        )
    log.emit(
        "warning",
        state.step,
        message=f"NaN/inf loss between steps {state.step} and {failed_step}: rolled back to "
        f"step {state.step} and halved the learning rate (now {state.lr_scale:g}× the schedule).",
        failed_step=failed_step,
        lr_scale=state.lr_scale,
    )
    return False


def learning_rate(config: TrainConfig, step: int, time_fraction: float = 0.0) -> float:
    """Exponential decay from ``lr`` at step 0 to ``lr_final`` at ``steps`` — or at the end of the
    time budget, when that comes first (``time_fraction``: the share of ``max_seconds`` used)."""
    progress = min(max(step / max(config.steps, 1), time_fraction), 1.0)
    return config.lr * (config.lr_final / config.lr) ** progress


def train_step(state: TrainState) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One optimisation step: (loss, fine MSE) as device tensors, and the field evaluations."""
    cfg = state.config
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(cfg, state.step, state.time_fraction) * state.lr_scale
    crop = cfg.precrop_fraction if state.step < cfg.precrop_steps else 1.0
    rays_o, rays_d, rgba = state.sampler.sample(cfg.batch_rays, state.generator, crop)
    background = state.background.expand(cfg.batch_rays, 3)
    if cfg.random_background:  # alpha is learned right only if the background varies
        background = torch.rand(background.shape, device=rgba.device, generator=state.generator)
    target = rgba[:, :3] * rgba[:, 3:] + background * (1.0 - rgba[:, 3:])
    state.optimizer.zero_grad(set_to_none=True)
    total_loss, total_mse, n_samples = 0.0, 0.0, 0
    for start in range(0, cfg.batch_rays, state.pass_rays):  # gradients add up over the passes
        part = slice(start, start + state.pass_rays)
        out = render_rays(
            state.model,
            state.bounds(rays_o[part], rays_d[part]),
            background[part],
            perturb=True,
            generator=state.generator,
            autocast_dtype=state.dtype,
            use_grid=state.step >= cfg.sampling.occupancy_warmup,
        )
        fine_mse = F.mse_loss(out.final.rgb, target[part])
        loss = fine_mse + F.mse_loss(out.coarse.rgb, target[part]) if out.fine else fine_mse
        share = out.final.rgb.shape[0] / cfg.batch_rays
        (loss * share).backward()
        total_loss = total_loss + loss.detach() * share
        total_mse = total_mse + fine_mse.detach() * share
        n_samples += out.n_samples
    state.optimizer.step()
    _update_occupancy(state)
    return total_loss, total_mse, n_samples


def _update_occupancy(state: TrainState) -> None:
    """Refresh the occupancy grid from the coarse network every ``occupancy_every`` steps."""
    grid, cfg = state.model.occupancy, state.config.sampling
    if grid is None or state.step % cfg.occupancy_every:
        return
    with torch.no_grad(), autocast(state.device, state.dtype):
        grid.update(state.model.coarse.density_at, state.generator)


class _Window:
    """Loss and throughput since the last progress event (one device sync per report)."""

    def __init__(self, now: float):
        self.reset(now)

    def reset(self, now: float) -> None:
        self.start, self.steps, self.rays, self.samples = now, 0, 0, 0
        self.loss, self.mse = 0.0, 0.0

    def add(self, loss: torch.Tensor, mse: torch.Tensor, rays: int, samples: int) -> None:
        self.loss, self.mse = self.loss + loss, self.mse + mse
        self.steps, self.rays, self.samples = (
            self.steps + 1,
            self.rays + rays,
            self.samples + samples,
        )

    def report(self, state: TrainState, started: float) -> dict:
        now = time.perf_counter()
        seconds = max(now - self.start, 1e-9)
        loss, mse = float(self.loss) / self.steps, float(self.mse) / self.steps
        cfg, elapsed = state.config, now - started
        eta = (cfg.steps - state.step) * seconds / self.steps
        if cfg.max_seconds:
            eta = min(eta, max(cfg.max_seconds - elapsed, 0.0))
        report = {
            "total_steps": cfg.steps,
            "loss": loss,
            "psnr": mse_to_psnr(mse),
            "lr": learning_rate(cfg, state.step, state.time_fraction) * state.lr_scale,
            "rays_per_s": self.rays / seconds,
            "samples_per_s": self.samples / seconds,
            "ms_per_step": 1000.0 * seconds / self.steps,
            "elapsed_s": elapsed,
            "eta_s": eta,
        }
        self.reset(now)
        return report


def _checkpoint(state: TrainState, log: EventLog) -> Path:
    path = checkpoint_path(state.run_dir, state.step)
    save_checkpoint(
        path,
        step=state.step,
        config=state.config,
        box=state.box,
        dataset_dir=state.dataset_dir,
        model=state.model,
        optimizer=state.optimizer,
        generator=state.generator,
        lr_scale=state.lr_scale,
    )
    prune_checkpoints(state.run_dir, state.config.keep_checkpoints)
    state.checkpoint_step = state.step
    log.emit("checkpoint", state.step, path=str(path))
    return path
