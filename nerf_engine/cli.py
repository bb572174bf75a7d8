"""``python -m nerf_engine train|render|eval|compare|mesh|bench|toy-scene``: the one place
that prints.

Every job speaks the same events (``data/events.py``): with ``--events jsonl`` they go to stdout
one JSON object a line (what the add-on reads); without it a terminal gets a progress bar or a
line per view on stderr. Exit status: 0 success (also a graceful stop on SIGINT/SIGTERM, after a
checkpoint), 2 bad input (dataset, checkpoint, settings, images), 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .config import (
    DEVICES,
    NO_ACCEL,
    PRESETS,
    TrainConfig,
    from_dict,
    preset,
    validate,
    with_overrides,
)
from .data.events import event
from .data.run_folder import RunFolder

USER_ERRORS = (ValueError, OSError)  # DatasetError, CheckpointError, ImageError are ValueErrors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nerf_engine", description="NeRF training and rendering."
    )
    parser.add_argument("--version", action="version", version=f"nerf_engine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a NeRF on a dataset folder")
    p.add_argument("dataset", help="folder with transforms_*.json (or transforms.json)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, previews, events)")
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default=None,
        help="default: preview on a CPU or Apple GPU, balanced on CUDA (on --resume: the run's "
        "own)",
    )
    p.add_argument(
        "--steps",
        type=int,
        help="training steps (default: with --max-seconds, as many as the budget allows; else the "
        "preset's)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        help="wall-clock budget in seconds: without --steps training uses the whole budget (the "
        "learning rate decays over it); with --steps it ends at whichever comes first",
    )
    p.add_argument("--device", choices=DEVICES, help="default: auto (cuda, then mps, then cpu)")
    p.add_argument(
        "--no-accel",
        action="store_true",
        help="the plain paper algorithm: no scene-box clipping, occupancy grid or early stop",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    _add_events(p)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting, e.g. --set batch_rays=2048 --set model.width=128",
    )

    p = sub.add_parser("render", help="render cameras with a trained run")
    p.add_argument("run", help="run folder")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--cameras", help="a transforms-format JSON of cameras (frames need no images)"
    )
    src.add_argument(
        "--split", choices=["train", "val", "test"], help="render a split of the run's dataset"
    )
    p.add_argument("--out", required=True, help="output folder for <name>.png and render.json")
    p.add_argument("--depth", choices=["png16", "exr", "none"], default="png16")
    p.add_argument("--device", choices=DEVICES, default="auto")
    _add_events(p)

    p = sub.add_parser("eval", help="render a split and report PSNR/SSIM against its images")
    p.add_argument("run", help="run folder")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument(
        "--max-views", type=int, default=0, help="evaluate only the first N views (0 = all)"
    )
    p.add_argument("--out", help="also write the renders here")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--device", choices=DEVICES, default="auto")
    _add_events(p)

    p = sub.add_parser(
        "compare",
        help="PSNR/SSIM of NeRF renders against ground-truth images, side-by-side images and the "
        "training curve",
    )
    p.add_argument("--gt", required=True, help="folder of <name>.png (and <name>_mask.png)")
    p.add_argument("--nerf", required=True, help="folder of NeRF renders (render.json)")
    p.add_argument("--out", required=True, help="where report.json and the images go")
    p.add_argument("--run", help="run folder: background colour and events.jsonl")
    p.add_argument("--background", help="r,g,b in [0, 1] (default: the run's, else white)")
    p.add_argument("--no-plots", action="store_true", help="numpy images only, no curve")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    _add_events(p)

    p = sub.add_parser("mesh", help="extract the trained surface as a coloured PLY mesh")
    p.add_argument("run", help="run folder")
    p.add_argument("--out", required=True, help="the .ply file to write (binary, world units)")
    p.add_argument(
        "--resolution", type=int, default=256, help="grid cells along the scene box's longest side"
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="density of the surface, in 1 / unit-frame length (the box's longest half-side is "
        "1); default: ln 2 / cell, where a sample 1/64 of the box's longest side long is half "
        "opaque",
    )
    p.add_argument(
        "--floater-size",
        type=float,
        default=0.02,
        help="remove pieces smaller than this share of the box diagonal (0 = keep all)",
    )
    p.add_argument("--device", choices=DEVICES, default="auto")
    _add_events(p)

    p = sub.add_parser("bench", help="throughput and quality benchmarks (see docs/benchmarks.md)")
    from .tools.bench import add_arguments

    add_arguments(p)

    p = sub.add_parser("toy-scene", help="write the procedural test scene as a dataset")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=100, help="image width and height")
    p.add_argument("--views", type=int, default=60, help="training views (plus 4 val, 10 test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--world", action="store_true", help="opaque images with an HDRI-like sky behind the scene"
    )
    return parser


def _add_events(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", choices=["jsonl"], help="print events as JSON lines on stdout")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .runtime import configure_process

    configure_process()
    handler = {
        "train": cmd_train,
        "render": cmd_render,
        "eval": cmd_eval,
        "compare": cmd_compare,
        "mesh": cmd_mesh,
        "bench": cmd_bench,
        "toy-scene": cmd_toy,
    }[args.command]
    try:
        return handler(args)
    except USER_ERRORS as exc:
        _report_error(args, exc)
        return 2
    except (
        Exception
    ) as exc:  # unexpected: still one clear line, then the traceback for a bug report
        _report_error(args, exc)
        raise


def _report_error(args, exc: Exception) -> None:
    jsonl = getattr(args, "events", None) == "jsonl" and _is_main()  # (rank 0's stdout alone)
    if jsonl and not getattr(args, "_error_emitted", False):
        record = event("error", 0, message=str(exc), kind=type(exc).__name__)
        print(json.dumps(record), flush=True)
    print(f"error: {exc}", file=sys.stderr)


def train_config(args) -> TrainConfig:
    """The preset (on --resume: the run's saved configuration) plus the command line's changes.

    A time budget without a step count trains for the whole budget (``steps`` = 0); the preset's
    step count applies only when no budget is given. Without --preset the device picks it.
    """
    run = RunFolder(args.out)
    if args.resume and run.config_path.is_file():
        base = _saved_config(run)
    else:
        base = preset(args.preset or default_preset(args.device or "auto"))
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value
    for key in ("steps", "max_seconds", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.max_seconds and args.steps is None and "steps" not in overrides:
        overrides["steps"] = 0  # the budget is the unit
    if args.no_accel:
        overrides.update(NO_ACCEL)
    return with_overrides(base, overrides)


def default_preset(device: str) -> str:
    """The preset for ``device`` when none is asked for: ``balanced`` needs a CUDA GPU (hours on a
    CPU), ``preview`` gives a useful NeRF in minutes anywhere."""
    from .runtime import resolve_device

    return "balanced" if resolve_device(device).type == "cuda" else "preview"


def _saved_config(run: RunFolder) -> TrainConfig:
    """The configuration a run folder's ``config.json`` records (what ``--resume`` continues)."""
    path = run.config_path
    try:
        config = from_dict(run.train_settings())
        validate(config)
        return config
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        from .checkpoint import CheckpointError

        raise CheckpointError(
            f"{path}: unreadable run configuration ({type(exc).__name__}: {exc}); the trainer "
            "writes this file — restore it, or resume with the run's --preset and --set options "
            "after deleting it."
        ) from exc


def cmd_train(args) -> int:
    from .train.trainer import train

    config = train_config(args)
    printer = _EventPrinter(args, total=config.steps or None)
    try:
        result = train(config, args.dataset, args.out, resume=args.resume, on_event=printer)
    finally:
        printer.close()
    if not printer.jsonl and _is_main():
        tail = f", test PSNR {result.psnr:.2f} dB" if result.psnr is not None else ""
        print(
            f"{result.stopped} at step {result.step}{tail}; run folder: {result.run_dir}",
            file=sys.stderr,
        )
    return 0


class _EventPrinter:
    """Every job's events: JSON lines on stdout (``--events jsonl``); else, on stderr, a tqdm bar
    for training in a terminal or a line per progress event, warnings and errors."""

    def __init__(self, args, total: int | None = None):
        self.args, self.jsonl, self.bar = args, getattr(args, "events", None) == "jsonl", None
        if not self.jsonl and args.command == "train" and sys.stderr.isatty() and _is_main():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True)

    def __call__(self, record: dict) -> None:
        if record["event"] == "error":
            self.args._error_emitted = True
        if self.jsonl:
            print(json.dumps(record), flush=True)
            return
        kind = record["event"]
        if kind == "warning":  # (errors: main() prints the one line for every failure)
            print(f"warning: {record.get('message', '')}", file=sys.stderr, flush=True)
        elif kind == "eval":
            shown = {k: v for k, v in record.items() if k not in ("event", "time")}
            print(f"eval: {json.dumps(shown)}", file=sys.stderr, flush=True)
        elif kind == "start" and self.bar is not None:
            self.bar.n, self.bar.total = record["step"], record["total_steps"] or None
            self.bar.refresh()
        elif kind == "progress" and "done" in record:  # render, eval, compare, mesh
            shown = record.get("path") or record.get("name") or record.get("stage", "")
            print(f"[{record['done']}/{record['total']}] {shown}", file=sys.stderr, flush=True)
        elif kind == "progress":
            self._training_progress(record)

    def _training_progress(self, record: dict) -> None:
        if self.bar is not None:
            self.bar.update(record["step"] - self.bar.n)
            self.bar.set_postfix(
                loss=f"{record['loss']:.4f}",
                psnr=f"{record['psnr'] or 0:.2f}",
                rays_s=f"{record['rays_per_s']:.0f}",
            )
            return
        total = f"/{record['total_steps']}" if record["total_steps"] else ""
        print(
            f"step {record['step']}{total} loss {record['loss']:.5f} "
            f"psnr {record['psnr'] or 0:.2f} rays/s {record['rays_per_s']:.0f} "
            f"eta {record['eta_s']:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_main() -> bool:
    """This process prints: one alone, or rank 0 of several under torchrun (the others keep
    quiet but for their own errors on stderr)."""
    from .distributed import launched

    try:
        return launched().is_main
    except ValueError:  # (a broken torchrun environment: the error itself says so)
        return True


def cmd_render(args) -> int:
    from .eval.renderer import render_job

    manifest = render_job(
        args.run,
        args.out,
        cameras=args.cameras,
        split=args.split,
        depth_format=None if args.depth == "none" else args.depth,
        device=args.device,
        on_event=_EventPrinter(args),
    )
    if _is_main():
        print(
            f"rendered {len(manifest['views'])} views in {manifest['seconds']:.1f}s -> {args.out}",
            file=sys.stderr,
        )
    return 0


def cmd_eval(args) -> int:
    from .eval.evaluate import evaluate_run

    report = evaluate_run(
        args.run,
        args.split,
        max_views=args.max_views,
        device=args.device,
        out_dir=args.out,
        on_event=_EventPrinter(args),
    )
    if args.json:
        print(json.dumps(report))
    elif args.events != "jsonl":
        for view in report["views"]:
            print(f"{view['name']:>24}  PSNR {view['psnr']:6.2f}  SSIM {view['ssim']:.4f}")
        print(
            f"{'mean':>24}  PSNR {report['psnr']:6.2f}  SSIM {report['ssim']:.4f}  "
            f"({report['n_views']} views, {report['seconds']:.1f}s)"
        )
    return 0


def cmd_compare(args) -> int:
    from .eval.compare import compare

    background = None
    if args.background:
        try:
            background = tuple(float(v) for v in args.background.split(","))
        except ValueError:
            background = ()
        if len(background) != 3:
            raise ValueError(f"--background {args.background!r}: expected r,g,b")
    report = compare(
        args.gt,
        args.nerf,
        args.out,
        run_dir=args.run,
        background=background,
        on_event=_EventPrinter(args),
        use_matplotlib=not args.no_plots,
    )
    if args.json:
        print(json.dumps(report))
    ssim = report["ssim"] if report["ssim"] is not None else float("nan")
    if report["psnr"] is None and report["empty_views"]:  # every NeRF render is empty
        print(f"compared {report['n_views']} views: every NeRF render is empty, not scored "
              f"-> {args.out}", file=sys.stderr)  # fmt: skip
        return 0
    print(
        f"compared {report['n_views']} views: PSNR {report['psnr']:.2f} dB, SSIM {ssim:.4f} "
        f"-> {args.out}",
        file=sys.stderr,
    )
    return 0


def cmd_mesh(args) -> int:
    from .eval.mesh import MeshSettings, mesh_job

    settings = MeshSettings(args.resolution, args.threshold, args.floater_size)
    summary = mesh_job(
        args.run, args.out, settings, device=args.device, on_event=_EventPrinter(args)
    )
    print(
        f"mesh of {summary['n_vertices']} vertices, {summary['n_faces']} faces in "
        f"{summary['seconds']:.1f}s -> {args.out}",
        file=sys.stderr,
    )
    return 0


def cmd_bench(args) -> int:
    from .tools.bench import run

    return run(args, say=lambda line: print(line, flush=True))


def cmd_toy(args) -> int:
    from .tools.toy_scene import make_toy_dataset

    out = make_toy_dataset(
        args.out,
        size=(args.size, args.size),
        n_train=args.views,
        n_val=4,
        n_test=10,
        seed=args.seed,
        world=args.world,
    )
    print(f"wrote the toy scene to {out}", file=sys.stderr)
    return 0
