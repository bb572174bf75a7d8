"""Rays as tensors: a batch of rays with its bounds (:class:`RayBatch`), the bounds themselves
(:class:`RayBounds`: the training cameras' near/far, or for novel views the scene box), per-frame
cameras on the device (:class:`CameraTensors`) and every ray of one image.

Everything here is in the unit scene frame (``data/scene_box.SceneBox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data.cameras import Intrinsics, camera_rays, pixel_centers
from ..data.dataset import Frame
from ..data.scene_box import SceneBox
from .sampling import ray_aabb_intersect


@dataclass
class RayBatch:
    """Rays in the unit scene frame: origins/unit directions [N, 3], bounds [N, 1]."""

    rays_o: torch.Tensor
    rays_d: torch.Tensor
    near: torch.Tensor
    far: torch.Tensor

    def __len__(self) -> int:
        return self.rays_o.shape[0]

    def subset(self, index: torch.Tensor) -> RayBatch:
        return RayBatch(self.rays_o[index], self.rays_d[index], self.near[index], self.far[index])


class RayBounds:
    """Per-ray [near, far] in the unit frame.

    For training (``novel_views=False``) the training cameras' [near, far]; with ``use_aabb``
    clipped to the scene box, and rays that miss the box get near == far (they render as
    background and are skipped).

    For rendering (``novel_views=True``) the scene box alone bounds the scene: a camera may stand
    anywhere (farther away than the training rig, inside the box), so no ray is clipped by the
    training cameras' range. A ray that hits the box gets [max(t_enter, 0), t_exit] with
    ``use_aabb``; without it (the paper's sampling) the training [near, far] is widened just
    enough to cover that span — unchanged wherever the training range already covers the box.
    """

    def __init__(
        self, box: SceneBox, use_aabb: bool, device: torch.device, *, novel_views: bool = False
    ):
        self.near = box.near / box.scale
        self.far = box.far / box.scale
        self.use_aabb, self.novel_views = use_aabb, novel_views
        self.aabb = torch.tensor(box.unit_aabb(), dtype=torch.float32, device=device)

    def __call__(self, rays_o: torch.Tensor, rays_d: torch.Tensor) -> RayBatch:
        """rays_o, rays_d [N, 3] (unit frame, unit directions) -> the rays with near, far [N, 1]."""
        near = torch.full_like(rays_o[:, :1], self.near)
        far = torch.full_like(rays_o[:, :1], self.far)
        if self.novel_views:
            t_enter, t_exit = ray_aabb_intersect(rays_o, rays_d, self.aabb)
            t_enter = t_enter.clamp_min(0.0)  # (a camera inside the box sees from its centre)
            if self.use_aabb:
                return RayBatch(rays_o, rays_d, t_enter, torch.maximum(t_exit, t_enter))
            hit = t_exit > t_enter
            near = torch.where(hit, torch.minimum(near, t_enter), near)
            far = torch.where(hit, torch.maximum(far, t_exit), far)
        elif self.use_aabb:
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
