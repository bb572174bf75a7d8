"""Quality over time for ``bench --curves SECONDS``: train each configuration against the clock,
measure test PSNR at intervals (the clock paused while measuring), and compare with the plain
reference NeRF in ``benchmarks/reference_nerf.py`` run on the same dataset in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ..config import TrainConfig, from_dict
from ..data.dataset import Frame, read_split
from ..eval.evaluate import evaluate_views
from ..eval.renderer import Renderer
from ..runtime import synchronize
from ..train.trainer import Trainer

THRESHOLDS_DB = (20.0, 24.0, 26.0, 29.0)
# The reference NeRF's sizes: the paper's, and the plain small NeRF of issue 7 (preview's sizes).
REFERENCE_PAPER = {"depth": 8, "width": 256, "coarse": 64, "fine": 128, "batch": 4096}
REFERENCE_SMALL = {"depth": 4, "width": 128, "coarse": 32, "fine": 32, "batch": 1024}
# The plain reference NeRF lives in the repository's benchmarks/ folder, beside the engine; the
# extension zip ships the engine without it.
REPOSITORY = Path(__file__).resolve().parents[2]
REFERENCE_RELATIVE = Path("benchmarks") / "reference_nerf.py"


def reference_script() -> Path:
    """The reference NeRF script of the repository this engine runs from.

    Raises FileNotFoundError saying where it was looked for and how to get it (the extension zip
    has no ``benchmarks/`` folder: run ``bench`` from a clone of the repository).
    """
    path = REPOSITORY / REFERENCE_RELATIVE
    if not path.is_file():
        raise FileNotFoundError(
            f"bench: the reference NeRF ({REFERENCE_RELATIVE}) is not beside this engine (looked "
            f"in {REPOSITORY}); run bench --reference or --curves from a clone of the blender-nerf "
            "repository, or leave those options out."
        )
    return path


def train_against_clock(
    config: TrainConfig,
    dataset: Path,
    seconds: float,
    evals: int = 20,
    *,
    eval_at: Sequence[float] = (),
    test_views: int = 4,
) -> dict:
    """Train ``config`` on ``dataset`` for ``seconds`` of training (the clock paused while
    measuring), measuring the first ``test_views`` test views at the training times ``eval_at``
    (seconds; default ``evals`` evenly spaced points) and after the last step.

    Returns ``{"curve": [{"seconds", "step", "psnr", "ssim", "alpha_error", "depth_error"}, ...],
    "steps",
    "rays_per_s_steady", "samples_per_ray_steady", "render_s_per_view", "occupied_fraction"}``.
    """
    test = read_split(dataset, "test").first(test_views)
    pending = sorted(eval_at) or [seconds * (k + 1) / evals for k in range(evals)]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, str(dataset), Path(tmp))
        curve, trained, window = [], 0.0, []

        def measure() -> None:
            report = evaluate_views(trainer.renderer, test)
            curve.append(
                {"seconds": trained, "step": trainer.global_step}
                | {key: report[key] for key in ("psnr", "ssim", "alpha_error", "depth_error")}
            )

        while trained < seconds and (config.until_budget or trainer.global_step < config.steps):
            start = time.perf_counter()
            trainer.time_fraction = trained / seconds  # as `train --max-seconds` does
            n_samples = trainer.step().n_samples
            synchronize(trainer.device)
            elapsed = time.perf_counter() - start
            trained += elapsed
            window.append((trained, elapsed, n_samples))
            if pending and trained >= pending[0]:
                measure()
                pending = [s for s in pending if s > trained]
        if not curve or curve[-1]["step"] != trainer.global_step:  # the last step, measured
            measure()
        tail = [w for w in window if w[0] >= 0.75 * trained]  # steady state: grid warm, if any
        render_s = time_render(trainer.renderer, test.frames[0])
        grid = trainer.model.occupancy
    return {
        "curve": curve,
        "steps": trainer.global_step,
        "rays_per_s_steady": config.batch_rays * len(tail) / max(sum(w[1] for w in tail), 1e-9),
        "samples_per_ray_steady": sum(w[2] for w in tail) / max(len(tail) * config.batch_rays, 1),
        "render_s_per_view": render_s,
        "occupied_fraction": grid.occupied_fraction() if grid is not None else None,
    }


def train_against_clock_apart(
    config: TrainConfig,
    dataset: Path,
    seconds: float,
    evals: int = 20,
    *,
    eval_at: Sequence[float] = (),
    test_views: int = 4,
) -> dict:
    """:func:`train_against_clock` in a fresh Python process of this interpreter and engine, so
    that every configuration a benchmark compares starts from the same process state (as a
    user's ``train`` does). In one process each later run was slower: three identical `preview`
    runs of 60 s in a row made 1839, 1759 and 1701 steps (textured_suzanne; 2130, 2105, 2056 on
    glossy_still_life), which favoured whichever configuration a comparison ran first.

    Returns what :func:`train_against_clock` returns. Raises RuntimeError with the end of the
    run's error output when it fails.
    """
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "run.json", Path(tmp) / "result.json"
        spec.write_text(
            json.dumps(
                {"config": config.to_dict(), "dataset": str(dataset), "seconds": seconds}
                | {"evals": evals, "eval_at": list(eval_at), "test_views": test_views}
            )
        )
        path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
        args = [sys.executable, "-m", "nerf_engine.tools.bench_curves", str(spec), str(out)]
        result = subprocess.run(
            args, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-8:])
            raise RuntimeError(f"bench: training {config.preset} on {dataset} failed:\n{tail}")
        return json.loads(out.read_text())


def _run_apart(spec_path: str, out_path: str) -> None:
    """The child of :func:`train_against_clock_apart`: the run described in ``spec_path``, its
    result written to ``out_path``."""
    spec = json.loads(Path(spec_path).read_text())
    result = train_against_clock(
        from_dict(spec["config"]), Path(spec["dataset"]), spec["seconds"], spec["evals"],
        eval_at=spec["eval_at"], test_views=spec["test_views"],
    )  # fmt: skip
    Path(out_path).write_text(json.dumps(result))


def time_render(renderer: Renderer, frame: Frame) -> float:
    """Seconds to render ``frame`` with ``renderer``, as the add-on's renders run."""
    start = time.perf_counter()
    renderer.render(frame.intrinsics, frame.camera_to_world)
    synchronize(renderer.device)
    return time.perf_counter() - start


# glibc settings that keep freed memory in the process (environment variables, read at startup):
# the reference's best allocator, so the ratios measure the implementation, not only malloc.
TUNED_MALLOC_ENV = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1),
    "MALLOC_TOP_PAD_": str(64 * 2**20),
}


