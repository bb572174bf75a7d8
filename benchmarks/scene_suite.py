"""The benchmark scene suite: varied Blender scenes built by script (real bpy, Cycles on the CPU)
and exported as NeRF datasets through the add-on's own Export Dataset, then cached.

Each scene stresses something a NeRF finds hard; none of them is the demo scene the defaults were
first tuned on:

- ``textured_suzanne``: fine periodic (a 3-pixel checker at 100×100) and noisy texture;
- ``glossy_still_life``: gold metal, a clear-coat torus and glossy plastic under an HDRI, on a
  wide checker disc — view-dependent colour and a large flat region;
- ``thin_structures``: a fence of 2 cm posts and 1.5 cm rails, a wire coil and a bare tree —
  thin things an occupancy grid or a blurry field loses;
- ``far_city_block``: 10–45 m buildings on a 110 m ground plane, 300 m from the origin — a subject
  far from the origin and nowhere near unit-sized;
- ``alpha_plant``: leaves whose lacy outline is an alpha cut-out, and a glass sphere — soft and
  hard alpha edges over a transparent film.

    python benchmarks/scene_suite.py --out DIR [--resolution 100] [--views 100] [--test 20]
        [--scenes textured_suzanne,...]

writes ``DIR/<scene>_<resolution>/`` (transforms_{train,val,test}.json and images); a scene whose
folder already holds an export of the same script, sizes and view counts is not rendered again.
``python -m nerf_engine bench --suite DIR`` trains on them (it runs this script when they are
missing). Needs ``bpy`` (the repository's .venv has it).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".suite.json"  # what a cached scene folder was built from
SAMPLES = 64  # Cycles samples per pixel (denoised): clean enough that the NeRF is what limits


# --- materials -----------------------------------------------------------------------------------


def _principled(name: str, color=(0.8, 0.8, 0.8), **inputs):
    """A material with a Principled BSDF; ``inputs`` by socket name (``Roughness=0.3``)."""
    import bpy

    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    for socket, value in inputs.items():
        bsdf.inputs[socket.replace("_", " ")].default_value = value
    return mat


def _textured(name: str, build: Callable, **inputs):
    """A Principled material whose base colour comes from ``build(nodes, links)``."""
    mat = _principled(name, **inputs)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    links.new(build(nodes, links), nodes["Principled BSDF"].inputs["Base Color"])
    return mat


def _checker(scale: float, a, b):
    def build(nodes, links):
        tex = nodes.new("ShaderNodeTexChecker")
        tex.inputs["Scale"].default_value = scale
        tex.inputs["Color1"].default_value = (*a, 1.0)
        tex.inputs["Color2"].default_value = (*b, 1.0)
        return tex.outputs["Color"]

    return build


def _noisy_checker(nodes, links):
    """A fine checker multiplied by fine noise: periodic and random detail together."""
    checker = _checker(24.0, (0.9, 0.85, 0.2), (0.1, 0.25, 0.6))(nodes, links)
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 40.0
    noise.inputs["Detail"].default_value = 8.0
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.inputs["Factor"].default_value = 0.7
    links.new(checker, mix.inputs["A"])
    links.new(noise.outputs["Color"], mix.inputs["B"])
    return mix.outputs["Result"]


def _brick(scale: float):
    def build(nodes, links):
        tex = nodes.new("ShaderNodeTexBrick")
        tex.inputs["Scale"].default_value = scale
        tex.inputs["Color1"].default_value = (0.55, 0.22, 0.12, 1.0)
        tex.inputs["Color2"].default_value = (0.72, 0.4, 0.25, 1.0)
        tex.inputs["Mortar"].default_value = (0.85, 0.85, 0.8, 1.0)
        return tex.outputs["Color"]

    return build


def _stone(dark, light, scale: float = 5.0):
    """Noise between two colours: marble, asphalt."""

    def build(nodes, links):
        noise = nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = scale
        noise.inputs["Detail"].default_value = 6.0
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].color = (*dark, 1.0)
        ramp.color_ramp.elements[1].color = (*light, 1.0)
        links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
        return ramp.outputs["Color"]

    return build


def _leaf_material():
    """Green leaves with a lacy alpha cut-out: Transparent BSDF where thresholded noise is low."""
    import bpy

    mat = _principled("Leaf", (0.15, 0.45, 0.1), Roughness=0.5)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 9.0
    cut = nodes.new("ShaderNodeMath")
    cut.operation = "GREATER_THAN"
    cut.inputs[1].default_value = 0.45
    links.new(noise.outputs["Fac"], cut.inputs[0])
    clear = nodes.new("ShaderNodeBsdfTransparent")
    mix = nodes.new("ShaderNodeMixShader")
    links.new(cut.outputs["Value"], mix.inputs["Fac"])
    links.new(clear.outputs["BSDF"], mix.inputs[1])
    links.new(nodes["Principled BSDF"].outputs["BSDF"], mix.inputs[2])
    links.new(mix.outputs["Shader"], nodes["Material Output"].inputs["Surface"])
    if hasattr(mat, "surface_render_method"):
        mat.surface_render_method = "DITHERED"
    mat.use_backface_culling = False
    bpy.context.view_layer.update()
    return mat


# --- objects -------------------------------------------------------------------------------------


def _with(material):
    import bpy

    obj = bpy.context.object
    obj.data.materials.append(material)
    return obj


def _cylinder(radius: float, start, end, material, vertices: int = 12):
    """A cylinder from point ``start`` to ``end`` (metres)."""
    import bpy
    from mathutils import Vector

    a, b = Vector(start), Vector(end)
    axis = b - a
    bpy.ops.mesh.primitive_cylinder_add(
        vertices=vertices, radius=radius, depth=axis.length, location=(a + b) / 2
    )
    obj = bpy.context.object
    obj.rotation_mode = "QUATERNION"
    obj.rotation_quaternion = Vector((0, 0, 1)).rotation_difference(axis.normalized())
    return _with(material)


def _ground_disc(radius: float, material, location=(0, 0, 0)):
    import bpy

    bpy.ops.mesh.primitive_circle_add(
        vertices=128, radius=radius, fill_type="NGON", location=location
    )
    return _with(material)


def _sun(energy: float = 3.0, angle=(40, 0, 30)):
    import bpy

    bpy.ops.object.light_add(type="SUN", rotation=tuple(math.radians(a) for a in angle))
    bpy.context.object.data.energy = energy


def _world(color=(0.3, 0.3, 0.32), hdri: str | None = None, strength: float = 1.0):
    import bpy

    world = bpy.data.worlds.new("World")
    world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = nodes["Background"]
    background.inputs["Color"].default_value = (*color, 1.0)
    background.inputs["Strength"].default_value = strength
    if hdri:
        folder = Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world"))
        env = nodes.new("ShaderNodeTexEnvironment")
        env.image = bpy.data.images.load(str(folder / hdri))
        links.new(env.outputs["Color"], background.inputs["Color"])
    bpy.context.scene.world = world


# --- the scenes ----------------------------------------------------------------------------------


def textured_suzanne() -> None:
    import bpy

    _cylinder(
        0.55,
        (0, 0, 0),
        (0, 0, 0.7),
        _textured("Marble", _stone((0.35, 0.33, 0.3), (0.92, 0.9, 0.86)), Roughness=0.4),
        48,
    )
    bpy.ops.mesh.primitive_monkey_add(size=1.0, location=(0, 0, 1.1))
    bpy.ops.object.modifier_add(type="SUBSURF")
    bpy.ops.object.shade_smooth()
    _with(_textured("NoisyChecker", _noisy_checker, Roughness=0.6))
    _sun(3.0)
    _world((0.25, 0.25, 0.27))


def glossy_still_life() -> None:
    import bpy

    dark, light = (0.08, 0.08, 0.08), (0.85, 0.85, 0.82)
    _ground_disc(1.7, _textured("Checker", _checker(10.0, dark, light), Roughness=0.35))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.4, location=(0.5, 0.3, 0.4), segments=64)
    bpy.ops.object.shade_smooth()
    _with(_principled("Gold", (1.0, 0.77, 0.34), Metallic=1.0, Roughness=0.15))
    bpy.ops.mesh.primitive_torus_add(
        major_radius=0.35, minor_radius=0.12, location=(-0.55, 0.35, 0.12)
    )
    bpy.ops.object.shade_smooth()
    _with(
        _principled(
            "ClearCoat", (0.7, 0.05, 0.05), Roughness=0.5, Coat_Weight=1.0, Coat_Roughness=0.03
        )
    )
    bpy.ops.mesh.primitive_cube_add(size=0.5, location=(-0.2, -0.55, 0.25))
    _with(_textured("Brick", _brick(5.0), Roughness=0.7))
    bpy.ops.mesh.primitive_cone_add(radius1=0.25, depth=0.7, location=(0.55, -0.5, 0.35))
    bpy.ops.object.shade_smooth()
    _with(_principled("BluePlastic", (0.05, 0.2, 0.7), Roughness=0.2))
    _world(hdri="courtyard.exr")


def thin_structures() -> None:
    import bpy

    wood = _principled("Wood", (0.45, 0.28, 0.12), Roughness=0.7)
    metal = _principled("Wire", (0.8, 0.8, 0.85), Metallic=1.0, Roughness=0.3)
    _ground_disc(1.6, _principled("Ground", (0.55, 0.6, 0.45), Roughness=0.9))
    corners = [(-0.9, -0.9), (0.9, -0.9), (0.9, 0.9)]  # a fence on two sides of a square
    for (x0, y0), (x1, y1) in itertools.pairwise(corners):
        for i in range(8):
            t = i / 7
            x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            _cylinder(0.02, (x, y, 0), (x, y, 0.7), wood)
        for height in (0.3, 0.6):
            _cylinder(0.015, (x0, y0, height), (x1, y1, height), wood)
    coil = bpy.data.curves.new("Coil", "CURVE")
    coil.dimensions, coil.bevel_depth = "3D", 0.008
    spline = coil.splines.new("POLY")
    points = [
        (0.45 * math.cos(a / 10), 0.45 * math.sin(a / 10) - 0.1, 0.05 + a / 200) for a in range(200)
    ]
    spline.points.add(len(points) - 1)
    for point, co in zip(spline.points, points, strict=True):
        point.co = (*co, 1.0)
    obj = bpy.data.objects.new("Coil", coil)
    bpy.context.scene.collection.objects.link(obj)
    obj.data.materials.append(metal)
    _cylinder(0.04, (-0.3, 0.45, 0), (-0.3, 0.45, 0.9), wood)  # a bare tree: trunk, then branches
    for k in range(7):
        a = k * 2.4
        tip = (-0.3 + 0.4 * math.cos(a), 0.45 + 0.4 * math.sin(a), 1.0 + 0.05 * k)
        _cylinder(0.012, (-0.3, 0.45, 0.6 + 0.04 * k), tip, wood, vertices=8)
    _sun(3.5)
    _world((0.28, 0.3, 0.33))


def far_city_block() -> None:
    import bpy

    origin = (300.0, -200.0, 40.0)  # metres: nowhere near the world origin
    x0, y0, z0 = origin
    bpy.ops.mesh.primitive_plane_add(size=110.0, location=origin)
    _with(_textured("Asphalt", _stone((0.08, 0.08, 0.09), (0.3, 0.3, 0.28), 0.2), Roughness=0.9))
    facade = _textured("Facade", _brick(0.6), Roughness=0.8)
    glass = _principled("Glass", (0.2, 0.3, 0.4), Metallic=0.6, Roughness=0.1)
    towers = [(-25, -20, 14, 45), (5, -25, 18, 22), (25, 10, 16, 30), (-15, 20, 20, 12)]
    for i, (dx, dy, side, height) in enumerate(towers):
        bpy.ops.mesh.primitive_cube_add(size=1.0, location=(x0 + dx, y0 + dy, z0 + height / 2))
        bpy.context.object.scale = (side, side, height)
        _with(glass if i == 1 else facade)
    _sun(3.0, (50, 0, 120))
    _world((0.45, 0.5, 0.6))


def alpha_plant() -> None:
    import bpy

    _cylinder(0.3, (0, 0, 0), (0, 0, 0.45), _principled("Pot", (0.7, 0.32, 0.18), Roughness=0.8))
    stem = _principled("Stem", (0.2, 0.4, 0.1), Roughness=0.6)
    leaf = _leaf_material()
    for k in range(6):
        a = k * 1.05
        tip = (0.5 * math.cos(a), 0.5 * math.sin(a), 1.0 + 0.08 * k)
        _cylinder(0.015, (0, 0, 0.4), tip, stem, vertices=8)
        bpy.ops.mesh.primitive_plane_add(size=0.45, location=tip)
        bpy.context.object.rotation_euler = (0.5, 0.3 * k, a)
        _with(leaf)
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.25, location=(0.65, -0.45, 0.25), segments=48)
    bpy.ops.object.shade_smooth()
    _with(_principled("GlassBall", (0.95, 0.97, 1.0), Roughness=0.0, Transmission_Weight=1.0))
    _sun(3.0)
    _world((0.3, 0.3, 0.3))


SCENES: dict[str, Callable[[], None]] = {
    "textured_suzanne": textured_suzanne,
    "glossy_still_life": glossy_still_life,
    "thin_structures": thin_structures,
    "far_city_block": far_city_block,
    "alpha_plant": alpha_plant,
}


# --- building and exporting ----------------------------------------------------------------------


def fingerprint(name: str, resolution: int, views: int, test: int, samples: int) -> str:
    """What a cached export depends on: this script's text and the sizes."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(json.dumps([name, resolution, views, test, samples]).encode())
    return digest.hexdigest()[:16]


