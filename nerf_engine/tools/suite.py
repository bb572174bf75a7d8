"""``bench --suite DIR``: quality per minute on the benchmark scene suite.

Every dataset in ``DIR`` (the scenes of ``benchmarks/scene_suite.py``, built there on demand with
the repository's Blender) is trained by each configuration as ``train --max-seconds B`` trains it —
one run per budget B (default 60, 180, 600 s), the learning rate decaying over that budget — and
by the plain reference NeRF (4×128, 32+32 samples, box bounds, bf16 where the CPU has it; a
constant learning rate, so one run measured at every budget) in the same process tree. Each is
measured on the scene's test views: PSNR, SSIM, the alpha error and the rendered depth's mean
absolute error (in % of the scene box diagonal; the suite's scenes are exported with depth). The
report has one row per scene and configuration, then each configuration's mean and worst scene:
defaults are chosen on those, never on one scene. With and without depth supervision on the same
exports in one run: ``--curve-presets preview,preview+depth_loss=0``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..runtime import cpu_has_native_bf16, resolve_device
from .bench_curves import (
    REFERENCE_SMALL,
    REPOSITORY,
    run_reference,
    train_against_clock_apart,
    write_outputs,
)
from .variants import variant

SUITE_SCRIPT = Path("benchmarks") / "scene_suite.py"
REFERENCE_NAME = "reference"
# what the suite keeps of a configuration's longest run besides its curve (train_against_clock's)
RUN_FIGURES = ("steps", "rays_per_s_steady", "samples_per_ray_steady", "occupied_fraction")


def suite_datasets(
    folder: Path, resolution: int, views: int, test: int, scenes: str | None = None
) -> list[Path]:
    """The suite's datasets (all, or the comma-separated ``scenes``) at ``resolution`` pixels in
    ``folder``, built first by ``benchmarks/scene_suite.py`` (which skips scenes already built the
    same way).

    Raises FileNotFoundError when the script is not beside the engine (the extension zip) and
    RuntimeError, with its last output, when building fails (e.g. a Python without bpy).
    """
    script = REPOSITORY / SUITE_SCRIPT
    if not script.is_file():
        raise FileNotFoundError(
            f"bench --suite: {SUITE_SCRIPT} is not beside this engine (looked in {REPOSITORY}); "
            "run it from a clone of the blender-nerf repository."
        )
    cmd = [sys.executable, str(script), "--out", str(folder), "--resolution", str(resolution)]
    cmd += ["--views", str(views), "--test", str(test)]
    cmd += ["--scenes", scenes] if scenes else []
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise RuntimeError(
            f"bench --suite: building the scenes failed ({tail}); build them with a Python that "
            f"has bpy: .venv/bin/python {SUITE_SCRIPT} --out {folder} --resolution {resolution}"
        )
    return [Path(line) for line in result.stdout.splitlines() if Path(line).is_dir()]


def run_suite(
    configs: Sequence[TrainConfig],
    datasets: Sequence[Path],
    budgets: Sequence[float],
    *,
    test_views: int,
    reference_sizes: dict | None,
    say: Callable[[str], None],
) -> dict:
    """Train every config (one run per budget, the budget being the unit: ``steps`` = 0) and the
    reference (unless ``reference_sizes`` is None) on every dataset. Returns ``{scene: {config
    name: {"curve": [point per budget], "steps", "rays_per_s_steady", "samples_per_ray_steady",
    "occupied_fraction"}}}`` (the last three of the longest budget's run: its last quarter's rays a
    second and field samples a ray, and its occupancy grid's occupied share at the end, None
    without a grid); a point is ``{"seconds", "step", "psnr", "ssim", "alpha_error",
    "depth_error"}`` (no alpha or depth error for the reference, which trains over white; the
    reference has only ``curve`` and ``steps`` of the rest)."""
    flags = ("--aabb", "--bf16") if cpu_has_native_bf16() else ("--aabb",)
    results: dict[str, dict] = {}
    for dataset in datasets:
        scene = results.setdefault(dataset.name, {})
        for config in configs:
            runs = []
            for budget in sorted(budgets):  # `train --max-seconds budget`
                budgeted = replace(config, steps=0, max_seconds=budget)
                runs.append(
                    train_against_clock_apart(
                        budgeted, dataset, budget, eval_at=[budget], test_views=test_views
                    )
                )
            scene[config.preset] = {"curve": [run["curve"][-1] for run in runs]} | {
                key: runs[-1][key] for key in RUN_FIGURES
            }
            say(_progress_line(dataset.name, config.preset, scene[config.preset], budgets))
        if reference_sizes is None:
            continue
        scene[REFERENCE_NAME] = run_reference(
            dataset, max(budgets), reference_sizes, eval_at=budgets, test_views=test_views,
            flags=flags, tuned_malloc=True,
        )  # fmt: skip
        say(_progress_line(dataset.name, REFERENCE_NAME, scene[REFERENCE_NAME], budgets))
    return results


def at_budget(curve: list[dict], budget: float) -> dict | None:
    """The measurement taken for ``budget`` seconds: the first at or after it (None when training
    never got that far); a run that stopped early (its last step) counts for every later budget."""
    later = [p for p in curve if p["seconds"] >= budget * 0.999]
    if later:
        return later[0]
    return curve[-1] if curve else None


def _progress_line(scene: str, name: str, result: dict, budgets: Sequence[float]) -> str:
    cells = []
    for budget in budgets:
        point = at_budget(result["curve"], budget)
        cells.append(f"{budget:g}s {point['psnr']:.2f} dB" if point else f"{budget:g}s –")
    return f"{scene:>20} {name:>14}: " + ", ".join(cells) + f" ({result['steps']} steps)"


def suite_table(results: dict[str, dict], budgets: Sequence[float]) -> str:
    """Markdown: PSNR (and SSIM, alpha and depth error at the last budget; steps, field samples a
    ray and the grid's occupied share of the longest run) per scene and configuration, then each
    configuration's mean and worst scene."""
    names = list(next(iter(results.values())))
    last = max(budgets)
    head = ["scene", "configuration", *(f"PSNR {b:g} s" for b in budgets)]
    head += [f"SSIM {last:g} s", f"alpha error {last:g} s", f"depth error {last:g} s (%)", "steps"]
    head += ["samples/ray", "grid occupied (%)"]  # the last quarter of the run / at its end
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scene, by_name in results.items():
        for name in names:
            lines.append(_row(scene, name, by_name[name], budgets))
    for name in names:
        for label, reduce in (("mean", np.mean), ("worst", np.min)):
            cells = [label, name]
            for budget in budgets:
                values = [_value(r[name], budget, "psnr") for r in results.values()]
                cells.append(_number(reduce(values) if not any(map(math.isnan, values)) else None))
            ssim = [_value(r[name], last, "ssim") for r in results.values()]
            depth = [100 * _value(r[name], last, "depth_error") for r in results.values()]
            worst_depth = np.max if reduce is np.min else reduce  # (the worst error is the largest)
            cells += [_number(reduce(ssim), 3), "", _number(worst_depth(depth)), "", "", ""]
            lines.append(
                "| **" + "** | **".join(cells[:2]) + "** | " + " | ".join(cells[2:]) + " |"
            )
    return "\n".join(lines) + "\n"


def _value(result: dict, budget: float, key: str) -> float:
    point = at_budget(result["curve"], budget)
    value = point.get(key) if point else None
    return float(value) if value is not None else float("nan")


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _row(scene: str, name: str, result: dict, budgets: Sequence[float]) -> str:
    last = max(budgets)
    cells = [scene, name, *(_number(_value(result, b, "psnr")) for b in budgets)]
    cells += [
        _number(_value(result, last, "ssim"), 3),
        _number(_value(result, last, "alpha_error"), 3),
        _number(100 * _value(result, last, "depth_error")),
    ]
    occupied = result.get("occupied_fraction")
    cells += [str(result["steps"]), _number(result.get("samples_per_ray_steady"), 1)]
    cells.append(_number(100 * occupied if occupied is not None else None, 1))
    return "| " + " | ".join(cells) + " |"


def run_suite_command(args, say: Callable[[str], None]) -> int:
    """``bench --suite DIR``: see :mod:`.suite`."""
    budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    datasets = suite_datasets(
        Path(args.suite), args.suite_resolution, args.suite_views, args.suite_test,
        args.suite_scenes,
    )  # fmt: skip
    if args.suite_scenes:
        wanted = {
            f"{name.strip()}_{args.suite_resolution}" for name in args.suite_scenes.split(",")
        }
        datasets = [d for d in datasets if d.name in wanted]
    names = (args.curve_presets or "preview").split(",")
    configs = [variant(name, "auto", args.device) for name in names]
    results = {
        "device": str(resolve_device(args.device)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "budgets": budgets,
        "scenes": run_suite(
            configs, datasets, budgets, test_views=args.suite_test,
            reference_sizes=None if args.no_reference else REFERENCE_SMALL, say=say,
        ),
    }  # fmt: skip
    table = suite_table(results["scenes"], budgets)
    say(table)
    line = f"device {results['device']}, torch {results['torch']}, {results['threads']} threads"
    write_outputs(args, results, table + "\n" + line + "\n")
    return 0
