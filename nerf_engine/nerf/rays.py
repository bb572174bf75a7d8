"""Rays as tensors: random training rays across all images, and every ray of one image.

Everything here is in the unit scene frame (``scene.SceneBox``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data.cameras import Intrinsics, camera_rays, pixel_centers
from ..data.dataset import Frame
from ..data.scene_box import SceneBox
from .model import RayBatch
from .sampling import ray_aabb_intersect


class RayBounds:
    """Per-ray [near, far] in the unit frame; with ``use_aabb`` clipped to the scene box, and rays
    that miss the box get near == far (they render as background and are skipped)."""

    def __init__(self, box: SceneBox, use_aabb: bool, device: torch.device):
        self.near = box.near / box.scale
        self.far = box.far / box.scale
        self.use_aabb = use_aabb
        self.aabb = torch.tensor(box.unit_aabb(), dtype=torch.float32, device=device)

    def __call__(self, rays_o: torch.Tensor, rays_d: torch.Tensor) -> RayBatch:
        near = torch.full_like(rays_o[:, :1], self.near)
        far = torch.full_like(rays_o[:, :1], self.far)
        if self.use_aabb:
            t_enter, t_exit = ray_aabb_intersect(rays_o, rays_d, self.aabb)
            near = torch.maximum(near, t_enter)
            far = torch.maximum(torch.minimum(far, t_exit), near)
        return RayBatch(rays_o, rays_d, near, far)


@dataclass
class CameraTensors:
    """Per-frame cameras on the device: c2w [F, 4, 4] (unit frame), intrinsics [F] each."""

    c2w: torch.Tensor
    fl_x: torch.Tensor
    fl_y: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    w: torch.Tensor  # int64
    h: torch.Tensor  # int64

    @classmethod
    def from_frames(
        cls, frames: Sequence[Frame], box: SceneBox, device: torch.device
    ) -> CameraTensors:
        poses = box.to_unit_poses(np.stack([f.camera_to_world for f in frames]))
        intr = [f.intrinsics for f in frames]

        def col(name, dtype=torch.float32):
            return torch.tensor([getattr(i, name) for i in intr], dtype=dtype, device=device)

        return cls(
            c2w=torch.tensor(poses, dtype=torch.float32, device=device),
            fl_x=col("fl_x"),
            fl_y=col("fl_y"),
            cx=col("cx"),
            cy=col("cy"),
            w=col("w", torch.int64),
            h=col("h", torch.int64),
        )


class PixelSampler:
    """Uniformly random pixels over all training images (any mix of sizes), as rays + targets."""

    def __init__(self, images: Iterable[np.ndarray], cameras: CameraTensors, device: torch.device):
        """images: per frame [H, W, 4] straight-alpha RGBA floats, of the cameras' sizes, in
        order; consumed one at a time into one float16 table (8 bytes a pixel: its 11-bit
        mantissa is finer than an 8-bit PNG, and a 100-image 800×800 dataset takes 512 MB)."""
        self.cameras = cameras
        sizes = (cameras.w * cameras.h).cpu()
        ends = sizes.cumsum(0)
        flat = np.empty((int(ends[-1]), 4), dtype=np.float16)
        for index, image in enumerate(images):
            flat[int(ends[index] - sizes[index]) : int(ends[index])] = image.reshape(-1, 4)
        self.rgba = torch.from_numpy(flat).to(device)
        self.offsets = (ends - sizes).to(device)
        self.area_cdf = (ends.double() / ends[-1]).float().to(device)

    def sample(
        self, n_rays: int, generator: torch.Generator, crop_fraction: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n_rays`` random rays (rays_o, rays_d [n, 3]) and their pixels' RGBA [n, 4].

        With ``crop_fraction`` < 1 pixels come only from the central window of that size.
        """
        device = self.rgba.device
        u = torch.rand((n_rays, 3), device=device, generator=generator)
        frame = torch.searchsorted(self.area_cdf, u[:, 0].contiguous(), right=True)
        frame = frame.clamp_max(self.area_cdf.shape[0] - 1)
        cam = self.cameras
        w, h = cam.w[frame], cam.h[frame]
        lo = 0.5 * (1.0 - crop_fraction)
        x = ((lo + u[:, 1] * crop_fraction) * w).long().clamp(0, None).minimum(w - 1)
        y = ((lo + u[:, 2] * crop_fraction) * h).long().clamp(0, None).minimum(h - 1)
        target = self.rgba[self.offsets[frame] + y * w + x].float()
        rays_o, rays_d = camera_rays(
            cam.c2w[frame],
            x + 0.5,
            y + 0.5,
            cam.fl_x[frame],
            cam.fl_y[frame],
            cam.cx[frame],
            cam.cy[frame],
        )
        return rays_o, rays_d, target


def image_rays_tensor(
    intrinsics: Intrinsics, c2w_unit: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ray of one image, row-major: rays_o, rays_d [h·w, 3] (float32 on ``device``)."""
    xs, ys = pixel_centers(intrinsics.w, intrinsics.h)
    c2w = torch.tensor(c2w_unit, dtype=torch.float64)
    rays_o, rays_d = camera_rays(
        c2w,
        torch.from_numpy(xs.reshape(-1)),
        torch.from_numpy(ys.reshape(-1)),
        intrinsics.fl_x,
        intrinsics.fl_y,
        intrinsics.cx,
        intrinsics.cy,
    )
    return rays_o.float().to(device), rays_d.float().to(device)
