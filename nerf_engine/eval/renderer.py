"""Rendering full images from a trained field, and writing them as files.

Images are rendered in chunks of rays without gradients on the model's device and returned as numpy.
Output PNGs are RGBA with straight alpha = accumulated opacity, so compositing one over the training
background reproduces what the model was trained to match.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import LoadedRun, load_run
from ..data.cameras import Intrinsics
from ..data.dataset import Frame, read_split, read_transforms
from ..data.fileio import make_dir, write_json_atomic
from ..data.images import composite, write_exr, write_png, write_png16
from ..data.scene_box import SceneBox
from ..nerf.model import NeRF, render_rays
from ..nerf.rays import RayBounds, image_rays_tensor
from ..runtime import autocast_dtype, configure_process, rays_per_pass


@dataclass
class RenderedView:
    rgba: np.ndarray  # [H, W, 4] float32: straight-alpha colour, alpha = accumulated opacity
    depth: np.ndarray  # [H, W] float32 world distance along each ray (0 where nothing was hit)

    def over(self, background) -> np.ndarray:
        """[H, W, 3] the view composited over a constant background colour."""
        return composite(self.rgba, background)


@torch.no_grad()
def render_view(
    model: NeRF,
    box: SceneBox,
    bounds: RayBounds,
    intrinsics: Intrinsics,
    camera_to_world: np.ndarray,
    *,
    chunk_rays: int = 4096,
    dtype: torch.dtype | None = None,
    early_stop: float | None = None,
) -> RenderedView:
    """Render one camera (world-space pose) at the intrinsics' resolution."""
    device = next(model.parameters()).device
    if early_stop is None:
        early_stop = model.sampling_cfg.early_stop
    rays_o, rays_d = image_rays_tensor(intrinsics, box.to_unit_poses(camera_to_world), device)
    rgb_parts, acc_parts, depth_parts = [], [], []
    for start in range(0, rays_o.shape[0], chunk_rays):
        rays = bounds(rays_o[start : start + chunk_rays], rays_d[start : start + chunk_rays])
        out = render_rays(
            model, rays, None, perturb=False, autocast_dtype=dtype, early_stop=early_stop
        ).final
        rgb_parts.append(out.rgb.float().cpu())
        acc_parts.append(out.acc.float().cpu())
        depth_parts.append(out.depth.float().cpu())
    h, w = intrinsics.h, intrinsics.w
    premultiplied = torch.cat(rgb_parts).numpy().reshape(h, w, 3)
    acc = torch.cat(acc_parts).numpy().reshape(h, w, 1).clip(0.0, 1.0)
    depth = torch.cat(depth_parts).numpy().reshape(h, w) * box.scale
    straight = np.where(acc > 1e-6, premultiplied / np.maximum(acc, 1e-6), 0.0).clip(0.0, 1.0)
    depth = np.where(acc[..., 0] > 1e-3, depth, 0.0)
    return RenderedView(
        rgba=np.concatenate([straight, acc], axis=-1).astype(np.float32),
        depth=depth.astype(np.float32),
    )


class Renderer:
    """A loaded run, ready to render any camera."""

    def __init__(self, run: LoadedRun, chunk_rays: int | None = None):
        self.run = run
        cfg = run.config
        self.device = next(run.model.parameters()).device
        self.bounds = RayBounds(run.box, cfg.sampling.use_aabb, self.device)
        self.dtype = autocast_dtype(cfg.mixed_precision, self.device)
        self.chunk_rays = chunk_rays or rays_per_pass(cfg, self.device, training=False)

    @classmethod
    def from_run_dir(cls, run_dir: str | os.PathLike, device: str = "auto") -> Renderer:
        configure_process()
        return cls(load_run(run_dir, device))

    def render(self, intrinsics: Intrinsics, camera_to_world: np.ndarray) -> RenderedView:
        return render_view(
            self.run.model,
            self.run.box,
            self.bounds,
            intrinsics,
            camera_to_world,
            chunk_rays=self.chunk_rays,
            dtype=self.dtype,
        )


def view_name(frame: Frame, index: int) -> str:
    if frame.file_path:
        stem = Path(frame.file_path.replace("\\", "/")).name
        stem = (
            stem.rsplit(".", 1)[0]
            if stem.lower().endswith((".png", ".exr", ".jpg", ".jpeg"))
            else stem
        )
        if stem and stem not in (".", ".."):
            return stem
    return f"view_{index:04d}"


def render_frames(
    renderer: Renderer,
    frames: Sequence[Frame],
    out_dir: str | os.PathLike,
    *,
    depth_format: str | None = "png16",
    on_view: Callable[[int, int, Path], None] | None = None,
) -> dict:
    """Render ``frames`` into ``out_dir`` as ``<name>.png`` (+ ``<name>_depth.png|.exr``) and
    write ``render.json`` listing the files and the depth encoding. Returns that manifest."""
    out = make_dir(out_dir)
    views, names = [], set()
    started = time.perf_counter()
    for index, frame in enumerate(frames):
        name = view_name(frame, index)
        if name in names:
            name = f"{name}_{index:04d}"
        names.add(name)
        view = renderer.render(frame.intrinsics, frame.camera_to_world)
        write_png(out / f"{name}.png", view.rgba)
        entry = {
            "name": name,
            "image": f"{name}.png",
            "transform_matrix": frame.camera_to_world.tolist(),
        }
        entry.update(_write_depth(out, name, view.depth, depth_format))
        views.append(entry)
        if on_view:
            on_view(index, len(frames), out / f"{name}.png")
    manifest = {
        "run": str(renderer.run.run_dir),
        "step": renderer.run.step,
        "seconds": time.perf_counter() - started,
        "views": views,
    }
    write_json_atomic(out / "render.json", manifest)
    return manifest


def _write_depth(out: Path, name: str, depth: np.ndarray, depth_format: str | None) -> dict:
    if depth_format is None:
        return {}
    if depth_format == "exr":
        write_exr(out / f"{name}_depth.exr", {"Z": depth})
        return {
            "depth": f"{name}_depth.exr",
            "depth_encoding": "exr float32 distance along the ray",
        }
    depth_max = float(depth.max()) or 1.0
    write_png16(out / f"{name}_depth.png", np.round(depth / depth_max * 65535.0).astype(np.uint16))
    return {
        "depth": f"{name}_depth.png",
        "depth_encoding": "uint16 distance along the ray; metres = value / 65535 * depth_max",
        "depth_max": depth_max,
    }


def frames_to_render(
    run: LoadedRun, cameras: str | os.PathLike | None, split: str | None
) -> list[Frame]:
    """The frames of a cameras file (images not needed) or of a split of the run's dataset."""
    if cameras is not None:
        return list(read_transforms(cameras, require_images=False).frames)
    return list(read_split(run.dataset_dir, split or "test").frames)
