"""The whole loop on the demo scene: `python3 build.py demo` runs this in the project venv.

One Blender session (bpy) with the add-on registered, every Blender-side step through its
operators, as an artist's script would do it:

1. build the procedural demo scene and export a NeRF dataset (Export Dataset: rig cameras,
   Cycles, transparent film);
2. train the `preview` preset with the engine CLI (bounded by a wall-clock budget; resumes);
3. Import Cameras of the test split, Render Views from them, and Compare them with Blender's own
   renders (report.json, side-by-side images, the training curve, in the run folder);
4. a novel orbit: an animated camera, Render Views over its frames, Import View as an image-plane
   sequence on that camera; the scene is saved so the orbit plays in Blender.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nerf_engine.data.cameras import look_at  # noqa: E402
from nerf_engine.data.dataset import read_split  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "demo_out"), help="output folder")
    p.add_argument("--views", type=int, default=72, help="rig views (all splits)")
    p.add_argument("--resolution", type=int, default=100)
    p.add_argument("--preset", default="preview")
    p.add_argument("--steps", type=int, help="stop after this many steps if the budget lasts")
    p.add_argument(
        "--seconds", type=float, default=300.0, help="training budget: trains for all of it"
    )
    p.add_argument("--orbit-frames", type=int, default=24)
    return p.parse_args(argv)


def operator(name: str, **kwargs) -> None:
    """Run ``bpy.ops.nerf.<name>``; stop the demo with the operator's message if it fails."""
    import bpy

    try:
        result = getattr(bpy.ops.nerf, name)(**kwargs)
    except RuntimeError as exc:  # an ERROR report
        sys.exit(f"demo: {name} failed: {exc}")
    if result != {"FINISHED"}:
        sys.exit(f"demo: {name} did not finish ({result}): {bpy.context.scene.nerf.job_status}")


def train(dataset: Path, run: Path, args: argparse.Namespace) -> None:
    """The engine CLI, as a user would run it (it prints its progress)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    steps = ["--steps", str(args.steps)] if args.steps else []
    resume = ["--resume"] if (run / "checkpoints").is_dir() else []
    cmd = [sys.executable, "-m", "nerf_engine", "train", str(dataset), "--out", str(run),
           "--preset", args.preset, "--max-seconds", str(args.seconds), "--set", "log_every=100",
           *steps, *resume]  # fmt: skip
    if subprocess.run(cmd, env=env).returncode != 0:
        sys.exit("demo: training failed (see the message above)")


def orbit_camera(scene, dataset: Path, frames: int):
    """An animated camera on a circle at 25° elevation, at the rig's mean distance: views that
    nobody rendered. Its lens is the rig's (the scene camera's)."""
    import bpy

    from blender_nerf.scene import scene_io

    train_split = read_split(dataset, "train")
    centre = np.asarray(train_split.aabb).mean(axis=0)
    radius = float(np.linalg.norm(train_split.poses()[:, :3, 3] - centre, axis=-1).mean())
    data = scene.camera.data.copy()
    camera = bpy.data.objects.new("Orbit", data)
    scene.collection.objects.link(camera)
    for frame in range(1, frames + 1):
        a, e = 2 * math.pi * (frame - 1) / frames, math.radians(25)
        direction = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        scene_io.set_camera_pose(camera, look_at(centre + radius * direction, centre))
        camera.keyframe_insert("location", frame=frame)
        camera.keyframe_insert("rotation_euler", frame=frame)
    scene.frame_start, scene.frame_end = 1, frames
    return camera


def export_step(out: Path, args: argparse.Namespace):
    """The demo scene, with the add-on registered, exported through Export Dataset."""
    import blender_nerf
    from demo.scene import build_demo_scene

    scene = build_demo_scene(resolution=args.resolution)
    blender_nerf.register()
    nerf = scene.nerf
    nerf.dataset_dir, nerf.run_dir = str(out / "dataset"), str(out / "run")
    nerf.camera_source, nerf.rig_views, nerf.rig_hemisphere = "RIG", args.views, True
    nerf.split_val, nerf.split_test = 0.04, 0.12
    operator("export_dataset")
    return scene


def compare_step(scene, out: Path) -> None:
    """Import Cameras (the test split), Render Views and Compare through the operators."""
    import bpy

    nerf = scene.nerf
    operator("import_cameras", filepath=str(out / "dataset" / "transforms_test.json"))
    bpy.ops.object.select_all(action="DESELECT")
    for camera in bpy.data.collections["NeRF Cameras transforms_test"].objects:
        camera.select_set(True)
    nerf.render_source, nerf.render_dir = "SELECTED", str(out / "test_renders")
    operator("render_views")
    operator("compare")
    shutil.copyfile(out / "run" / "compare" / "side_by_side.png", out / "side_by_side.png")


def orbit_step(scene, out: Path, frames: int) -> None:
    """Render Views of an animated orbit camera, imported back as an image-plane sequence."""
    scene.camera = orbit_camera(scene, out / "dataset", frames)
    nerf = scene.nerf
    nerf.render_source, nerf.render_dir = "ANIMATION", str(out / "orbit")
    operator("render_views")
    nerf.import_target = "PLANE"
    operator("import_view")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    import bpy

    import blender_nerf

    print(f"[1/4] building the demo scene and exporting {args.views} views ...", flush=True)
    scene = export_step(out, args)
    print(f"[2/4] training the {args.preset} preset for {args.seconds:.0f} s ...", flush=True)
    train(out / "dataset", out / "run", args)
    print("[3/4] Render Views and Compare on the test views ...", flush=True)
    compare_step(scene, out)
    print(f"[4/4] a novel orbit of {args.orbit_frames} frames, imported as a plane ...", flush=True)
    orbit_step(scene, out, args.orbit_frames)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "demo_scene.blend"))
    nerf = scene.nerf
    numbers = (
        f"test PSNR {nerf.compare_psnr:.2f} dB, SSIM {nerf.compare_ssim:.3f} over "
        f"{nerf.compare_views} views (on the objects: {nerf.compare_psnr_mask:.2f} dB, SSIM "
        f"{nerf.compare_ssim_mask:.3f})"
    )
    blender_nerf.unregister()
    print(f"""
done in {time.time() - started:.0f} s
  {numbers}
  scene        {out / "demo_scene.blend"}   (open it: the Orbit camera plays the NeRF orbit)
  dataset      {out / "dataset"}
  run          {out / "run"}   (checkpoints, previews, events.jsonl)
  compare      {out / "run" / "compare"}   (report.json, side_by_side_*.png, training_curve.png)
  test renders {out / "test_renders"}
  novel orbit  {out / "orbit"}
  side by side {out / "side_by_side.png"}   (ground truth | NeRF | error)""")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
