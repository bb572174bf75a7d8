"""Image quality metrics: PSNR, and SSIM (Wang et al. 2004) from scikit-image.

SSIM is the variant NeRF papers report: an 11-tap Gaussian window with σ = 1.5, K1 = 0.01,
K2 = 0.03, data range 1, population covariances, averaged over the pixels whose window lies inside
the image and over the channels — ``skimage.metrics.structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1)``. The per-pixel map that masked SSIM and
Compare use comes from the same call (``full=True``). scikit-image is imported where it is used:
importing this module stays cheap.
"""

from __future__ import annotations

import math

import numpy as np

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # scikit-image's window for σ = 1.5 (a Gaussian truncated at 3.5σ)
SSIM_BORDER = (SSIM_WINDOW - 1) // 2  # pixels on each side without a whole window
# A NeRF render whose mean opacity is below this (a thousandth of the frame covered) is empty:
# nothing of the trained scene is in front of the camera. It is reported, never scored.
EMPTY_COVERAGE = 1e-3


def is_empty(alpha: np.ndarray) -> bool:
    """Whether a render's opacity [H, W] (0–1) covers less than :data:`EMPTY_COVERAGE`."""
    return float(np.mean(alpha)) < EMPTY_COVERAGE


def mse_to_psnr(mse: float) -> float:
    """PSNR in dB for images in [0, 1]; capped at 100 dB for identical images."""
    return 100.0 if mse <= 1e-10 else -10.0 * math.log10(mse)


def psnr(image: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of ``image`` against ``reference`` ([H, W, C] in [0, 1]); ``mask`` [H, W]
    limits it to those pixels (NaN when the mask is empty)."""
    diff = (np.asarray(image, np.float64) - np.asarray(reference, np.float64)) ** 2
    if mask is not None:
        keep = np.asarray(mask, bool)
        if not keep.any():
            return float("nan")
        diff = diff[keep]
    return mse_to_psnr(float(diff.mean()))


def ssim_map(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two [H, W, C] (or [H, W]) images in [0, 1], averaged over the channels:
    [H − 10, W − 10], the pixels whose 11×11 window lies inside the image (its mean is
    :func:`ssim`). Raises ValueError for different shapes or a side under 11 pixels."""
    from skimage.metrics import structural_similarity

    a, b = np.asarray(image, np.float64), np.asarray(reference, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: image shapes differ: {a.shape} vs {b.shape}")
    if min(a.shape[0], a.shape[1]) < SSIM_WINDOW:
        raise ValueError(
            f"ssim: images must be at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, got "
            f"{a.shape[1]}×{a.shape[0]}"
        )
    _, full = structural_similarity(
        a, b, gaussian_weights=True, sigma=SSIM_SIGMA, use_sample_covariance=False,
        data_range=1.0, channel_axis=-1 if a.ndim == 3 else None, full=True,
    )  # fmt: skip
    if full.ndim == 3:
        full = full.mean(axis=-1)
    inner = slice(SSIM_BORDER, -SSIM_BORDER)
    return full[inner, inner]


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM of two [H, W, C] (or [H, W]) images in [0, 1]; H, W ≥ 11 (ValueError else)."""
    return float(ssim_map(image, reference).mean())


def masked_ssim(values: np.ndarray, mask: np.ndarray | None) -> float:
    """Mean of an :func:`ssim_map` over the pixels of ``mask`` [H, W] bool (all pixels without
    one); NaN when no pixel of the mask has a whole window inside the image."""
    if mask is not None:
        inner = mask[
            SSIM_BORDER : SSIM_BORDER + values.shape[0], SSIM_BORDER : SSIM_BORDER + values.shape[1]
        ]
        values = values[inner]
    return float(values.mean()) if values.size else float("nan")
