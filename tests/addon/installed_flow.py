"""Run by test_package.py in a fresh interpreter whose BLENDER_USER_RESOURCES is a temporary
folder: install the extension zip with Blender's own operator, then export -> train (tiny) ->
render -> import (all three) -> compare with the installed copy. Prints one JSON line of results.

Usage: python installed_flow.py EXTENSION.zip WORK_DIR  (nothing of the repository on sys.path)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bpy

TINY = (
    "--set model.depth=2 --set model.width=32 --set model.view_width=16 "
    "--set model.skip_layer=none --set sampling.n_coarse=8 --set sampling.n_fine=8 "
    "--set batch_rays=256 --set log_every=20 --set preview_every=100 --set checkpoint_every=100 "
    "--set preview_max_side=16 --set eval_views=1"
)


def main(zip_path: str, work: Path) -> dict:
    results = {}
    results["install"] = sorted(
        bpy.ops.extensions.package_install_files(
            filepath=zip_path, repo="user_default", enable_on_install=True
        )
    )
    module = sys.modules["bl_ext.user_default.blender_nerf"]
    results["module_file"] = module.__file__
    from bl_ext.user_default.blender_nerf import preferences
    from bl_ext.user_default.blender_nerf.jobs import engine_python

    engine = preferences.find_engine(bpy.context)
    probe = [engine.executable, "-c", "import nerf_engine; print(nerf_engine.__file__)"]
    found = subprocess.run(probe, env=engine.env(), capture_output=True, text=True, cwd=work)
    results["engine_file"] = found.stdout.strip()
    results["addon_dir"] = engine_python.addon_dir()

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.use_denoising = 2, False
    scene.render.resolution_x = scene.render.resolution_y = 24
    nerf = scene.nerf
    nerf.dataset_dir, nerf.rig_views = str(work / "data"), 8
    results["export"] = sorted(bpy.ops.nerf.export_dataset())
    nerf.run_dir, nerf.preset, nerf.train_steps = str(work / "run"), "PREVIEW", 120
    nerf.device, nerf.train_extra_args = "CPU", TINY
    results["train"] = sorted(bpy.ops.nerf.train())
    scene.camera.location = scene.camera.location * 0.55
    nerf.render_dir = str(work / "render")
    results["render"] = sorted(bpy.ops.nerf.render_views())
    for target in ("PLANE", "CAMERA_BACKGROUND", "COMPOSITOR"):
        nerf.import_target = target
        results[target] = sorted(bpy.ops.nerf.import_view())
    results["tagged"] = sorted(
        f"{kind}:{idb.name}"
        for kind in ("objects", "materials", "images", "node_groups")
        for idb in getattr(bpy.data, kind)
        if "nerf_import" in idb
    )
    results["background_images"] = len(scene.camera.data.background_images)
    results["compare"] = sorted(bpy.ops.nerf.compare())
    results["report"] = json.loads((work / "run" / "compare" / "report.json").read_text())
    results["status"] = nerf.job_status
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]))))
