"""Random training pixels across all images (any mix of sizes), as rays and target colours."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from ..data.cameras import camera_rays
from .rays import CameraTensors


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