def build_scene(name: str, resolution: int, samples: int = SAMPLES):
    """Replace the current file with scene ``name``, rendered by Cycles on the CPU at
    ``resolution``² pixels."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    SCENES[name]()
    bpy.ops.object.camera_add(location=(0, -6, 3))  # the rig copies its lens (50 mm)
    scene.camera = bpy.context.object
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True  # OpenImageDenoise, on the CPU
    scene.render.resolution_x = scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    return scene


def export(name: str, out: Path, resolution: int, views: int, test: int, samples: int) -> Path:
    """Build scene ``name`` and export ``views`` training + 2 validation + ``test`` test views on
    the upper hemisphere into ``out/<name>_<resolution>`` (unless that is cached); its path."""
    folder = out / f"{name}_{resolution}"
    stamp = fingerprint(name, resolution, views, test, samples)
    if (folder / STAMP).is_file() and json.loads((folder / STAMP).read_text()) == {"build": stamp}:
        return folder
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import blender_nerf

    scene = build_scene(name, resolution, samples)
    blender_nerf.register()
    try:
        nerf = scene.nerf
        nerf.dataset_dir, nerf.camera_source = str(folder), "RIG"
        nerf.rig_views, nerf.rig_hemisphere, nerf.rig_seed = views + test + 2, True, 7
        nerf.split_mode, nerf.split_val_count, nerf.split_test_count = "COUNT", 2, test
        nerf.film_transparent, nerf.overwrite = True, True
        nerf.export_depth = True  # depth supervision and the depth error of `bench --suite`
        if "FINISHED" not in __import__("bpy").ops.nerf.export_dataset():
            raise RuntimeError(f"{name}: Export Dataset did not finish: {nerf.job_status}")
    finally:
        blender_nerf.unregister()
    (folder / STAMP).write_text(json.dumps({"build": stamp}))
    return folder


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the scene datasets (a cache)")
    p.add_argument("--resolution", type=int, default=100)
    p.add_argument("--views", type=int, default=100, help="training views per scene")
    p.add_argument("--test", type=int, default=20, help="test views per scene")
    p.add_argument("--samples", type=int, default=SAMPLES, help="Cycles samples per pixel")
    p.add_argument("--scenes", default=",".join(SCENES), help="comma-separated scene names")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.scenes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENES]
    if unknown:
        p.error(f"unknown scene(s) {', '.join(unknown)}; known: {', '.join(SCENES)}")
    for name in names:
        folder = export(name, Path(args.out), args.resolution, args.views, args.test, args.samples)
        print(folder, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
