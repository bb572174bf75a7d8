"""Per-pixel masks of pixels to ignore (transient objects: a passer-by, the photographer's shadow).

Two conventions, each read as its own tool reads it:

- nerfstudio's per-frame ``mask_path``: a single-channel image, **0 = ignore this pixel**, anything
  else = keep (nerfstudio docs, "mask conventions"; nerfstudio-project/nerfstudio #1234);
- instant-ngp's ``dynamic_mask_<image stem>.png`` beside the image (no key in the JSON): **non-zero
  (in any of R, G, B) = ignore** (instant-ngp ``src/nerf_loader.cu``).

A mask is either the size of its image or that size times a whole number (full-resolution masks
beside ``images_2/``-style downscaled images): then an image pixel is ignored when any mask pixel
inside it is. An object/subject mask (blender-nerf's export: 255 on the subject) is a different
thing and has its own key, ``object_mask_path``; it is never a mask of pixels to ignore.

Pillow (through ``images``) is imported only when a mask is read: importable inside Blender.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import read_rgba

IGNORE_ZERO = "zero"  # nerfstudio mask_path
IGNORE_NONZERO = "nonzero"  # instant-ngp dynamic_mask_*.png
DYNAMIC_MASK_PREFIX = "dynamic_mask_"


@dataclass(frozen=True)
class PixelMask:
    """A mask file of one frame and which of its values mark the pixels to ignore."""

    path: Path
    ignore: str  # IGNORE_ZERO or IGNORE_NONZERO
    key: str  # where it came from, for messages: "mask_path" or "dynamic_mask"


def dynamic_mask_path(image_path: Path) -> Path:
    """Where instant-ngp looks for an image's dynamic mask."""
    return image_path.parent / f"{DYNAMIC_MASK_PREFIX}{image_path.stem}.png"


def keep_pixels(masks: Sequence[PixelMask], w: int, h: int) -> np.ndarray | None:
    """[h, w] bool: the pixels no mask says to ignore (None when there are no masks).

    Raises ValueError naming the mask file when its size is not the image's (or a whole multiple
    of it)."""
    if not masks:
        return None
    keep = np.ones((h, w), dtype=bool)
    for mask in masks:
        rgba = read_rgba(mask.path)
        nonzero = rgba[..., :3].max(axis=-1) > 0.0
        keep &= _fit(nonzero if mask.ignore == IGNORE_ZERO else ~nonzero, w, h, mask)
    return keep


def _fit(keep: np.ndarray, w: int, h: int, mask: PixelMask) -> np.ndarray:
    mh, mw = keep.shape
    if (mw, mh) == (w, h):
        return keep
    factor = mw // w
    if factor >= 2 and (mw, mh) == (w * factor, h * factor):
        return keep.reshape(h, factor, w, factor).all(axis=(1, 3))
    raise ValueError(
        f"mask {mask.path.name} ({mask.key}) is {mw}×{mh} but its image is {w}×{h}; make the "
        "mask the image's size (or a whole multiple of it)."
    )
