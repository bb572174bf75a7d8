"""The demo scene, built procedurally in Blender: a still life on a wide ground disc.

Textured objects (checker, brick, noise, wave materials) give fine detail to learn; the wide, plain
ground is the large flat region where a vanilla NeRF collapses; the film is transparent.
"""

from __future__ import annotations

import math

import bpy


def _material(name: str, build) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.6
    color = build(nodes)
    links.new(color, bsdf.inputs["Base Color"])
    return mat


def _checker(nodes):
    tex = nodes.new("ShaderNodeTexChecker")
    tex.inputs["Scale"].default_value = 8.0
    tex.inputs["Color1"].default_value = (0.8, 0.12, 0.08, 1.0)
    tex.inputs["Color2"].default_value = (0.95, 0.85, 0.25, 1.0)
    return tex.outputs["Color"]


def _brick(nodes):
    tex = nodes.new("ShaderNodeTexBrick")
    tex.inputs["Scale"].default_value = 4.0
    tex.inputs["Color1"].default_value = (0.55, 0.2, 0.1, 1.0)
    tex.inputs["Color2"].default_value = (0.7, 0.35, 0.2, 1.0)
    tex.inputs["Mortar"].default_value = (0.9, 0.9, 0.85, 1.0)
    return tex.outputs["Color"]


def _noise(nodes):
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 6.0
    noise.inputs["Detail"].default_value = 4.0
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (0.05, 0.2, 0.6, 1.0)
    ramp.color_ramp.elements[1].color = (0.6, 0.9, 0.95, 1.0)
    nodes.id_data.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    return ramp.outputs["Color"]


def _wave(nodes):
    wave = nodes.new("ShaderNodeTexWave")
    wave.inputs["Scale"].default_value = 3.0
    wave.inputs["Distortion"].default_value = 4.0
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (0.1, 0.4, 0.12, 1.0)
    ramp.color_ramp.elements[1].color = (0.85, 0.95, 0.7, 1.0)
    nodes.id_data.links.new(wave.outputs["Color"], ramp.inputs["Fac"])
    return ramp.outputs["Color"]


def _plain(rgb):
    def build(nodes):
        rgb_node = nodes.new("ShaderNodeRGB")
        rgb_node.outputs["Color"].default_value = (*rgb, 1.0)
        return rgb_node.outputs["Color"]

    return build


def _add(obj: bpy.types.Object, material: bpy.types.Material) -> bpy.types.Object:
    obj.data.materials.append(material)
    return obj


def build_demo_scene(resolution: int = 100, samples: int = 16) -> bpy.types.Scene:
    """Replace the current file with the demo scene and return it."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    ops = bpy.ops.mesh
    ops.primitive_circle_add(vertices=96, radius=1.6, fill_type="NGON", location=(0, 0, 0))
    _add(bpy.context.object, _material("Ground", _plain((0.62, 0.58, 0.5))))
    ops.primitive_uv_sphere_add(
        radius=0.45, location=(0.45, 0.25, 0.45), segments=48, ring_count=24
    )
    bpy.ops.object.shade_smooth()
    _add(bpy.context.object, _material("Checker", _checker))
    ops.primitive_cube_add(size=0.6, location=(-0.55, 0.35, 0.3), rotation=(0, 0, math.radians(25)))
    _add(bpy.context.object, _material("Brick", _brick))
    ops.primitive_monkey_add(
        size=0.6, location=(-0.1, -0.6, 0.4), rotation=(0, 0, math.radians(-20))
    )
    bpy.ops.object.shade_smooth()
    _add(bpy.context.object, _material("Noise", _noise))
    ops.primitive_cylinder_add(radius=0.18, depth=0.9, location=(0.75, -0.45, 0.45))
    _add(bpy.context.object, _material("Wave", _wave))

    bpy.ops.object.light_add(type="SUN", rotation=(math.radians(40), 0, math.radians(30)))
    bpy.context.object.data.energy = 3.0
    world = bpy.data.worlds.new("World")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.3, 0.3, 0.32, 1.0)
    scene.world = world

    bpy.ops.object.camera_add(location=(0, -6, 3))
    camera = bpy.context.object
    camera.data.lens = 40.0
    scene.camera = camera

    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    return scene
