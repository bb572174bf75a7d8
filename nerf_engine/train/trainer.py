"""Training: the :class:`Trainer` (one ``step()``, used by ``train`` and the benchmarks alike) and
``train(config, dataset_dir, run_dir, on_event=...)``, the train job that fills a run folder.

Read top to bottom: load the data and the scene box, build coarse + fine networks and Adam, then
loop — random rays from all training images, coarse and fine renders, MSE on both (with depth
maps also the depth loss, see ``depth``), an exponentially decaying learning rate — with progress
events, preview renders of a held-out view and atomic checkpoints. ``resume=True`` continues the
latest checkpoint with the same optimizer state, step and random stream, so a stopped-and-resumed
run equals an uninterrupted one. A NaN/inf loss rolls
back to the last good state with half the learning rate and a ``warning`` event (see ``guard``);
when that keeps happening training stops with :class:`~.guard.DivergedError`.

What the run folder holds, and where: ``data/run_folder.py``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.profiler import record_function

from .. import __version__, distributed
from ..checkpoint import (
    CheckpointError,
    build_model,
    prune_checkpoints,
    read_newest,
    remove_partial_checkpoints,
    save_checkpoint,
)
from ..config import TrainConfig, from_dict, resolve_environment, validate
from ..data.dataset import iter_views, read_split
from ..data.events import EventLog, OnEvent
from ..data.fileio import make_dir, write_json_atomic
from ..data.run_folder import RunFolder
from ..data.scene_box import SceneBox, scene_box
from ..eval.renderer import Renderer
from ..nerf.environment import OPAQUE_NOTE
from ..nerf.model import NeRF, autocast, render_rays
from ..nerf.pixel_sampler import PixelSampler
from ..nerf.rays import CameraTensors, RayBounds
from ..runtime import (
    autocast_dtype,
    configure_process,
    configure_threads,
    enable_tf32,
    new_generator,
    rays_per_pass,
    resolve_device,
)
from . import ddp
from .depth import bound_occupancy, depth_term, training_depths
from .guard import LastGood, healthy
from .outputs import (
    final_eval,
    held_out_splits,
    preview_frame,
    write_preview,
    write_preview_target,
)
from .schedule import depth_loss_weight, learning_rate
from .signals import stop_on_signals
from .window import Window


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    stopped: str  # "completed", "time_budget", "signal" or "cancelled"
    psnr: float | None  # mean test PSNR of the final evaluation, if one ran


class StepStats(NamedTuple):
    """What one :meth:`Trainer.step` did: the loss (coarse + fine MSE) and the fine MSE as device
    tensors (reading one is a device sync: do it when reporting), and the field evaluations."""

    loss: torch.Tensor
    fine_mse: torch.Tensor
    n_samples: int


# Points per cell measured by the grid refresh that ends the warm-up (a one-off ~8 refreshes).
WARMUP_END_SAMPLES = 8


class Trainer:
    """Everything a training step needs — the training rays on the device, the coarse + fine
    model, Adam, the random stream, the share of the time budget used — and :meth:`step`."""

    def __init__(
        self,
        config: TrainConfig,
        dataset_dir: str,
        run_dir: str | os.PathLike,
        checkpoints: Sequence[Path] = (),
        group: distributed.Group = distributed.SINGLE,
    ):
        """Load the training split of ``dataset_dir`` onto the configured device, build the model
        and the optimizer; restore the newest of ``checkpoints`` (oldest first) that reads.
        ``group``: this process's rank among several (``ddp.py``). Raises DatasetError for bad
        data and CheckpointError for an unusable checkpoint."""
        self.config, self.dataset_dir, self.run = config, dataset_dir, RunFolder(run_dir)
        self.group, self.is_main = group, group.is_main
        self.device = distributed.rank_device(resolve_device(config.device), group)
        enable_tf32(self.device)
        configure_threads(config.threads or distributed.cpu_threads(group, self.device))
        resumed, resumed_path, self.notes = (
            read_newest(list(checkpoints)) if checkpoints else (None, None, [])
        )  # notes: warnings for the log (newer checkpoints that did not read)
        train_split = read_split(dataset_dir, "train")
        box = (
            SceneBox.from_dict(json.loads(resumed["scene"])) if resumed else scene_box(train_split)
        )
        self.box = box
        self.held_out, held_out_notes = held_out_splits(dataset_dir)
        # What the user should know about the data (conversions, masks, views left out, bounds).
        depths, depth_notes = training_depths(config, train_split, box)  # None: not used
        self.notes += [*train_split.notes, *box.notes, *held_out_notes, *depth_notes]
        self.sampler = PixelSampler(
            iter_views(train_split),
            CameraTensors.from_frames(train_split.frames, box, self.device),
            self.device,
            depths,
        )
        if config.model.environment == "auto" and self.sampler.opaque:
            self.notes.append(OPAQUE_NOTE)  # (the world is learned: say so)
        self.config = config = resolve_environment(config, self.sampler.opaque)
        if resumed is not None:
            _check_same_architecture(config, resumed, resumed_path)
        torch.manual_seed(config.seed)
        self.model = NeRF(config.model, config.sampling, torch.tensor(box.unit_aabb()))
        self.model.to(self.device)
        self.model.speed_switches(compile=config.compile, fused_layers=config.fused_layers)
        # with depth maps, empty space is skipped from the first step (not after a warm-up)
        grid, new = self.model.occupancy, resumed is None
        self.grid_seeded = config.depth_occupancy and bound_occupancy(grid, self.sampler, seed=new)
        self.optimizer = torch.optim.Adam(self.model.parameter_groups(config.lr))
        self.generator = new_generator(self.device, distributed.rank_seed(config.seed, group))
        self.dtype = autocast_dtype(config.mixed_precision, self.device)
        self.bounds = RayBounds(box, config.sampling.use_aabb, self.device)
        self.background = torch.tensor(config.background, dtype=torch.float32, device=self.device)
        self.pass_rays = rays_per_pass(config, self.device, training=True)
        self.renderer = Renderer(self.model, box, config)  # previews and the final evaluation
        self.preview = preview_frame(self.held_out, train_split)
        self.global_step = 0  # steps trained, over every session of the run
        self.checkpoint_step = -1  # the step of the newest checkpoint written in this session
        self.preview_step = -1
        self.time_fraction = 0.0  # share of the time budget used (drives the learning rate too)
        self.lr_scale = 1.0  # halved by every NaN rollback; saved in checkpoints
        if resumed is not None:
            self._restore(resumed, resumed_path)
        self.net = ddp.wrap(self.model, group, self.device)  # what the training passes call

    def close(self) -> None:
        """End training: release the ``DistributedDataParallel`` wrapper of a several-process
        run before the process group is left (``train`` does; a script that drives ``step``
        under ``distributed.process_group`` must). The wrapper holds the group's communication
        threads: left alive past ``destroy_process_group`` it aborts the process at exit
        (measured: 3 of 7 two-rank runs of the ranks test). No step can follow."""
        self.net = None

    def _restore(self, checkpoint: dict, path: Path) -> None:
        model, _, _ = build_model(checkpoint, path, self.device)
        self.model.load_state_dict(model.state_dict())
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.generator.set_state(checkpoint["generator"])
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"{path}: optimizer or random state does not fit ({exc})."
            ) from exc
        self.global_step = int(checkpoint["step"])
        self.lr_scale = float(checkpoint.get("lr_scale", 1.0))
        if self.group.active:  # (the checkpoint holds rank 0's stream: each rank its own)
            self.generator.manual_seed(
                distributed.rank_seed(self.config.seed, self.group, self.global_step)
            )

    @property
    def learning_rate(self) -> float:
        """The next step's learning rate: the schedule times the NaN roll-backs' factor."""
        return learning_rate(self.config, self.global_step, self.time_fraction) * self.lr_scale

    def step(self) -> StepStats:
        """Train one batch of ``batch_rays`` random rays (coarse and fine renders, MSE on both,
        one Adam step), refresh the occupancy grid on its cadence, advance :attr:`global_step`."""
        cfg = self.config
        for group in self.optimizer.param_groups:  # (the planes of a tri-plane field run faster)
            group["lr"] = self.learning_rate * group.get("lr_scale", 1.0)
        with record_function("train.rays"):
            crop = cfg.precrop_fraction if self.global_step < cfg.precrop_steps else 1.0
            rays_o, rays_d, rgba, depth = self.sampler.sample_batch(
                cfg.batch_rays, self.generator, crop
            )
            background = self.background.expand(cfg.batch_rays, 3)
            world = self.model.environment
            if cfg.random_background and world is None:  # a varying background teaches alpha
                shape, device = background.shape, rgba.device
                background = torch.rand(shape, device=device, generator=self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        total_loss, total_mse, n_samples = 0.0, 0.0, 0
        for start in range(0, cfg.batch_rays, self.pass_rays):  # gradients add up over the passes
            part = slice(start, start + self.pass_rays)
            last = start + self.pass_rays >= cfg.batch_rays  # (DDP: average the gradients then)
            with ddp.pass_sync(self.net, last):  # forward and backward: one pass
                behind = background[part] if world is None else world(rays_d[part])  # [n, 3]
                target = over(rgba[part], behind.detach())
                rays = self.bounds(rays_o[part], rays_d[part])
                out = render_rays(
                    self.net,
                    rays,
                    behind,
                    perturb=True,
                    generator=self.generator,
                    autocast_dtype=self.dtype,
                    use_grid=self.global_step >= cfg.sampling.occupancy_warmup or self.grid_seeded,
                )
                fine_mse = F.mse_loss(out.final.rgb, target)
                loss = fine_mse
                if out.fine:  # the coarse render also learns the colour, which shapes its weights
                    loss = loss + cfg.coarse_loss * F.mse_loss(out.coarse.rgb, target)
                if cfg.alpha_loss > 0 and world is None:  # the opacity against the images' alpha
                    loss = loss + cfg.alpha_loss * F.mse_loss(out.final.acc, rgba[part, 3:])
                if depth is not None:  # the ray termination against the depth maps
                    weight = depth_loss_weight(cfg, self.global_step, self.time_fraction)
                    loss = loss + depth_term(out, rays, depth[part], rgba[part, 3], weight)
                share = out.final.rgb.shape[0] / cfg.batch_rays
                with record_function("train.backward"):
                    (loss * share).backward()
            total_loss = total_loss + loss.detach() * share
            total_mse = total_mse + fine_mse.detach() * share
            n_samples += out.n_samples
        regularization = self.model.regularization()
        if regularization is not None:
            with record_function("train.backward"):
                regularization.backward()
            total_loss = total_loss + regularization.detach()
        with record_function("train.optimizer"):
            self.optimizer.step()
        with record_function("train.occupancy"):
            self._update_occupancy()
        self.global_step += 1
        mean = distributed.all_mean(torch.stack([total_loss, total_mse]), self.group)
        return StepStats(mean[0], mean[1], n_samples)  # (the loss of all ranks' rays)

    def _update_occupancy(self) -> None:
        """Refresh the occupancy grid from the coarse network every ``occupancy_every`` steps (a
        grid started from depth maps holds until the warm-up ends: the young network knows less)."""
        grid, cfg = self.model.occupancy, self.config.sampling
        if grid is None or self.global_step % cfg.occupancy_every:
            return
        # the refresh after which cells are skipped looks closely (thin structures, see occupancy)
        last_before_use = max(0, (cfg.occupancy_warmup - 1) // cfg.occupancy_every)
        thorough = self.global_step == last_before_use * cfg.occupancy_every
        if self.grid_seeded and self.global_step < last_before_use * cfg.occupancy_every:
            return
        with torch.no_grad(), autocast(self.device, self.dtype):
            grid.update(
                self.model.coarse.density_at,
                self.generator,
                samples_per_cell=WARMUP_END_SAMPLES if thorough else 1,
                cells=distributed.share(grid.density.numel(), self.group),
                combine=distributed.all_max(self.group),  # every rank: the same grid
            )

    def save_checkpoint(self) -> Path:
        """Write the current step's checkpoint atomically, keep the newest ``keep_checkpoints``;
        returns its path. Rank 0 alone writes (every rank holds the same state)."""
        path = self.run.checkpoint_path(self.global_step)
        self.checkpoint_step = self.global_step
        if not self.is_main:
            return path
        save_checkpoint(
            path,
            step=self.global_step,
            config=self.config,
            box=self.box,
            dataset_dir=self.dataset_dir,
            model=self.model,
            optimizer=self.optimizer,
            generator=self.generator,
            lr_scale=self.lr_scale,
        )
        prune_checkpoints(self.run.path, self.config.keep_checkpoints)
        return path


def over(rgba: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Straight-alpha pixels [N, 4] over per-ray background colours [N, 3] -> rgb [N, 3]."""
    return rgba[:, :3] * rgba[:, 3:] + background * (1.0 - rgba[:, 3:])


