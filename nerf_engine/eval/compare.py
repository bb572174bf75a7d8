"""Compare NeRF renders with ground-truth images of the same cameras (the ``compare`` job).

``python -m nerf_engine compare --gt GT --nerf NERF --out OUT [--run RUN]`` pairs ``GT/<name>.png``
with ``NERF/<name>.png`` (the views of ``NERF/render.json``, written by ``python -m nerf_engine
render``), composites both over the run's background colour exactly as ``nerf_engine eval`` does,
and writes into ``OUT``:

- ``report.json``: PSNR and SSIM per view and their means, also inside the object mask
  (``GT/<name>_mask.png`` where present, else the ground truth's alpha). A view whose NeRF render
  is empty (``metrics.is_empty``: the NeRF covers almost nothing) is listed in ``empty_views``
  with a note and left out of the means; when every view is empty the means are null;
- ``side_by_side_<name>.png`` per view and ``side_by_side.png`` (the first view): ground truth |
  NeRF | error heatmap with a colour bar (``plots``);
- ``training_curve.png``: training PSNR and loss over the steps of the run's ``events.jsonl``.

Without matplotlib the side-by-side images are drawn with numpy and the training curve is skipped;
``report.json`` says so in ``notes``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.events import OnEvent, emit, read_events
from ..data.fileio import make_dir, write_json_atomic
from ..data.images import composite, read_rgba
from ..data.run_folder import RunFolder
from .metrics import SSIM_WINDOW, is_empty, masked_ssim, psnr, ssim_map
from .plots import NO_MATPLOTLIB, plot_training_curve, write_side_by_side

METRICS = ("psnr", "ssim", "psnr_mask", "ssim_mask")


@dataclass(frozen=True)
class ViewPair:
    """One view to compare: its name and the two images (and the ground truth's mask)."""

    name: str
    ground_truth: Path
    nerf: Path
    mask: Path | None = None


def nerf_shows_world(nerf_dir: str | Path) -> bool:
    """Whether the renders of ``nerf_dir`` show the learned world behind the NeRF (their
    ``render.json`` says ``"world": true``)."""
    try:
        manifest = json.loads((Path(nerf_dir) / "render.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # (a missing or damaged manifest is reported by find_pairs)
    return isinstance(manifest, dict) and manifest.get("world") is True


def find_pairs(gt_dir: str | Path, nerf_dir: str | Path) -> list[ViewPair]:
    """The views of ``nerf_dir/render.json`` (else every ``*.png`` there that is not a depth or
    mask file) with their ground truth in ``gt_dir``. Raises ValueError for a missing image."""
    gt_dir, nerf_dir = Path(gt_dir), Path(nerf_dir)
    manifest = nerf_dir / "render.json"
    if manifest.is_file():
        try:
            views = json.loads(manifest.read_text(encoding="utf-8"))["views"]
            names = [(str(view["name"]), nerf_dir / str(view["image"])) for view in views]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{manifest}: not a render manifest ({type(exc).__name__}: {exc}); render the "
                "cameras again."
            ) from exc
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


def compare_images(
    gt_rgba: np.ndarray,
    nerf_rgba: np.ndarray,
    mask: np.ndarray,
    background,
    *,
    nerf_world: bool = False,
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Metrics of one view; returns (metrics dict, gt rgb, nerf rgb) composited over
    ``background``. ``mask`` [H, W] bool: the object's pixels. ``nerf_world``: the NeRF's
    colour already shows its learned world behind it (render.json's ``world``) and is used as it
    is. ``empty`` in the metrics: the NeRF render covers (almost) nothing (``is_empty``)."""
    gt = composite(gt_rgba, background)
    nerf = nerf_rgba[..., :3].copy() if nerf_world else composite(nerf_rgba, background)
    big_enough = min(gt.shape[:2]) >= SSIM_WINDOW
    values = ssim_map(nerf, gt) if big_enough else None
    metrics = {
        "psnr": psnr(nerf, gt),
        "ssim": masked_ssim(values, None) if big_enough else float("nan"),
        "psnr_mask": psnr(nerf, gt, mask),
        "ssim_mask": masked_ssim(values, mask) if big_enough else float("nan"),
        "mask_fraction": float(mask.mean()),
        "empty": is_empty(nerf_rgba[..., 3]),
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


def read_training_curve(events_path: Path) -> dict[str, list[float]]:
    """``{"step", "psnr", "loss"}`` of the progress events of an ``events.jsonl`` (the last record
    of each step, sorted by step). A damaged log costs only its bad records."""
    by_step: dict[int, tuple[float, float]] = {}
    for record in read_events(events_path):
        if record["event"] != "progress":
            continue
        try:
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


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _json_number(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _json_view(view: dict) -> dict:
    return {k: _json_number(v) if isinstance(v, float) else v for k, v in view.items()}


def _empty_note(empty: list[str], total: int) -> str:
    names = ", ".join(f"'{name}'" for name in empty[:5]) + (", ..." if len(empty) > 5 else "")
    which = "every view" if len(empty) == total else f"{len(empty)} of {total} views"
    return (
        f"the NeRF render is empty in {which} ({names}): nothing of the trained scene is in front "
        "of the camera, so those views are not scored"
        + (", and there is no score" if len(empty) == total else " (the means leave them out)")
        + ". Aim the camera at the subject (the scene box the NeRF was trained in)."
    )


def _training_curve(
    run: RunFolder | None, out: Path, use_matplotlib: bool
) -> tuple[str | None, list]:
    """Plot the run's training curve into ``out``: (its file name or None, notes on why not)."""
    if run is None:
        return None, []
    if not use_matplotlib:
        return None, [NO_MATPLOTLIB.format(what="no training curve")]
    if not run.events_path.is_file():
        return None, [f"no {run.events_path.name} in the run folder: no training curve"]
    curve = read_training_curve(run.events_path)
    why_not = plot_training_curve(curve, out / "training_curve.png")
    return (None, [why_not]) if why_not else ("training_curve.png", [])


def compare(
    gt_dir: str | Path,
    nerf_dir: str | Path,
    out_dir: str | Path,
    *,
    run_dir: str | Path | None = None,
    background: tuple[float, float, float] | None = None,
    on_event: OnEvent | None = None,
    use_matplotlib: bool = True,
) -> dict:
    """The ``compare`` job (see the module docstring): writes and returns the report.

    ``background`` defaults to the run's (white without a run). Events: ``start``, ``progress``
    per view (``done``, ``total``, ``name``), a ``warning`` per note, ``done`` (``report`` path and
    the means). Raises ValueError for a missing or mis-sized image, OutputError when ``out_dir``
    cannot be written.
    """
    started = time.perf_counter()
    out = make_dir(out_dir)
    run = RunFolder(run_dir) if run_dir else None
    if background is None:
        background = run.background() if run is not None else (1.0, 1.0, 1.0)
    pairs = find_pairs(gt_dir, nerf_dir)
    world = nerf_shows_world(nerf_dir)
    emit(on_event, "start", job="compare", total=len(pairs))
    views, drawn = [], True
    for index, pair in enumerate(pairs):
        metrics, gt, nerf = compare_images(*load_pair(pair), background, nerf_world=world)
        image = out / f"side_by_side_{pair.name}.png"
        title = f"{pair.name}: PSNR {metrics['psnr']:.2f} dB"
        if metrics["empty"]:
            title = f"{pair.name}: the NeRF render is empty (not scored)"
        drawn = write_side_by_side(gt, nerf, image, title, use_matplotlib) and drawn
        if index == 0:
            shutil.copyfile(image, out / "side_by_side.png")
        views.append({"name": pair.name, **metrics, "side_by_side": image.name})
        emit(on_event, "progress", done=index + 1, total=len(pairs), name=pair.name)
    curve, notes = _training_curve(run, out, use_matplotlib)
    if not drawn:
        notes.insert(0, NO_MATPLOTLIB.format(what="colour bar without labels"))
    empty = [v["name"] for v in views if v["empty"]]
    if empty:
        notes.insert(0, _empty_note(empty, len(views)))
    scored = [v for v in views if not v["empty"]]  # an empty render is reported, never scored
    report = {
        **{key: _mean([v[key] for v in scored]) for key in METRICS},
        "n_views": len(views),
        "n_scored": len(scored),
        "empty_views": empty,
        "seconds": time.perf_counter() - started,
        "views": [_json_view(view) for view in views],
        "background": list(background),
        "side_by_side": "side_by_side.png",
        "training_curve": curve,
        "run": str(run.path) if run else None,
        "notes": notes,
    }
    write_json_atomic(out / "report.json", report)
    for note in notes:
        emit(on_event, "warning", message=note)
    emit(
        on_event, "done", job="compare", report=str(out / "report.json"), psnr=report["psnr"],
        ssim=report["ssim"], n_views=report["n_views"], seconds=report["seconds"],
    )  # fmt: skip
    return report
