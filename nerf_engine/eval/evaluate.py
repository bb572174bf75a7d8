"""Evaluation: render the views of a split and measure them against their ground-truth images."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_run
from ..data.dataset import Split, iter_views, read_split
from ..data.depth import has_depth, iter_depths
from ..data.events import OnEvent, emit
from ..data.images import composite, write_png
from ..runtime import configure_process
from .metrics import SSIM_WINDOW, masked_ssim, psnr, ssim_map
from .renderer import Renderer, view_name


def resize_image(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """Antialiased bilinear resize of a float [H, W, C] image to ``w``×``h`` pixels."""
    if image.shape[:2] == (h, w):
        return image
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return y[0].permute(1, 2, 0).clamp(0.0, 1.0).numpy()


def alpha_error(rendered: np.ndarray, alpha: np.ndarray, valid: np.ndarray | None) -> float:
    """Mean absolute difference of two [H, W] opacities over the ``valid`` pixels (all: None)."""
    diff = np.abs(np.asarray(rendered, np.float64) - alpha)
    return float(diff[valid].mean() if valid is not None else diff.mean())


def depth_error(rendered: np.ndarray, depth: np.ndarray, valid, diagonal: float) -> float | None:
    """Mean absolute error of a rendered depth [H, W] (world units, 0 where nothing was rendered)
    against a depth map [H, W] (``data.depth.read_depth``: distances along the rays) over the
    ``valid`` pixels with a surface, as a fraction of the scene box's ``diagonal``; None without
    surface pixels."""
    surface = np.isfinite(depth) if valid is None else np.isfinite(depth) & valid
    if not surface.any():
        return None
    return float(np.abs(rendered[surface].astype(np.float64) - depth[surface]).mean() / diagonal)


def evaluate_views(
    renderer: Renderer,
    split: Split,
    *,
    out_dir: Path | None = None,
    on_event: OnEvent | None = None,
    step: int = 0,
) -> dict:
    """PSNR and SSIM of every frame of ``split``, both images composited over the renderer's
    training background, over the pixels that may be evaluation targets (masked pixels and,
    after undistortion, pixels outside the photo are left out; see ``iter_views``).

    Returns ``{"psnr", "ssim", "alpha_error", "depth_error", "n_views", "seconds", "views":
    [{"name", "psnr", "ssim", "alpha_error", "depth_error"}, ...]}``; the metrics are means over
    views (SSIM is NaN for images under 11 pixels a side; ``alpha_error`` is the mean absolute
    difference between the rendered opacity and the image's alpha, 0–1: what compositing in
    Blender depends on; ``depth_error`` (None for views without depth maps) the rendered depth's
    mean absolute error on the pixels with a surface, as a fraction of the scene box diagonal:
    what Extract Mesh and depth compositing depend on). With
    ``out_dir``, also writes each render as a PNG. ``on_event`` gets a ``progress`` event (``done``,
    ``total``, ``name``) per view, with ``step`` (the model's training step).
    """
    started = time.perf_counter()
    background = renderer.config.background
    views = []
    depths, diagonal = [None] * len(split.frames), 1.0
    if has_depth(split.frames):  # the rendered depth against the depth maps
        depths = iter_depths(split)
        diagonal = float(np.linalg.norm(renderer.box.aabb[1] - renderer.box.aabb[0]))
    for index, (frame, (rgba, valid), depth) in enumerate(
        zip(split.frames, iter_views(split), depths, strict=True)
    ):
        reference = composite(rgba, background)
        view = renderer.render(frame.intrinsics, frame.camera_to_world)
        rendered = view.over(background)
        name = view_name(frame, index)
        big_enough = min(rendered.shape[:2]) >= SSIM_WINDOW
        views.append(
            {
                "name": name,
                "psnr": psnr(rendered, reference, valid),
                "ssim": (
                    masked_ssim(ssim_map(rendered, reference), valid)
                    if big_enough
                    else float("nan")
                ),
                "alpha_error": alpha_error(view.rgba[..., 3], rgba[..., 3], valid),
                "depth_error": depth_error(view.depth, depth, valid, diagonal)
                if depth is not None
                else None,
            }
        )
        if out_dir is not None:
            write_png(Path(out_dir) / f"{name}.png", rendered)
        emit(on_event, "progress", step, done=index + 1, total=len(split.frames), name=name)
    return {
        "psnr": float(np.mean([v["psnr"] for v in views])),
        "ssim": float(np.nanmean([v["ssim"] for v in views])) if views else float("nan"),
        "alpha_error": float(np.mean([v["alpha_error"] for v in views])),
        "depth_error": _mean_known([v["depth_error"] for v in views]),
        "n_views": len(views),
        "seconds": time.perf_counter() - started,
        "views": views,
    }


def _mean_known(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def evaluate_run(
    run_dir: str | os.PathLike,
    split: str = "test",
    *,
    max_views: int = 0,
    device: str = "auto",
    out_dir: str | os.PathLike | None = None,
    on_event: OnEvent | None = None,
) -> dict:
    """The ``eval`` job: render ``split`` of the run's dataset with its newest readable checkpoint
    and measure it (the first ``max_views`` views; 0 = all). Events: ``warning``, ``start``,
    ``progress`` per view, ``done`` (with the means). Returns :func:`evaluate_views`' report plus
    ``split``, ``step`` and ``run``."""
    configure_process()
    run = load_run(run_dir, device)
    for note in run.notes:
        emit(on_event, "warning", run.step, message=note)
    data = read_split(run.dataset_dir, split).first(max_views)
    for note in data.notes:
        emit(on_event, "warning", run.step, message=note)
    emit(on_event, "start", run.step, job="eval", total=len(data.frames), split=split)
    report = evaluate_views(
        Renderer.for_run(run),
        data,
        out_dir=Path(out_dir) if out_dir else None,
        on_event=on_event,
        step=run.step,
    )
    report.update(split=split, step=run.step, run=str(run.run_dir))
    emit(
        on_event, "done", run.step, job="eval", psnr=report["psnr"], ssim=report["ssim"],
        n_views=report["n_views"], seconds=report["seconds"],
    )  # fmt: skip
    return report