def _check_same_architecture(config: TrainConfig, checkpoint: dict, path: Path) -> None:
    saved = from_dict(json.loads(checkpoint["config"])).to_dict()  # (newer settings: defaults)
    for key in ("model", "sampling"):
        if saved.get(key) != config.to_dict()[key]:
            raise CheckpointError(
                f"{path}: the run was trained with different {key} settings ({saved.get(key)}); "
                "resume with the run's own config.json settings."
            )


# --- the train job ------------------------------------------------------------------------------


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
    Raises CheckpointError (a run folder that holds a run without ``resume``, or none with it),
    DatasetError, DivergedError, OutputError.
    """
    configure_process()
    validate(config)
    run = RunFolder(run_dir)
    with distributed.process_group(resolve_device(config.device)) as (group, _):
        resume = resume or (group.restart_count > 0 and bool(run.checkpoints()))  # (elastic)
        checkpoints = _check_run_dir(run, resume)
        if group.is_main:  # (under torchrun rank 0 alone writes the run folder)
            make_dir(run.path)
            remove_partial_checkpoints(run.path)  # left by a process killed while writing one
        distributed.barrier(group)
        log = EventLog(run.events_path, on_event, append=resume) if group.is_main else None
        with log or ddp.SilentLog() as log, stop_on_signals() as sig:
            try:
                dataset = str(Path(dataset_dir).resolve())
                trainer = Trainer(config, dataset, run.path, checkpoints, group)
                try:
                    return _run(trainer, log, sig, should_stop or (lambda: False))
                finally:
                    trainer.close()
            except Exception as exc:
                newest = run.latest_checkpoint()
                lost = ddp.lost_peer(exc, group, newest and str(newest))
                log.emit("error", 0, message=str(lost or exc), kind=type(lost or exc).__name__)
                if lost:
                    raise lost from exc
                raise


def _check_run_dir(run: RunFolder, resume: bool) -> list[Path]:
    checkpoints = run.checkpoints()
    if resume and not checkpoints:
        raise CheckpointError(f"{run.path}: no checkpoint to resume from; train without --resume.")
    if not resume and checkpoints:
        raise CheckpointError(
            f"{run.path}: already holds a trained run ({checkpoints[-1].name}); pass --resume to "
            "continue it or choose another output folder. Nothing was changed."
        )
    return checkpoints


def _run(
    trainer: Trainer, log: EventLog, signalled: Callable[[], bool], cancelled: Callable[[], bool]
) -> TrainResult:
    cfg = trainer.config
    autocast_name = str(trainer.dtype).removeprefix("torch.") if trainer.dtype else "off"
    if trainer.is_main:
        write_preview_target(trainer)
        write_json_atomic(
            trainer.run.config_path,
            {
                "engine_version": __version__,
                "dataset": trainer.dataset_dir,
                "device": str(trainer.device),
                "processes": trainer.group.world_size,
                "autocast": autocast_name,
                "scene": trainer.box.to_dict(),
                "config": cfg.to_dict(),
            },
        )
    log.emit(
        "start",
        trainer.global_step,
        job="train",
        total_steps=cfg.steps,  # 0: the time budget ends training
        max_seconds=cfg.max_seconds,
        preset=cfg.preset,
        device=str(trainer.device),
        autocast=autocast_name,
        resumed=trainer.global_step > 0,
        n_train_rays=trainer.sampler.n_pixels,
        processes=trainer.group.world_size,  # (each trains batch_rays rays a step)
    )
    for note in trainer.notes:
        log.emit("warning", trainer.global_step, message=note)
    first_step = trainer.global_step
    last_good = LastGood(trainer.model, trainer.optimizer, trainer.global_step)
    stopped = _loop(trainer, log, last_good, signalled, cancelled)
    if trainer.global_step > last_good.step:  # stopped between checks: never save unchecked
        healthy(trainer, last_good, torch.zeros(()), log, _checkpoint)
    if trainer.global_step > first_step and trainer.checkpoint_step != trainer.global_step:
        _checkpoint(trainer, log)  # (a run stopped before its first step has nothing to save)
    path = trainer.run.latest_checkpoint()
    final_psnr = None
    if stopped in ("completed", "time_budget") and trainer.is_main:
        if trainer.preview_step != trainer.global_step:
            write_preview(trainer, log)
        final_psnr = final_eval(trainer, log)
    log.emit(
        "done",
        trainer.global_step,
        job="train",
        stopped=stopped,
        checkpoint=path and str(path),
        psnr=final_psnr,
    )
    return TrainResult(trainer.run.path, trainer.global_step, stopped, final_psnr)


def _loop(
    trainer: Trainer,
    log: EventLog,
    last_good: LastGood,
    signalled: Callable[[], bool],
    cancelled: Callable[[], bool],
) -> str:
    cfg = trainer.config
    started = time.perf_counter()
    window = Window(started)
    while cfg.until_budget or trainer.global_step < cfg.steps:
        elapsed = time.perf_counter() - started  # (several processes: all agree on the stop)
        stop, elapsed = ddp.agree_stop(
            trainer.group, trainer.device, signalled(), cancelled(), elapsed
        )
        if stop:
            return stop
        if cfg.max_seconds:
            trainer.time_fraction = elapsed / cfg.max_seconds
            if elapsed >= cfg.max_seconds:
                return "time_budget"
        stats = trainer.step()
        world_size = trainer.group.world_size  # (rays and samples of all ranks)
        window.add(
            stats.loss, stats.fine_mse, cfg.batch_rays * world_size, stats.n_samples * world_size
        )
        step = trainer.global_step
        report = step % cfg.log_every == 0 or step == cfg.steps
        preview = step % cfg.preview_every == 0
        save = step % cfg.checkpoint_every == 0
        checked = report or preview or save
        if checked and not healthy(trainer, last_good, window.loss, log, _checkpoint):
            window.reset(time.perf_counter())
            continue
        if report:
            log.emit("progress", step, **window.report(trainer, started))
        if preview and trainer.is_main:
            write_preview(trainer, log)
        if save:
            _checkpoint(trainer, log)
    return "completed"


def _checkpoint(trainer: Trainer, log: EventLog) -> Path:
    path = trainer.save_checkpoint()
    log.emit("checkpoint", trainer.global_step, path=str(path))
    return path
