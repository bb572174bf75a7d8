"""Evaluation: render the views of a split and compare them with their ground-truth images."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_run
from ..config import TrainConfig
from ..data.dataset import Split, load_rgba, read_split
from ..data.images import composite, write_png
from ..data.scene_box import SceneBox
from ..nerf.model import NeRF
from ..nerf.rays import RayBounds
from ..runtime import autocast_dtype, configure_process, rays_per_pass
from .metrics import psnr, ssim
from .renderer import render_view, view_name


def resize_image(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """Antialiased bilinear resize of a float [H, W, C] image."""
    if image.shape[:2] == (h, w):
        return image
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return y[0].permute(1, 2, 0).clamp(0.0, 1.0).numpy()


def evaluate_views(
    model: NeRF,
    box: SceneBox,
    bounds: RayBounds,
    split: Split,
    config: TrainConfig,
    dtype: torch.dtype | None,
    out_dir: Path | None = None,
) -> dict:
    """PSNR and SSIM of every frame of ``split`` (images composited over the training background).

    Returns ``{"psnr", "ssim", "n_views", "seconds", "views": [{"name", "psnr", "ssim"}, ...]}``;
    ``psnr``/``ssim`` are means over views. With ``out_dir``, also writes each render as a PNG.
    """
    started = time.perf_counter()
    chunk_rays = rays_per_pass(config, next(model.parameters()).device, training=False)
    views = []
    for index, (frame, rgba) in enumerate(zip(split.frames, load_rgba(split), strict=True)):
        reference = composite(rgba, config.background)
        rendered = render_view(
            model,
            box,
            bounds,
            frame.intrinsics,
            frame.camera_to_world,
            chunk_rays=chunk_rays,
            dtype=dtype,
        ).over(config.background)
        name = view_name(frame, index)
        views.append(
            {
                "name": name,
                "psnr": psnr(rendered, reference),
                "ssim": _ssim_or_nan(rendered, reference),
            }
        )
        if out_dir is not None:
            write_png(Path(out_dir) / f"{name}.png", rendered)
    return {
        "psnr": float(np.mean([v["psnr"] for v in views])),
        "ssim": float(np.nanmean([v["ssim"] for v in views])) if views else float("nan"),
        "n_views": len(views),
        "seconds": time.perf_counter() - started,
        "views": views,
    }


def _ssim_or_nan(a: np.ndarray, b: np.ndarray) -> float:
    return ssim(a, b) if min(a.shape[:2]) >= 11 else float("nan")


def evaluate_run(
    run_dir: str | os.PathLike,
    split: str = "test",
    *,
    max_views: int = 0,
    device: str = "auto",
    out_dir: str | os.PathLike | None = None,
) -> dict:
    """Render ``split`` of the run's dataset with its latest checkpoint and measure it."""
    configure_process()
    run = load_run(run_dir, device)
    data = read_split(run.dataset_dir, split).first(max_views)
    device_used = next(run.model.parameters()).device
    bounds = RayBounds(run.box, run.config.sampling.use_aabb, device_used)
    dtype = autocast_dtype(run.config.mixed_precision, device_used)
    report = evaluate_views(
        run.model, run.box, bounds, data, run.config, dtype, Path(out_dir) if out_dir else None
    )
    report.update(split=split, step=run.step, run=str(run.run_dir))
    return report
