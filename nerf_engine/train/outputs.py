"""What a training run writes besides checkpoints: previews of a held-out view (with its target)
and the final metrics on the test split."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..data.dataset import DatasetError, Frame, Split, available_splits, read_split
from ..data.events import EventLog
from ..data.fileio import write_bytes_atomic, write_json_atomic
from ..data.images import composite, read_rgba, write_png
from ..eval.evaluate import evaluate_views, resize_image
from ..eval.metrics import psnr

if TYPE_CHECKING:
    from ..data.cameras import Intrinsics
    from .trainer import Trainer


def preview_frame(dataset_dir: str, train_split: Split) -> Frame:
    """A held-out view for previews: the first of val, else test, else the first training view."""
    for name in ("val", "test"):
        if name in available_splits(dataset_dir):
            return read_split(dataset_dir, name).frames[0]
    return train_split.frames[0]


def _preview_intrinsics(trainer: Trainer) -> Intrinsics:
    intr = trainer.preview.intrinsics
    scale = min(1.0, trainer.config.preview_max_side / max(intr.w, intr.h))
    return intr.scaled(max(1, round(intr.w * scale)), max(1, round(intr.h * scale)))


def write_preview_target(trainer: Trainer) -> None:
    """The preview view's own image, at the preview size, over the training background."""
    intr = _preview_intrinsics(trainer)
    rgb = composite(read_rgba(trainer.preview.image_path), trainer.config.background)
    write_png(trainer.run.preview_target, resize_image(rgb, intr.w, intr.h))


def write_preview(trainer: Trainer, log: EventLog) -> None:
    """Render the preview view at the current step; a ``preview`` event with its PSNR."""
    trainer.preview_step = trainer.global_step
    view = trainer.renderer.render(_preview_intrinsics(trainer), trainer.preview.camera_to_world)
    rgb = view.over(trainer.config.background)
    run = trainer.run
    path = run.preview_path(trainer.global_step)
    write_png(path, rgb)
    write_bytes_atomic(run.preview_latest, path.read_bytes())
    target = read_rgba(run.preview_target)[..., :3]
    log.emit(
        "preview",
        trainer.global_step,
        path=str(path),
        latest=str(run.preview_latest),
        target=str(run.preview_target),
        psnr=psnr(rgb, target),
    )


def final_eval(trainer: Trainer, log: EventLog) -> float | None:
    """Measure the first ``eval_views`` test (else val) views into ``metrics.json`` and an
    ``eval`` event; the mean PSNR, or None when there is nothing to measure."""
    if trainer.config.eval_views <= 0:
        return None
    dataset_dir = trainer.dataset_dir
    split = next((s for s in ("test", "val") if s in available_splits(dataset_dir)), None)
    if split is None:
        return None
    step = trainer.global_step
    try:
        frames = read_split(dataset_dir, split).first(trainer.config.eval_views)
        report = evaluate_views(trainer.renderer, frames, step=step)
    except DatasetError as exc:  # the model is saved; a broken test split only costs the metrics
        log.emit("eval", step, split=split, error=str(exc))
        return None
    report.update(step=step, split=split)
    write_json_atomic(trainer.run.metrics_path, report)
    log.emit(
        "eval",
        step,
        split=split,
        psnr=report["psnr"],
        ssim=report["ssim"],
        n_views=report["n_views"],
    )
    return report["psnr"]
