"""Random training pixels across all images (any mix of sizes), as rays and target colours.

Pixels that are not valid — masked out (a passer-by under nerfstudio's ``mask_path`` or
instant-ngp's dynamic masks) or, after undistortion, outside the photo — are never drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import torch

from ..data.cameras import camera_rays
from .rays import CameraTensors

OPAQUE_ALPHA = 1.0 - 0.5 / 255.0


class PixelBatch(NamedTuple):
    """Random training pixels: rays_o, rays_d [n, 3], their straight-alpha RGBA [n, 4] and, when
    the dataset has depth, the distance along each ray [n] in the unit frame (+inf: the ray hits
    nothing; NaN: not known), else None."""

    rays_o: torch.Tensor
    rays_d: torch.Tensor
    rgba: torch.Tensor
    depth: torch.Tensor | None


class PixelSampler:
    """Uniformly random valid pixels over all training images (any mix of sizes), as rays and
    targets."""

    def __init__(
        self,
        views: Iterable[tuple[np.ndarray, np.ndarray | None]],
        cameras: CameraTensors,
        device: torch.device,
        depths: Iterable[np.ndarray | None] | None = None,
    ):
        """views: per frame (rgba, valid): [H, W, 4] straight-alpha RGBA floats of the cameras'
        sizes, in order, and [H, W] bool of the pixels that may be targets (None: all), as
        ``data.dataset.iter_views`` yields them; consumed one at a time into one float16 table
        (8 bytes a pixel: its 11-bit mantissa is finer than an 8-bit PNG, and a 100-image 800×800
        dataset takes 512 MB). ``depths``: per frame the distance along each pixel's ray [H, W] in
        the unit frame (+inf: nothing hit, NaN: unknown) or None, as ``data.depth.iter_depths``
        yields them (scaled); kept as a second float16 table (2 bytes a pixel, 128 MB for 100
        800×800 views; its relative rounding, 2⁻¹¹, is 0.05 % of the distance). Raises ValueError
        when no pixel at all is valid."""
        self.cameras = cameras
        sizes = (cameras.w * cameras.h).cpu()
        ends = sizes.cumsum(0)
        flat = np.empty((int(ends[-1]), 4), dtype=np.float16)
        valid_parts: list[np.ndarray] = []
        masked = False
        for index, (image, valid) in enumerate(views):
            start = int(ends[index] - sizes[index])
            flat[start : int(ends[index])] = image.reshape(-1, 4)
            if valid is not None and not valid.all():
                masked = True
            keep = np.ones(image.shape[0] * image.shape[1], bool) if valid is None else valid
            valid_parts.append(np.flatnonzero(keep.reshape(-1)) + start)
        self.rgba = torch.from_numpy(flat).to(device)
        self.depth = None if depths is None else _depth_table(depths, ends, sizes, device)
        self.offsets = (ends - sizes).to(device)
        self.area_cdf = (ends.double() / ends[-1]).float().to(device)
        # Flat indices of the valid pixels; None when every pixel is (the plain, faster path).
        self.valid_index: torch.Tensor | None = None
        self._windows: dict[float, torch.Tensor] = {}
        if masked:
            index = np.concatenate(valid_parts)
            if index.size == 0:
                raise ValueError(
                    "every pixel of every training image is masked out (mask_path, dynamic "
                    "masks) or outside the undistorted photos; check the masks."
                )
            dtype = np.int32 if flat.shape[0] < 2**31 else np.int64
            self.valid_index = torch.from_numpy(index.astype(dtype)).to(device)

    @property
    def opaque(self) -> bool:
        """Whether every pixel that may be drawn is opaque (alpha 1 to half an 8-bit step: images
        without an alpha channel, renders with Film > Transparent off, photos)."""
        alpha = self.rgba[:, 3] if self.valid_index is None else self.rgba[self.valid_index, 3]
        return bool(alpha.min() >= OPAQUE_ALPHA)

    @property
    def n_pixels(self) -> int:
        """How many pixels may be drawn (the valid ones)."""
        return int(self.rgba.shape[0] if self.valid_index is None else self.valid_index.shape[0])

    def sample(
        self, n_rays: int, generator: torch.Generator, crop_fraction: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n_rays`` random rays (rays_o, rays_d [n, 3]) and their pixels' RGBA [n, 4].

        With ``crop_fraction`` < 1 pixels come only from the central window of that size.
        """
        return self.sample_batch(n_rays, generator, crop_fraction)[:3]

    def sample_batch(
        self, n_rays: int, generator: torch.Generator, crop_fraction: float = 1.0
    ) -> PixelBatch:
        """:meth:`sample` with the pixels' depth (see :class:`PixelBatch`)."""
        device = self.rgba.device
        u = torch.rand((n_rays, 3), device=device, generator=generator)
        cam = self.cameras
        if self.valid_index is None:
            frame = torch.searchsorted(self.area_cdf, u[:, 0].contiguous(), right=True)
            frame = frame.clamp_max(self.area_cdf.shape[0] - 1)
            w, h = cam.w[frame], cam.h[frame]
            lo = 0.5 * (1.0 - crop_fraction)
            x = ((lo + u[:, 1] * crop_fraction) * w).long().clamp(0, None).minimum(w - 1)
            y = ((lo + u[:, 2] * crop_fraction) * h).long().clamp(0, None).minimum(h - 1)
            flat = self.offsets[frame] + y * w + x
        else:
            pool = self._window(crop_fraction)
            pick = (u[:, 0] * pool.shape[0]).long().clamp_max(pool.shape[0] - 1)
            flat = pool[pick].long()
            frame, x, y = self._locate(flat)
        rays_o, rays_d = self._rays(frame, x, y)
        depth = None if self.depth is None else self.depth[flat].float()
        return PixelBatch(rays_o, rays_d, self.rgba[flat].float(), depth)

    def _rays(self, frame, x, y, sub_x=0.5, sub_y=0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays through pixels (x, y) [n] of frames [n] (unit frame), at (``sub_x``, ``sub_y``)
        within each pixel ([n] or a number; 0.5: its centre)."""
        cam = self.cameras
        return camera_rays(
            cam.c2w[frame],
            x + sub_x,
            y + sub_y,
            cam.fl_x[frame],
            cam.fl_y[frame],
            cam.cx[frame],
            cam.cy[frame],
        )

    def surface_points(self, chunk: int = 1 << 20) -> Iterator[torch.Tensor]:
        """The training pixels' surface points [m, 3] (unit frame), ``chunk`` pixels at a time:
        each valid pixel with a finite depth and alpha > 0, back-projected along its ray. Nothing
        without depth."""
        if self.depth is None:
            return
        total = self.rgba.shape[0] if self.valid_index is None else self.valid_index.shape[0]
        for start in range(0, total, chunk):
            flat = torch.arange(start, min(start + chunk, total), device=self.rgba.device)
            if self.valid_index is not None:
                flat = self.valid_index[flat].long()
            depth = self._hit_depth(flat)  # (the carving's rule: alpha 0 hits nothing)
            hit = torch.isfinite(depth)
            flat, depth = flat[hit], depth[hit]
            rays_o, rays_d = self._rays(*self._locate(flat))
            yield rays_o + depth[:, None] * rays_d

    def depth_rays(
        self,
        n_rays: int,
        generator: torch.Generator,
        chunk: int = 1 << 14,
        subpixels: int = 1,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Up to ``n_rays`` training pixels drawn at random (all when there are fewer), ``chunk``
        at a time: (rays_o [m, 3], rays_d [m, 3], depth [m]) in the unit frame, depth +inf where
        the ray hits nothing (alpha 0 counts as nothing), NaN where it is unknown (also a pixel
        with alpha > 0 whose depth hit nothing). Nothing without depth.

        ``subpixels`` k > 1: k × k rays per pixel spread over its footprint (stratified), each
        with the smallest depth of the pixel and its 8 neighbours — a bound on the nearest
        surface anywhere in the footprint for a locally planar surface, since the neighbours'
        centres lie beyond the footprint's edge — so that the rays of a low-resolution view
        cover its whole frustum, not lines several grid cells apart. (NaN, unknown, wins.)"""
        if self.depth is None:
            return
        total = self.rgba.shape[0] if self.valid_index is None else self.valid_index.shape[0]
        device = self.rgba.device
        if total > n_rays:
            pick = torch.randperm(total, generator=generator, device=device)[:n_rays]
        else:
            pick = torch.arange(total, device=device)
        offsets = (torch.arange(subpixels, device=device, dtype=torch.float32) + 0.5) / subpixels
        sub_y, sub_x = (o.reshape(-1) for o in torch.meshgrid(offsets, offsets, indexing="ij"))
        per_chunk = max(1, chunk // subpixels**2)
        for start in range(0, len(pick), per_chunk):
            flat = pick[start : start + per_chunk]
            if self.valid_index is not None:
                flat = self.valid_index[flat].long()
            frame, x, y = self._locate(flat)
            depth = self._hit_depth(flat)
            if subpixels > 1:
                depth = self._neighbourhood_min_depth(frame, x, y, depth)
                k2, n = subpixels**2, len(flat)
                frame, x, y, depth = (v.repeat_interleave(k2) for v in (frame, x, y, depth))
                yield (*self._rays(frame, x, y, sub_x.repeat(n), sub_y.repeat(n)), depth)
            else:
                yield (*self._rays(frame, x, y), depth)

    def _hit_depth(self, flat: torch.Tensor) -> torch.Tensor:
        """[n] depth of table pixels ``flat`` [n] for carving: +inf where the pixel is
        transparent, NaN (unknown) where it shows matter but its depth says nothing was hit (an
        edge pixel whose one depth sample missed what covers part of it: a renderer writes the
        depth of one sample, the alpha of all)."""
        depth, alpha = self.depth[flat].float(), self.rgba[flat, 3].float()
        depth = torch.where((alpha > 0) & torch.isinf(depth), torch.nan, depth)
        return torch.where(alpha <= 0, torch.inf, depth)

    def _neighbourhood_min_depth(self, frame, x, y, depth: torch.Tensor) -> torch.Tensor:
        """[n] the smallest of ``depth`` [n] and the hit depths of the 8 neighbours of pixels
        (frame, x, y) [n] inside their image; NaN when any of them is NaN."""
        w, h = self.cameras.w[frame], self.cameras.h[frame]
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                nx, ny = x + dx, y + dy
                inside = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h)
                nb = self.offsets[frame] + ny.clamp(0, None).minimum(h - 1) * w
                nb = nb + nx.clamp(0, None).minimum(w - 1)
                other = torch.where(inside, self._hit_depth(nb), torch.inf)
                depth = torch.where(other.isnan() | (other < depth), other, depth)
        return depth

    def _locate(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(frame, column, row) [n] of flat table indices [n]."""
        ends = self.offsets + self.cameras.w * self.cameras.h
        frame = torch.searchsorted(ends, flat, right=True)
        local = flat - self.offsets[frame]
        w = self.cameras.w[frame]
        return frame, local % w, local // w

    def _window(self, crop_fraction: float) -> torch.Tensor:
        """The valid pixels inside the central ``crop_fraction`` window (cached)."""
        if crop_fraction >= 1.0:
            return self.valid_index
        if crop_fraction not in self._windows:
            flat = self.valid_index.long()
            frame, x, y = self._locate(flat)
            w, h = self.cameras.w[frame], self.cameras.h[frame]
            lo = 0.5 * (1.0 - crop_fraction)
            inside = (x >= (lo * w).long()) & (x < ((lo + crop_fraction) * w).ceil().long())
            inside &= (y >= (lo * h).long()) & (y < ((lo + crop_fraction) * h).ceil().long())
            window = self.valid_index[inside]
            self._windows[crop_fraction] = window if window.numel() else self.valid_index
        return self._windows[crop_fraction]


def _depth_table(depths, ends, sizes, device) -> torch.Tensor:
    """One float16 table of every frame's depth [P] (NaN where a frame has none)."""
    table = np.full(int(ends[-1]), np.nan, dtype=np.float16)
    for index, depth in enumerate(depths):
        if depth is not None:
            start = int(ends[index] - sizes[index])
            table[start : int(ends[index])] = depth.reshape(-1)
    return torch.from_numpy(table).to(device)
