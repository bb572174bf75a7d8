"""What a training run writes besides checkpoints: previews of a held-out view (with its target)
and the final metrics on the test split.

Held-out splits only serve previews and metrics, so they never stop a training: their views
without an image (BlenderNeRF writes test cameras it never renders) are left out with a warning,
and a split that cannot be read at all is skipped with one.
"""

from __future__ import annotations

from dataclasses import replace
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

HELD_OUT = ("val", "test")


def held_out_splits(dataset_dir: str) -> tuple[dict[str, Split], tuple[str, ...]]:
    """The val and test splits of ``dataset_dir`` limited to their views that have an image, by
    name (a split with none is absent), and warnings for what was left out."""
    splits, notes = {}, []
    for name in HELD_OUT:
        if name not in available_splits(dataset_dir):
            continue
        try:
            split = read_split(dataset_dir, name, require_images=False)
        except DatasetError as exc:
            notes.append(f"the {name} split is not used for previews and metrics: {exc}")
            continue
        notes += split.notes
        seen = tuple(f for f in split.frames if f.image_path is not None)
        source, total = split.source.name, len(split.frames)
        first_missing = next((f.file_path for f in split.frames if f.image_path is None), None)
        if not seen:
            notes.append(
                f"{source}: none of the {total} held-out views has an image (e.g. "
                f"'{first_missing}' is missing); they are not used for previews or the final "
                "metrics. Render them (BlenderNeRF writes test cameras without images) or ignore "
                "this."
            )
            continue
        if len(seen) < total:
            notes.append(
                f"{source}: {total - len(seen)} of the {total} held-out views have no image (e.g. "
                f"'{first_missing}'); previews and metrics use the other {len(seen)}."
            )
        splits[name] = replace(split, frames=seen)
    return splits, tuple(dict.fromkeys(notes))  # one transforms.json gives val and test alike


def preview_frame(held_out: dict[str, Split], train_split: Split) -> Frame:
    """A held-out view for previews: the first of val, else test, else the first training view."""
    for name in HELD_OUT:
        if name in held_out:
            return held_out[name].frames[0]
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
    """Measure the first ``eval_views`` test (else val) views that have images into
    ``metrics.json`` and an ``eval`` event; the mean PSNR, or None when there is nothing to
    measure."""
    if trainer.config.eval_views <= 0:
        return None
    split = next((s for s in ("test", "val") if s in trainer.held_out), None)
    if split is None:
        return None
    step = trainer.global_step
    try:
        frames = trainer.held_out[split].first(trainer.config.eval_views)
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
