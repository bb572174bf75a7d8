"""Compare's figures: the error heatmap, the side-by-side image (ground truth | NeRF | error with
a colour bar) and the training curve.

matplotlib draws them when it is installed (imported where it is used, never pyplot); without it
the side-by-side image is drawn with numpy (an unlabelled colour bar) and the training curve is
skipped — the callers say so in their report's ``notes``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..data.images import write_png

ERROR_MAX = 0.25  # the heatmap's top: mean absolute RGB error (errors above are clipped)
MIN_PANEL_PX = 256  # side-by-side panels are enlarged (nearest neighbour) to at least this
# Anchors of the fallback colour map (a perceptual dark-to-bright ramp, like matplotlib's inferno).
RAMP = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
     [250, 193, 39], [252, 255, 164]], dtype=np.float64,
) / 255.0  # fmt: skip
NO_MATPLOTLIB = (
    "matplotlib is not installed: {what} (pip install matplotlib, or Install Dependencies)"
)


def colorize(values: np.ndarray, vmax: float = ERROR_MAX) -> np.ndarray:
    """[H, W] values in [0, vmax] -> [H, W, 3] colours of the heatmap ramp (numpy only)."""
    x = np.clip(np.asarray(values, np.float64) / vmax, 0.0, 1.0) * (len(RAMP) - 1)
    low = np.floor(x).astype(int).clip(0, len(RAMP) - 2)
    t = (x - low)[..., None]
    return (RAMP[low] * (1.0 - t) + RAMP[low + 1] * t).astype(np.float32)


def error_map(gt: np.ndarray, nerf: np.ndarray) -> np.ndarray:
    """[H, W] mean absolute RGB error."""
    return np.abs(np.asarray(gt, np.float64) - np.asarray(nerf, np.float64)).mean(axis=-1)


def _enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def side_by_side_numpy(gt: np.ndarray, nerf: np.ndarray, error: np.ndarray) -> np.ndarray:
    """ground truth | NeRF | heatmap | colour bar (0 at the bottom, ERROR_MAX at the top) as one
    [H', W', 3] image, enlarged so that each panel is at least MIN_PANEL_PX tall."""
    h, w = gt.shape[:2]
    factor = max(1, math.ceil(MIN_PANEL_PX / max(h, w)))
    gap = np.ones((h * factor, max(2, factor), 3), np.float32)
    ramp = colorize(np.linspace(ERROR_MAX, 0.0, h * factor)[:, None].repeat(max(4, w // 8), 1))
    panels = [_enlarge(gt, factor), gap, _enlarge(nerf, factor), gap]
    panels += [_enlarge(colorize(error), factor), gap, _enlarge(ramp, 1)]
    return np.concatenate(panels, axis=1)


def side_by_side_figure(
    gt: np.ndarray, nerf: np.ndarray, error: np.ndarray, path: Path, title: str
) -> None:
    """The same three panels with titles and a labelled colour bar (matplotlib, no pyplot)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    h, w = gt.shape[:2]
    panel_in = 3.5  # inches per panel, 100 dpi
    fig = Figure(
        figsize=(3 * panel_in + 1.0, panel_in * h / w + 0.7), dpi=100, layout="constrained"
    )
    axes = fig.subplots(1, 3)
    cmap = ListedColormap(colorize(np.linspace(0.0, ERROR_MAX, 256)[None])[0])
    for ax, image, label in zip(axes[:2], (gt, nerf), ("Ground truth", "NeRF"), strict=True):
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
        ax.set_title(label)
    shown = axes[2].imshow(error, cmap=cmap, vmin=0.0, vmax=ERROR_MAX, interpolation="nearest")
    axes[2].set_title("|error|")
    for ax in axes:
        ax.set_axis_off()
    fig.colorbar(shown, ax=axes[2], shrink=0.9, label="mean absolute RGB error")
    fig.suptitle(title)
    fig.savefig(path, facecolor="white", bbox_inches="tight", pad_inches=0.05)


def write_side_by_side(
    gt: np.ndarray, nerf: np.ndarray, path: Path, title: str, use_matplotlib: bool = True
) -> bool:
    """Write the side-by-side PNG; True when matplotlib drew it, False for the numpy fallback."""
    error = error_map(gt, nerf)
    if use_matplotlib:
        try:
            side_by_side_figure(gt, nerf, error, path, title)
            return True
        except ImportError:
            pass
    write_png(path, side_by_side_numpy(gt, nerf, error))
    return False


def plot_training_curve(curve: dict[str, list[float]], path: Path) -> str | None:
    """Plot training PSNR and loss (``{"step", "psnr", "loss"}``) against the step into ``path``;
    returns why not (no progress yet, no matplotlib), or None."""
    if not curve["step"]:
        return "the run has no progress events yet: no training curve"
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return NO_MATPLOTLIB.format(what="no training curve")
    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    ax = fig.subplots()
    ax.plot(curve["step"], curve["psnr"], color="tab:blue", label="PSNR")
    ax.set_xlabel("step")
    ax.set_ylabel("training PSNR (dB)", color="tab:blue")
    loss_ax = ax.twinx()
    loss_ax.plot(curve["step"], curve["loss"], color="tab:red", label="loss")
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("loss", color="tab:red")
    ax.grid(alpha=0.3)
    ax.set_title("Training curve")
    fig.tight_layout()
    fig.savefig(path, facecolor="white")
    return None
