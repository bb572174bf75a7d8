"""The world behind the scene: a background that depends on the ray direction only.

Blender's world (a colour, a sky, an HDRI) is infinitely far away, so what a ray sees behind
everything in the scene box depends on its direction alone. :class:`EnvironmentMap` learns it as
a low-resolution equirectangular RGB image, read bilinearly with ``grid_sample``; the field is
composited over it, C = C_field + (1 − acc) · C_env(rays_d), so an opaque render (Film >
Transparent off) trains without the field having to paint the world onto the scene box.

Axes are Blender's (and the unit scene frame's, whose rotation is the world's): longitude turns
about +Z from +X, latitude rises from the XY plane; row 0 of the map is the zenith.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# What training says when it learns the world (``model.environment`` "auto" on opaque images).
OPAQUE_NOTE = (
    "The training images are opaque (no transparency: the world was rendered behind the "
    "subject), so the world is learned as an environment — a background that depends only on "
    "the view direction — behind the NeRF; renders show it, and their alpha is the NeRF's own "
    "opacity. For a clean cut-out, export with a transparent film instead."
)


def direction_to_equirect(rays_d: torch.Tensor) -> torch.Tensor:
    """Unit directions [N, 3] -> equirectangular coordinates [N, 2] in [−1, 1]: (longitude / π,
    −latitude / (π/2)), ``grid_sample``'s (x, y) of a map whose row 0 is the zenith."""
    longitude = torch.atan2(rays_d[:, 1], rays_d[:, 0])
    latitude = torch.asin(rays_d[:, 2].clamp(-1.0, 1.0))
    return torch.stack([longitude / math.pi, -latitude / (0.5 * math.pi)], dim=-1)


class EnvironmentMap(nn.Module):
    """A learnable equirectangular RGB map of ``height`` × 2·``height`` texels, held as a pyramid:
    maps of ``height``, ``height``/2, ... down to 4 rows, whose bilinear lookups add up before a
    sigmoid (grey at initialisation). The coarse levels are seen by many rays each and learn the
    broad world in a few steps; the fine ones add detail. rays_d [N, 3] (unit) -> rgb [N, 3]."""

    def __init__(self, height: int):
        super().__init__()
        heights = [height]
        while heights[-1] // 2 >= 4:
            heights.append(heights[-1] // 2)
        self.levels = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, 3, rows, 2 * rows)) for rows in heights]
        )

    def forward(self, rays_d: torch.Tensor) -> torch.Tensor:
        coords = direction_to_equirect(rays_d.float())
        logits = sum(_lookup(texels, coords) for texels in self.levels)
        return torch.sigmoid(logits)


def _lookup(texels: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of a [1, C, H, W] equirectangular map at coordinates [N, 2] -> [N, C]."""
    width = texels.shape[-1]
    # longitude wraps around: one column from the other side on each edge, so the seam at ±180°
    # interpolates like everywhere else (latitude stops at the poles: border padding)
    padded = torch.cat([texels[..., -1:], texels, texels[..., :1]], dim=-1)
    x = ((coords[:, 0] + 1.0) * width + 2.0) / (width + 2.0) - 1.0
    grid = torch.stack([x, coords[:, 1]], dim=-1)[None, None]  # [1, 1, N, 2]
    sampled = F.grid_sample(
        padded, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled[0, :, 0].t()
