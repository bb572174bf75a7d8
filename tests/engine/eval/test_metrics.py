"""PSNR by hand; SSIM checked against scikit-image's reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from nerf_engine.eval.metrics import psnr, ssim


def test_psnr_known_values():
    a = np.zeros((8, 8, 3))
    assert psnr(a + 0.1, a) == pytest.approx(20.0)
    assert psnr(a, a) == 100.0
    mask = np.zeros((8, 8), bool)
    mask[:4] = True
    b = a.copy()
    b[4:] = 1.0  # errors only outside the mask
    assert psnr(b, a, mask) == 100.0
    assert psnr(b, a) == pytest.approx(-10 * np.log10(0.5))


@pytest.mark.parametrize("shape", [(32, 48, 3), (64, 40, 3), (25, 25)])
def test_ssim_matches_scikit_image(shape):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = 0.5 + 0.4 * np.sin(xx / 3.0) * np.cos(yy / 5.0)
    ref = np.clip(base[..., None] * np.ones(shape[2:] or (1,)), 0, 1).reshape(shape)
    noisy = np.clip(ref + rng.normal(0, 0.08, shape), 0, 1)
    expected = structural_similarity(
        noisy,
        ref,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1 if len(shape) == 3 else None,
    )
    assert ssim(noisy, ref) == pytest.approx(expected, abs=1e-6)
    assert ssim(ref, ref) == pytest.approx(1.0)


def test_ssim_rejects_tiny_or_mismatched_images():
    with pytest.raises(ValueError, match="11×11"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="differ"):
        ssim(np.zeros((16, 16, 3)), np.zeros((16, 17, 3)))
