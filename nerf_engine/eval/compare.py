"""Compare NeRF renders with ground-truth images of the same cameras.

``python -m nerf_engine.compare --gt GT --nerf NERF --out OUT [--run RUN]`` pairs ``GT/<name>.png``
with ``NERF/<name>.png`` (the views of ``NERF/render.json``, written by ``python -m nerf_engine
render``), composites both over the run's background colour exactly as ``nerf_engine eval`` does,
and writes into ``OUT``:

- ``report.json``: PSNR and SSIM per view and their means, also inside the object mask
  (``GT/<name>_mask.png`` where present, else the ground truth's alpha);
- ``side_by_side_<name>.png`` per view and ``side_by_side.png`` (the first view): ground truth |
  NeRF | error heatmap with a colour bar;
- ``training_curve.png``: training PSNR and loss over the steps of ``RUN/events.jsonl``.

The plots use matplotlib when it is installed (imported where it is used); without it the
side-by-side images are drawn with numpy (an unlabelled colour bar) and the training curve is
skipped, and ``report.json`` says so in ``notes``. ``main`` is a command line: the one function
here that prints.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.fileio import make_dir, write_json_atomic
from ..data.images import composite, read_rgba, write_png
from .metrics import psnr

SSIM_SIZE, SSIM_SIGMA = 11, 1.5  # as nerf_engine.metrics.ssim
ERROR_MAX = 0.25  # the heatmap's top: mean absolute RGB error (errors above are clipped)
METRICS = ("psnr", "ssim", "psnr_mask", "ssim_mask")
MIN_PANEL_PX = 256  # side-by-side panels are enlarged (nearest neighbour) to at least this
# Anchors of the fallback colour map (a perceptual dark-to-bright ramp, like matplotlib's inferno).
RAMP = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
     [250, 193, 39], [252, 255, 164]], dtype=np.float64,
) / 255.0  # fmt: skip
NO_MATPLOTLIB = (
    "matplotlib is not installed: {what} (pip install matplotlib, or Install Dependencies)"
)


@dataclass(frozen=True)
class ViewPair:
    """One view to compare: its name and the two images (and the ground truth's mask)."""

    name: str
    ground_truth: Path
    nerf: Path
    mask: Path | None = None


def find_pairs(gt_dir: str | Path, nerf_dir: str | Path) -> list[ViewPair]:
    """The views of ``nerf_dir/render.json`` (else every ``*.png`` there that is not a depth or
    mask file) with their ground truth in ``gt_dir``. Raises ValueError for a missing image."""
    gt_dir, nerf_dir = Path(gt_dir), Path(nerf_dir)
    manifest = nerf_dir / "render.json"
    if manifest.is_file():
        views = json.loads(manifest.read_text(encoding="utf-8"))["views"]
        names = [(view["name"], nerf_dir / view["image"]) for view in views]
    else:
        names = [
            (path.stem, path)
            for path in sorted(nerf_dir.glob("*.png"))
            if not path.stem.endswith(("_depth", "_mask"))
        ]
    if not names:
        raise ValueError(f"{nerf_dir}: no NeRF renders to compare; render the cameras first.")
    pairs = []
    for name, nerf in names:
        gt = gt_dir / f"{name}.png"
        if not gt.is_file():
            raise ValueError(f"{gt}: no ground truth for view '{name}'.")
        mask = gt_dir / f"{name}_mask.png"
        pairs.append(ViewPair(name, gt, nerf, mask if mask.is_file() else None))
    return pairs


def ssim_map(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM, averaged over channels, of two [H, W, C] images in [0, 1]: [H-10, W-10],
    the pixels whose 11×11 window lies inside the image (its mean is ``metrics.ssim``)."""
    a = torch.as_tensor(np.asarray(image, np.float64)).permute(2, 0, 1)[:, None]
    b = torch.as_tensor(np.asarray(reference, np.float64)).permute(2, 0, 1)[:, None]
    x = torch.arange(SSIM_SIZE, dtype=torch.float64) - (SSIM_SIZE - 1) / 2
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    s = numerator / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s[:, 0].mean(dim=0).numpy()


def masked_ssim(values: np.ndarray, mask: np.ndarray | None) -> float:
    """Mean of an :func:`ssim_map` over the pixels of ``mask`` [H, W] (all pixels without one);
    NaN when no pixel of the mask has a whole window inside the image."""
    if mask is not None:
        border = (SSIM_SIZE - 1) // 2
        inner = mask[border : border + values.shape[0], border : border + values.shape[1]]
        values = values[inner]
    return float(values.mean()) if values.size else float("nan")


def compare_images(
    gt_rgba: np.ndarray, nerf_rgba: np.ndarray, mask: np.ndarray, background
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Metrics of one view; returns (metrics dict, gt rgb, nerf rgb) composited over
    ``background``. ``mask`` [H, W] bool: the object's pixels."""
    gt = composite(gt_rgba, background)
    nerf = composite(nerf_rgba, background)
    big_enough = min(gt.shape[:2]) >= SSIM_SIZE
    values = ssim_map(nerf, gt) if big_enough else None
    metrics = {
        "psnr": psnr(nerf, gt),
        "ssim": masked_ssim(values, None) if big_enough else float("nan"),
        "psnr_mask": psnr(nerf, gt, mask),
        "ssim_mask": masked_ssim(values, mask) if big_enough else float("nan"),
        "mask_fraction": float(mask.mean()),
    }
    return metrics, gt, nerf


def load_pair(pair: ViewPair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ground truth RGBA, NeRF RGBA, object mask [H, W] bool) of a view; ValueError when the
    two images differ in size."""
    gt, nerf = read_rgba(pair.ground_truth), read_rgba(pair.nerf)
    if gt.shape != nerf.shape:
        raise ValueError(
            f"view '{pair.name}': the ground truth is {gt.shape[1]}×{gt.shape[0]} but the NeRF "
            f"render is {nerf.shape[1]}×{nerf.shape[0]}; render both at the same size."
        )
    source = read_rgba(pair.mask)[..., 0] if pair.mask is not None else gt[..., 3]
    if source.shape != gt.shape[:2]:
        raise ValueError(f"view '{pair.name}': the mask {pair.mask} has another size.")
    return gt, nerf, source > 0.5


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


def read_training_curve(events_path: Path) -> dict[str, list[float]]:
    """``{"step", "psnr", "loss"}`` of the progress events of an ``events.jsonl`` (the last record
    of each step, sorted by step; unreadable lines are skipped)."""
    by_step: dict[int, tuple[float, float]] = {}
    # a log cut off by a kill, or damaged on disk: bad bytes and records are skipped, not fatal
    for line in events_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or record.get("event") != "progress":
                continue
            loss, value = record.get("loss"), record.get("psnr")
            by_step[int(record.get("step", 0))] = (
                float("nan") if loss is None else float(loss),
                float("nan") if value is None else float(value),
            )
        except (ValueError, TypeError, OverflowError):
            continue
    steps = sorted(by_step)
    return {
        "step": [float(s) for s in steps],
        "loss": [by_step[s][0] for s in steps],
        "psnr": [by_step[s][1] for s in steps],
    }


def plot_training_curve(events_path: Path, path: Path) -> str | None:
    """Plot training PSNR and loss against the step into ``path``; returns why not, or None."""
    if not events_path.is_file():
        return f"no {events_path.name} in the run folder: no training curve"
    curve = read_training_curve(events_path)
    if not curve["step"]:
        return f"{events_path} has no progress events yet: no training curve"
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


def run_background(run_dir: Path | None) -> tuple[float, float, float]:
    """The run's background colour (config.json), the colour eval composites over; white."""
    if run_dir is not None and (run_dir / "config.json").is_file():
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        background = config.get("config", {}).get("background")
        if isinstance(background, list) and len(background) == 3:
            return tuple(float(v) for v in background)
    return (1.0, 1.0, 1.0)


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _json_number(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _json_view(view: dict) -> dict:
    return {k: _json_number(v) if isinstance(v, float) else v for k, v in view.items()}


def _training_curve(run: Path | None, out: Path, use_matplotlib: bool) -> tuple[str | None, list]:
    """Plot the run's training curve into ``out``: (its file name or None, notes on why not)."""
    if run is None:
        return None, []
    if not use_matplotlib:
        return None, [NO_MATPLOTLIB.format(what="no training curve")]
    why_not = plot_training_curve(run / "events.jsonl", out / "training_curve.png")
    return (None, [why_not]) if why_not else ("training_curve.png", [])


def compare(
    gt_dir: str | Path,
    nerf_dir: str | Path,
    out_dir: str | Path,
    *,
    run_dir: str | Path | None = None,
    background: tuple[float, float, float] | None = None,
    on_view: Callable[[int, int, str], None] | None = None,
    use_matplotlib: bool = True,
) -> dict:
    """Compare every view (see the module docstring); writes and returns the report."""
    started = time.perf_counter()
    out = make_dir(out_dir)
    run = Path(run_dir) if run_dir else None
    background = tuple(background) if background is not None else run_background(run)
    pairs = find_pairs(gt_dir, nerf_dir)
    views, drawn = [], True
    for index, pair in enumerate(pairs):
        metrics, gt, nerf = compare_images(*load_pair(pair), background)
        image = out / f"side_by_side_{pair.name}.png"
        title = f"{pair.name}: PSNR {metrics['psnr']:.2f} dB"
        drawn = write_side_by_side(gt, nerf, image, title, use_matplotlib) and drawn
        if index == 0:
            shutil.copyfile(image, out / "side_by_side.png")
        views.append({"name": pair.name, **metrics, "side_by_side": image.name})
        if on_view is not None:
            on_view(index, len(pairs), pair.name)
    curve, notes = _training_curve(run, out, use_matplotlib)
    if not drawn:
        notes.insert(0, NO_MATPLOTLIB.format(what="colour bar without labels"))
    report = {
        **{key: _mean([v[key] for v in views]) for key in METRICS},
        "n_views": len(views),
        "seconds": time.perf_counter() - started,
        "views": [_json_view(view) for view in views],
        "background": list(background),
        "side_by_side": "side_by_side.png",
        "training_curve": curve,
        "run": str(run) if run else None,
        "notes": notes,
    }
    write_json_atomic(out / "report.json", report)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nerf_engine.compare",
        description="PSNR/SSIM of NeRF renders against ground-truth images, side-by-side images "
        "and the training curve.",
    )
    parser.add_argument("--gt", required=True, help="folder of <name>.png (and <name>_mask.png)")
    parser.add_argument("--nerf", required=True, help="folder of NeRF renders (render.json)")
    parser.add_argument("--out", required=True, help="where report.json and the images go")
    parser.add_argument("--run", help="run folder: background colour and events.jsonl")
    parser.add_argument("--background", help="r,g,b in [0, 1] (default: the run's, else white)")
    parser.add_argument("--no-plots", action="store_true", help="numpy images only, no curve")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    background = None
    try:
        if args.background:
            background = tuple(float(v) for v in args.background.split(","))
            if len(background) != 3:
                raise ValueError(f"--background {args.background!r}: expected r,g,b")

        def on_view(index: int, total: int, name: str) -> None:
            print(f"[{index + 1}/{total}] {name}", file=sys.stderr, flush=True)

        report = compare(
            args.gt,
            args.nerf,
            args.out,
            run_dir=args.run,
            background=background,
            on_view=on_view,
            use_matplotlib=not args.no_plots,
        )
    except (ValueError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    print(
        f"compared {report['n_views']} views: PSNR {report['psnr']:.2f} dB, SSIM "
        f"{report['ssim'] if report['ssim'] is not None else float('nan'):.4f} -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
