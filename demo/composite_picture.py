"""The README's picture of a CG object composited into a NeRF scene (docs/composite.png):

    .venv/bin/python demo/composite_picture.py [--out DIR] [--seconds 300] [--size 160 120]

A NeRF of a grey box on a ground plane (exported, trained and rendered through the add-on's
operators), then a CG monkey standing partly behind the NeRF's box. Left: Import View's Alpha
Over (the NeRF always behind: the monkey is drawn over the box and casts no shadow). Right: Depth
Compositing and Shadows on the NeRF, with the ground plane as the mesh of the NeRF's ground
(Extract Mesh makes one from the NeRF itself).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# A smaller NeRF than Preview: sharper after minutes on a busy 2-core CPU (more steps a second).
SMALL_MODEL = (
    "--set model.depth=2 --set model.width=64 --set model.view_width=32 "
    "--set sampling.n_coarse=16 --set sampling.n_fine=16 --set batch_rays=512"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "demo_out" / "composite"), help="work folder")
    p.add_argument("--picture", default=str(ROOT / "docs" / "composite.png"))
    p.add_argument("--seconds", type=float, default=480.0, help="training budget")
    p.add_argument("--views", type=int, default=40, help="rig views (all splits)")
    p.add_argument("--train-size", type=int, default=48, help="training images' side, pixels")
    p.add_argument("--size", type=int, nargs=2, default=(180, 120), help="picture panel w h")
    p.add_argument(
        "--train-args",
        default=SMALL_MODEL,
        help="extra training settings (default: a NeRF smaller than Preview; '' for Preview)",
    )
    return p.parse_args(argv)


def ok(result: set[str]) -> None:
    import bpy

    if result != {"FINISHED"}:
        sys.exit(f"composite_picture: failed: {bpy.context.scene.nerf.job_status}")


def build_scene():
    """The default cube on a ground plane with a light grey material, lit by a low sun."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=False)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.use_denoising = 32, False
    bpy.ops.mesh.primitive_plane_add(size=4.0, location=(0.0, 0.0, -1.0), scale=(1.5, 1.2, 1.0))
    ground = bpy.context.object
    ground.name = "Ground"
    material = bpy.data.materials.new("Ground")
    nodes = material.node_tree.nodes
    checker = nodes.new("ShaderNodeTexChecker")  # texture: the NeRF finds the ground's depth
    checker.inputs["Scale"].default_value = 6.0
    checker.inputs["Color1"].default_value = (0.6, 0.5, 0.35, 1.0)
    checker.inputs["Color2"].default_value = (0.35, 0.3, 0.2, 1.0)
    material.node_tree.links.new(checker.outputs["Color"], nodes["Principled BSDF"].inputs[0])
    ground.data.materials.append(material)
    cube = bpy.data.materials.new("Box")
    cube.node_tree.nodes["Principled BSDF"].inputs[0].default_value = (0.2, 0.45, 0.8, 1.0)
    bpy.data.objects["Cube"].data.materials.append(cube)
    bpy.data.objects.remove(bpy.data.objects["Light"])
    from mathutils import Vector

    travel = Vector((-0.3, -0.3, -0.9))  # high, from the right: short shadows to the left
    bpy.ops.object.light_add(type="SUN", rotation=travel.to_track_quat("-Z", "Y").to_euler())
    bpy.context.object.data.energy = 4.0
    scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.4
    return scene, ground


def train(scene, out: Path, args) -> None:
    import bpy

    nerf = scene.nerf
    scene.render.resolution_x = scene.render.resolution_y = args.train_size
    nerf.dataset_dir, nerf.run_dir = str(out / "data"), str(out / "run")
    nerf.subject, nerf.rig_views, nerf.rig_hemisphere = "VISIBLE", args.views, True
    scene.render.film_transparent = True
    ok(bpy.ops.nerf.export_dataset())
    nerf.preset, nerf.train_steps, nerf.train_seconds = "PREVIEW", 0, args.seconds
    nerf.device, nerf.train_extra_args = "CPU", args.train_args
    ok(bpy.ops.nerf.train())


def composite(scene, ground, out: Path, size) -> list[np.ndarray]:
    """Alpha Over, then Depth Compositing with Shadows on the NeRF, rendered by Blender."""
    import bpy

    from blender_nerf.scene import scene_io

    camera = scene.camera
    camera.location = (6.6, -5.8, 2.8)
    camera.rotation_euler = (1.32, 0.0, 0.85)
    scene.render.resolution_x, scene.render.resolution_y = size
    nerf = scene.nerf
    nerf.render_dir, nerf.render_source, nerf.render_depth = str(out / "render"), "ACTIVE", True
    ok(bpy.ops.nerf.render_views())
    bpy.data.objects["Cube"].hide_render = True  # the NeRF stands in for the box and ground
    bpy.ops.mesh.primitive_monkey_add(size=1.1, location=(-2.0, -0.7, -0.45), rotation=(0, 0, 0.8))
    monkey = bpy.context.object
    material = bpy.data.materials.new("CG")
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (
        0.8, 0.1, 0.05, 1.0,
    )  # fmt: skip
    monkey.data.materials.append(material)
    bpy.ops.object.shade_smooth()
    images = []
    nerf.import_target = "COMPOSITOR"
    for depth_and_shadows in (False, True):
        nerf.import_use_depth = nerf.import_use_shadow_catcher = depth_and_shadows
        nerf.import_shadow_catcher = ground
        if not depth_and_shadows:
            ground.hide_render = True
        else:
            ground.hide_render = False  # the catcher: never seen itself, only its shadows
        ok(bpy.ops.nerf.import_view())
        path = out / f"composite_{int(depth_and_shadows)}.png"
        scene.render.filepath, scene.render.use_file_extension = str(path), False
        scene.render.image_settings.file_format = "PNG"
        bpy.ops.render.render(write_still=True)
        images.append(scene_io.read_image(path))
    return images


def save_side_by_side(images: list[np.ndarray], picture: Path) -> None:
    from PIL import Image, ImageDraw

    from blender_nerf.nerf_engine.data.images import composite, to_uint8

    panels = [to_uint8(composite(image, (1.0, 1.0, 1.0))) for image in images]
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    board = Image.fromarray(np.concatenate([panels[0], gap, panels[1]], axis=1))
    draw = ImageDraw.Draw(board)
    w = panels[0].shape[1]
    draw.text((4, 2), "Alpha Over (before)", fill=(0, 0, 0))
    draw.text((w + 8, 2), "Depth + shadows", fill=(0, 0, 0))
    board.save(picture)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    import blender_nerf

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scene, ground = build_scene()
    blender_nerf.register()
    train(scene, out, args)
    images = composite(scene, ground, out, tuple(args.size))
    save_side_by_side(images, Path(args.picture))
    print(f"wrote {args.picture}")


if __name__ == "__main__":
    main(sys.argv[1:])
