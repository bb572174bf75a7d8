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
from ..eval.renderer import render_view

if TYPE_CHECKING:
    from .trainer import TrainState


def preview_frame(dataset_dir: str, train_split: Split) -> Frame:
    """A held-out view for previews: the first of val, else test, else the first training view."""
    for name in ("val", "test"):
        if name in available_splits(dataset_dir):
            return read_split(dataset_dir, name).frames[0]
    return train_split.frames[0]


def _preview_intrinsics(state: TrainState):
    intr = state.preview.intrinsics
    scale = min(1.0, state.config.preview_max_side / max(intr.w, intr.h))
    return intr.scaled(max(1, round(intr.w * scale)), max(1, round(intr.h * scale)))


def write_preview_target(state: TrainState) -> None:
    intr = _preview_intrinsics(state)
    rgb = composite(read_rgba(state.preview.image_path), state.config.background)
    write_png(state.run_dir / "previews" / "target.png", resize_image(rgb, intr.w, intr.h))


def write_preview(state: TrainState, log: EventLog) -> None:
    state.preview_step = state.step
    intr = _preview_intrinsics(state)
    view = render_view(
        state.model,
        state.box,
        state.bounds,
        intr,
        state.preview.camera_to_world,
        chunk_rays=state.chunk_rays,
        dtype=state.dtype,
    )
    rgb = view.over(state.config.background)
    folder = state.run_dir / "previews"
    path = folder / f"step_{state.step:07d}.png"
    write_png(path, rgb)
    write_bytes_atomic(folder / "latest.png", path.read_bytes())
    target = read_rgba(folder / "target.png")[..., :3]
    log.emit(
        "preview",
        state.step,
        path=str(path),
        latest=str(folder / "latest.png"),
        target=str(folder / "target.png"),
        psnr=psnr(rgb, target),
    )


def final_eval(state: TrainState, log: EventLog) -> float | None:
    if state.config.eval_views <= 0:
        return None
    split = next((s for s in ("test", "val") if s in available_splits(state.dataset_dir)), None)
    if split is None:
        return None
    try:
        frames = read_split(state.dataset_dir, split).first(state.config.eval_views)
        report = evaluate_views(
            state.model, state.box, state.bounds, frames, state.config, state.dtype
        )
    except DatasetError as exc:  # the model is saved; a broken test split only costs the metrics
        log.emit("eval", state.step, split=split, error=str(exc))
        return None
    report.update(step=state.step, split=split)
    write_json_atomic(state.run_dir / "metrics.json", report)
    log.emit(
        "eval",
        state.step,
        split=split,
        psnr=report["psnr"],
        ssim=report["ssim"],
        n_views=report["n_views"],
    )
    return report["psnr"]
