"""Image quality metrics: PSNR and SSIM (Wang et al. 2004, the variant NeRF papers report).

SSIM uses an 11-tap Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1, population
covariances, averaged over the pixels whose window lies inside the image and over the channels —
the same numbers as ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)`` (a test checks it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def mse_to_psnr(mse: float) -> float:
    """PSNR in dB for images in [0, 1]; capped at 100 dB for identical images."""
    return 100.0 if mse <= 1e-10 else -10.0 * math.log10(mse)


def psnr(image: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR of ``image`` against ``reference`` ([H, W, C] in [0, 1]); ``mask`` [H, W] limits it."""
    diff = (np.asarray(image, np.float64) - np.asarray(reference, np.float64)) ** 2
    if mask is not None:
        keep = np.asarray(mask, bool)
        if not keep.any():
            return float("nan")
        diff = diff[keep]
    return mse_to_psnr(float(diff.mean()))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM of two [H, W, C] (or [H, W]) images in [0, 1]. Needs H, W ≥ 11."""
    a = torch.as_tensor(np.asarray(image, np.float64))
    b = torch.as_tensor(np.asarray(reference, np.float64))
    if a.shape != b.shape:
        raise ValueError(f"ssim: image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if min(a.shape[0], a.shape[1]) < 11:
        raise ValueError(
            f"ssim: images must be at least 11×11 pixels, got {a.shape[1]}×{a.shape[0]}"
        )
    a = a.permute(2, 0, 1)[:, None]  # [C, 1, H, W]
    b = b.permute(2, 0, 1)[:, None]
    g = _gaussian_window()

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian, "valid" region only
        x = F.conv2d(x, g.view(1, 1, -1, 1))
        return F.conv2d(x, g.view(1, 1, 1, -1))

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(s.mean())
