"""``python -m nerf_engine train|render|eval|bench|toy-scene`` — the one place that prints.

Exit status: 0 success (also a graceful stop on SIGINT/SIGTERM, after a checkpoint), 2 bad input
(dataset, checkpoint, settings), 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
        help="default: balanced (on resume: the run's own)",
    )
    p.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    p.add_argument(
        "--max-seconds", type=float, help="wall-clock budget; checkpoint and stop when spent"
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
    p.add_argument("--events", choices=["jsonl"], help="print events as JSON lines on stdout")
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

    p = sub.add_parser("eval", help="render a split and report PSNR/SSIM against its images")
    p.add_argument("run", help="run folder")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument(
        "--max-views", type=int, default=0, help="evaluate only the first N views (0 = all)"
    )
    p.add_argument("--out", help="also write the renders here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", choices=DEVICES, default="auto")

    p = sub.add_parser("bench", help="throughput and quality benchmarks (see docs/benchmarks.md)")
    from .tools.bench import add_arguments

    add_arguments(p)

    p = sub.add_parser("toy-scene", help="write the procedural test scene as a dataset")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=100, help="image width and height")
    p.add_argument("--views", type=int, default=60, help="training views (plus 4 val, 10 test)")
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .runtime import configure_process

    configure_process()
    handler = {
        "train": cmd_train,
        "render": cmd_render,
        "eval": cmd_eval,
        "toy-scene": cmd_toy,
    }.get(args.command)
    if handler is None:
        from .tools.bench import run as cmd_bench

        handler = cmd_bench
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
    if getattr(args, "events", None) == "jsonl" and not getattr(args, "_error_emitted", False):
        print(
            json.dumps(
                {"event": "error", "step": 0, "message": str(exc), "kind": type(exc).__name__}
            ),
            flush=True,
        )
    print(f"error: {exc}", file=sys.stderr)


def train_config(args) -> TrainConfig:
    """The preset (on --resume: the run's saved configuration) plus the command line's changes."""
    saved = Path(args.out) / "config.json"
    if args.resume and saved.is_file():
        base = _saved_config(saved)
    else:
        base = preset(args.preset or "balanced")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value
    for key in ("steps", "max_seconds", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.no_accel:
        overrides.update(NO_ACCEL)
    return with_overrides(base, overrides)


def _saved_config(path: Path) -> TrainConfig:
    """The configuration a run folder's ``config.json`` records (what ``--resume`` continues)."""
    try:
        config = from_dict(json.loads(path.read_text(encoding="utf-8"))["config"])
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
    printer = _EventPrinter(jsonl=args.events == "jsonl", total=config.steps)

    def on_event(record: dict) -> None:
        if record["event"] == "error":
            args._error_emitted = True
        printer(record)

    try:
        result = train(config, args.dataset, args.out, resume=args.resume, on_event=on_event)
    finally:
        printer.close()
    if not printer.jsonl:
        tail = f", test PSNR {result.psnr:.2f} dB" if result.psnr is not None else ""
        print(
            f"{result.stopped} at step {result.step}{tail}; run folder: {result.run_dir}",
            file=sys.stderr,
        )
    return 0


class _EventPrinter:
    """JSON lines on stdout, or a tqdm bar in a terminal, or a plain line per progress event."""

    def __init__(self, jsonl: bool, total: int):
        self.jsonl, self.bar = jsonl, None
        if not jsonl and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True)

    def __call__(self, record: dict) -> None:
        if self.jsonl:
            print(json.dumps(record), flush=True)
            return
        kind = record["event"]
        if kind == "start" and self.bar is not None:
            self.bar.n = record["step"]
            self.bar.total = record["total_steps"]
            self.bar.refresh()
        elif kind == "progress":
            if self.bar is not None:
                self.bar.update(record["step"] - self.bar.n)
                self.bar.set_postfix(
                    loss=f"{record['loss']:.4f}",
                    psnr=f"{record['psnr'] or 0:.2f}",
                    rays_s=f"{record['rays_per_s']:.0f}",
                )
            else:
                print(
                    f"step {record['step']}/{record['total_steps']} loss {record['loss']:.5f} "
                    f"psnr {record['psnr'] or 0:.2f} rays/s {record['rays_per_s']:.0f} "
                    f"eta {record['eta_s']:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )
        elif kind in ("eval", "error"):
            print(
                kind
                + ": "
                + json.dumps({k: v for k, v in record.items() if k not in ("event", "time")}),
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_render(args) -> int:
    from .eval.renderer import Renderer, frames_to_render, render_frames

    renderer = Renderer.from_run_dir(args.run, args.device)
    for note in renderer.run.notes:
        print(f"warning: {note}", file=sys.stderr, flush=True)
    frames = frames_to_render(renderer.run, args.cameras, args.split)

    def on_view(index: int, total: int, path: Path) -> None:
        print(f"[{index + 1}/{total}] {path}", file=sys.stderr, flush=True)

    depth = None if args.depth == "none" else args.depth
    manifest = render_frames(renderer, frames, args.out, depth_format=depth, on_view=on_view)
    print(
        f"rendered {len(manifest['views'])} views in {manifest['seconds']:.1f}s -> {args.out}",
        file=sys.stderr,
    )
    return 0


def cmd_eval(args) -> int:
    from .eval.evaluate import evaluate_run

    report = evaluate_run(
        args.run, args.split, max_views=args.max_views, device=args.device, out_dir=args.out
    )
    if args.json:
        print(json.dumps(report))
    else:
        for view in report["views"]:
            print(f"{view['name']:>24}  PSNR {view['psnr']:6.2f}  SSIM {view['ssim']:.4f}")
        print(
            f"{'mean':>24}  PSNR {report['psnr']:6.2f}  SSIM {report['ssim']:.4f}  "
            f"({report['n_views']} views, {report['seconds']:.1f}s)"
        )
    return 0


def cmd_toy(args) -> int:
    from .tools.toy_scene import make_toy_dataset

    out = make_toy_dataset(
        args.out,
        size=(args.size, args.size),
        n_train=args.views,
        n_val=4,
        n_test=10,
        seed=args.seed,
    )
    print(f"wrote the toy scene to {out}", file=sys.stderr)
    return 0