def run_reference(
    dataset: Path,
    seconds: float,
    sizes: dict,
    evals: int = 20,
    *,
    eval_at: Sequence[float] = (),
    test_views: int = 4,
    flags: tuple[str, ...] = (),
    tuned_malloc: bool = False,
) -> dict:
    """The plain reference NeRF on ``dataset`` in a subprocess (same machine, same run), measured
    like :func:`train_against_clock` (PSNR and SSIM of the first ``test_views`` test views at
    ``eval_at`` seconds, default ``evals`` evenly spaced points; no measurement with
    ``evals`` = 0). Returns its JSON with ``curve`` as points ``{"seconds", "step", "psnr",
    "ssim"}``.

    ``flags``: ``--bf16``, ``--aabb``; ``tuned_malloc``: run it with :data:`TUNED_MALLOC_ENV`.
    """
    points = sorted(eval_at) or ([seconds * (k + 1) / evals for k in range(evals)] if evals else [])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reference.json"
        script = reference_script()
        args = [sys.executable, str(script), str(dataset), "--seconds", str(seconds)]
        args += ["--eval-at", ",".join(f"{s:g}" for s in points), "--eval-views", str(test_views)]
        args += ["--json", str(out), *flags]
        for key, value in sizes.items():
            args += [f"--{key}", str(value)]
        env = {**os.environ, "PYTHONPATH": str(script.parents[1])}
        if tuned_malloc:
            env.update(TUNED_MALLOC_ENV)
        subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def time_to(curve: list[dict], threshold: float) -> float | None:
    """Training seconds at the first measurement at or above ``threshold`` dB."""
    return next((p["seconds"] for p in curve if p["psnr"] >= threshold), None)


def curves_table(results: dict[str, dict]) -> str:
    head = (
        "| configuration | steps | steady rays/s | "
        + " | ".join(f"s to {t:g} dB" for t in THRESHOLDS_DB)
        + " | final test PSNR | render s/view |"
    )
    lines = [head, "|" + "---|" * (5 + len(THRESHOLDS_DB))]
    for name, r in results.items():
        reached = [time_to(r["curve"], t) for t in THRESHOLDS_DB]
        cells = " | ".join("–" if s is None else f"{s:.0f}" for s in reached)
        final = r["curve"][-1]["psnr"] if r["curve"] else float("nan")
        render = f"{r['render_s_per_view']:.2f}" if "render_s_per_view" in r else "–"
        rate = r.get("rays_per_s_steady", r.get("rays_per_s", float("nan")))
        lines.append(f"| {name} | {r['steps']} | {rate:.0f} | {cells} | {final:.2f} | {render} |")
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, dict], path: Path, title: str) -> str | None:
    """Plot test PSNR against training minutes into ``path``; returns why not, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"matplotlib is not installed: no plot written to {path}"
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name, r in results.items():
        if r["curve"]:
            minutes = [p["seconds"] / 60.0 for p in r["curve"]]
            psnr = [p["psnr"] for p in r["curve"]]
            ax.plot(minutes, psnr, marker="o", markersize=3, label=name)
    for t in THRESHOLDS_DB:
        ax.axhline(t, color="grey", linewidth=0.5, linestyle=":")
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def write_outputs(args, results: dict, markdown: str) -> None:
    """Write ``results`` to ``--json`` and ``markdown`` to ``--markdown``, where they were asked
    for (every bench mode ends with this)."""
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(markdown)


if __name__ == "__main__":  # train_against_clock_apart's child
    _run_apart(*sys.argv[1:3])
