"""The field's density on a regular grid over the scene box: what marching cubes reads.

:class:`GridSpec` lays ``resolution`` cells along the box's longest side and as many cells of
(nearly) the same length along the others, in the unit scene frame (``data/scene_box.py``).
:func:`check_memory` refuses a grid that would not fit in memory before anything is allocated,
and :func:`sample_density` evaluates the network slab by slab in chunks of points (bounded
memory), skipping the points that the model's occupancy grid marks empty (their density is 0).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..nerf.field import NeRFField
from ..nerf.occupancy import OccupancyGrid

# Bytes of memory per grid sample: the float32 density, its zero-padded copy that marching cubes
# reads, and marching cubes' own work arrays (scikit-image keeps about one more float per sample).
BYTES_PER_SAMPLE = 16
MEMORY_SHARE = 0.8  # of the memory available now that a grid may take
MIN_RESOLUTION = 8


class GridMemoryError(ValueError):
    """A grid too large for the memory available; the message says what it needs."""


@dataclass(frozen=True)
class GridSpec:
    """Sample points ``lo + i · spacing`` for ``i < shape`` (per axis), unit frame.

    ``lo``/``hi`` [3]: the box's corners; ``shape``: samples per axis (cells + 1);
    ``spacing`` [3]: distance between neighbouring samples per axis (about ``cell``).
    """

    lo: np.ndarray
    hi: np.ndarray
    shape: tuple[int, int, int]
    spacing: np.ndarray

    @classmethod
    def over(cls, unit_aabb: np.ndarray, resolution: int) -> GridSpec:
        """``resolution`` cells along the longest side of ``unit_aabb`` [2, 3]; raises
        ValueError below :data:`MIN_RESOLUTION`."""
        if resolution < MIN_RESOLUTION:
            raise ValueError(f"resolution {resolution}: use at least {MIN_RESOLUTION} cells")
        lo, hi = (np.asarray(c, dtype=np.float64) for c in unit_aabb)
        extent = hi - lo
        cells = np.maximum(np.round(extent / (extent.max() / resolution)), 1).astype(int)
        return cls(lo, hi, tuple(int(c) + 1 for c in cells), extent / cells)

    @property
    def cell(self) -> float:
        """The edge length of a cell along the longest side (unit frame)."""
        return float(self.spacing.max())

    @property
    def n_samples(self) -> int:
        return math.prod(self.shape)

    @property
    def bytes_needed(self) -> int:
        return self.n_samples * BYTES_PER_SAMPLE

    def points(self, i_slab: slice, device: torch.device) -> torch.Tensor:
        """[n, 3] the sample points of the x-slabs ``i_slab`` (float32, C order)."""
        axes = [
            torch.arange(n, device=device, dtype=torch.float64) * s + lo
            for n, s, lo in zip(self.shape, self.spacing, self.lo, strict=True)
        ]
        axes[0] = axes[0][i_slab]
        grid = torch.meshgrid(*axes, indexing="ij")
        return torch.stack(grid, dim=-1).reshape(-1, 3).float()


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux: MemAvailable; elsewhere the free
    physical pages), None when the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(spec: GridSpec, resolution: int, available: int | None = None) -> None:
    """Refuse (:class:`GridMemoryError`) a grid whose samples would need more than
    :data:`MEMORY_SHARE` of the memory available, before anything is allocated; the message
    gives the size it would need and the largest resolution that fits."""
    available = available_memory() if available is None else available
    if available is None or spec.bytes_needed <= MEMORY_SHARE * available:
        return
    budget = MEMORY_SHARE * available / BYTES_PER_SAMPLE
    fits = int(resolution * (budget / spec.n_samples) ** (1.0 / 3.0))
    raise GridMemoryError(
        f"resolution {resolution} needs about {_gib(spec.bytes_needed)} of memory "
        f"({spec.shape[0]}×{spec.shape[1]}×{spec.shape[2]} density samples), but only "
        f"{_gib(available)} is available; use a resolution of at most {max(fits, 1)}."
    )


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


@torch.no_grad()
def sample_density(
    field: NeRFField,
    spec: GridSpec,
    occupancy: OccupancyGrid | None = None,
    *,
    chunk: int = 65536,
    on_slab: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """σ of ``field`` at every sample of ``spec``: float32 [X, Y, Z], in units of 1 / unit-frame
    length. Points that ``occupancy`` marks empty are not evaluated (σ = 0 there). Runs on the
    field's device, ``chunk`` points at a time; ``on_slab(done, total)`` after each group of
    x-slabs (progress)."""
    device = next(field.parameters()).device
    volume = np.zeros(spec.shape, dtype=np.float32)
    per_slab = spec.shape[1] * spec.shape[2]
    slabs = max(1, chunk // per_slab)
    for start in range(0, spec.shape[0], slabs):
        part = slice(start, min(start + slabs, spec.shape[0]))
        points = spec.points(part, device)
        sigma = torch.zeros(len(points), device=device)
        for begin in range(0, len(points), chunk):
            block = points[begin : begin + chunk]
            keep = occupancy.query(block) if occupancy is not None else None
            if keep is None:
                sigma[begin : begin + chunk] = field.density_at(block)
            elif bool(keep.any()):
                index = keep.nonzero()[:, 0] + begin
                sigma[index] = field.density_at(block[keep])
        volume[part] = sigma.view(part.stop - part.start, *spec.shape[1:]).cpu().numpy()
        if on_slab is not None:
            on_slab(part.stop, spec.shape[0])
    return volume
