"""A factorised grid encoding of positions: multi-resolution tri-planes (K-Planes, Fridovich-Keil
et al. 2023, §3.1–3.3, for a static scene).

A point is projected onto the three axis-aligned planes (xy, xz, yz); each plane holds a grid of
``features``-dimensional vectors at several resolutions, read bilinearly (``grid_sample``). The
three planes' vectors are multiplied element-wise (the Hadamard product of K-Planes, which lets
the planes carve out localised 3D content) and the resolutions are concatenated. A small MLP then
takes the place of the paper's deep one. Planes start uniform in [0.1, 0.5] (K-Planes' init for a
product); :meth:`TriPlaneEncoding.total_variation` is the planes' smoothness penalty (§3.3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PLANE_AXES = ((0, 1), (0, 2), (1, 2))  # xy, xz, yz


class TriPlaneEncoding(nn.Module):
    """Unit-frame points [M, 3] -> features [M, features × len(resolutions)].

    The planes span ``unit_aabb`` ([2, 3]) exactly, whatever its proportions; points outside it
    read the border (the scene box bounds every ray that matters).
    """

    def __init__(self, resolutions: Sequence[int], features: int, unit_aabb: torch.Tensor):
        super().__init__()
        if not resolutions or min(resolutions) < 2 or features < 1:
            raise ValueError("tri-planes need resolutions >= 2 and at least one feature")
        self.planes = nn.ParameterList(
            nn.Parameter(torch.empty(3, features, r, r).uniform_(0.1, 0.5)) for r in resolutions
        )
        box = torch.as_tensor(unit_aabb, dtype=torch.float32)
        half = (0.5 * (box[1] - box[0])).clamp_min(1e-6)
        self.register_buffer("box_center", 0.5 * (box[0] + box[1]), persistent=False)
        self.register_buffer("box_half", half, persistent=False)
        self.out_dim = features * len(resolutions)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """[M, 3] unit-frame points -> [M, out_dim], in float32 (also under autocast)."""
        with torch.autocast(device_type=points.device.type, enabled=False):
            u = ((points.float() - self.box_center) / self.box_half).clamp(-1.0, 1.0)
            grid = torch.stack([u[:, list(axes)] for axes in PLANE_AXES])[:, :, None, :]
            levels = []
            for planes in self.planes:  # [3, F, R, R]
                values = F.grid_sample(
                    planes, grid, mode="bilinear", padding_mode="border", align_corners=True
                )  # [3, F, M, 1]
                levels.append((values[0] * values[1] * values[2])[..., 0].t())
            return torch.cat(levels, dim=-1)

    def total_variation(self) -> torch.Tensor:
        """Mean squared difference between neighbouring plane cells, averaged over the
        resolutions: a scalar to add to the loss (K-Planes §3.3)."""
        total = self.planes[0].new_zeros(())
        for planes in self.planes:
            dx = (planes[..., :, 1:] - planes[..., :, :-1]).square().mean()
            dy = (planes[..., 1:, :] - planes[..., :-1, :]).square().mean()
            total = total + (dx + dy) / len(self.planes)
        return total
