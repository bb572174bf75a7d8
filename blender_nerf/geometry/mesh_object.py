"""The extracted mesh as a Blender object: built from numpy arrays with ``foreach_set``.

:func:`build_mesh_object` makes (or, for a run extracted before, refills) the object named
:func:`~.mesh_name` in the scene: vertices in world space, triangles, the per-vertex colour
attribute :data:`~.COLOR_ATTRIBUTE` (the NeRF's colours, sRGB bytes), a material that shows it,
smooth or flat shading, and Blender's Decimate modifier when fewer triangles are asked for.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..nerf_engine.data.mesh_ply import MeshArrays
from ..scene.ours import mark_ours
from . import COLOR_ATTRIBUTE, MAKER, RUN_PROPERTY, mesh_name

DECIMATE_MODIFIER = "NeRF Decimate"


def fill_mesh(mesh: bpy.types.Mesh, arrays: MeshArrays) -> None:
    """Replace ``mesh``'s geometry by ``arrays``: vertices, triangles and the colour attribute,
    all through ``foreach_set``."""
    mesh.clear_geometry()
    n_vertices, n_faces = len(arrays.vertices), len(arrays.faces)
    mesh.vertices.add(n_vertices)
    mesh.vertices.foreach_set("co", arrays.vertices.astype(np.float32).ravel())
    mesh.loops.add(3 * n_faces)
    mesh.loops.foreach_set("vertex_index", arrays.faces.astype(np.int32).ravel())
    mesh.polygons.add(n_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))
    rgba = np.ones((n_vertices, 4), dtype=np.float32)
    rgba[:, :3] = arrays.colors.astype(np.float32) / 255.0
    colors = mesh.color_attributes.new(COLOR_ATTRIBUTE, "BYTE_COLOR", "POINT")
    colors.data.foreach_set("color_srgb", rgba.ravel())
    mesh.color_attributes.active_color = colors
    mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
    mesh.update()


def vertex_color_material(name: str) -> bpy.types.Material:
    """The material ``name`` (made once, marked ours): the colour attribute as base colour."""
    material = bpy.data.materials.get(name)
    if material is not None:
        return material
    material = mark_ours(bpy.data.materials.new(name), MAKER)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    attribute = nodes.new("ShaderNodeAttribute")
    attribute.attribute_type = "GEOMETRY"
    attribute.attribute_name = COLOR_ATTRIBUTE
    attribute.location = (bsdf.location.x - 300, bsdf.location.y)
    links.new(attribute.outputs["Color"], bsdf.inputs["Base Color"])
    return material


def build_mesh_object(
    scene: bpy.types.Scene,
    arrays: MeshArrays,
    run_dir: Path,
    *,
    decimate: float = 1.0,
    smooth: bool = True,
) -> bpy.types.Object:
    """The mesh object of ``run_dir`` in ``scene`` holding ``arrays`` (world space). An object
    made for the same run before gets the new geometry and keeps its place, modifiers and
    settings; otherwise a new one is linked to the scene's collection."""
    name = mesh_name(run_dir)
    ob = next((o for o in scene.objects if _extracted_from(o, run_dir)), None)
    mesh = ob.data if ob is not None else mark_ours(bpy.data.meshes.new(name), MAKER)
    fill_mesh(mesh, arrays)
    mesh.polygons.foreach_set("use_smooth", np.full(len(arrays.faces), smooth, dtype=bool))
    material = vertex_color_material(f"{name} Colors")
    if material.name not in mesh.materials:
        mesh.materials.append(material)
    if ob is None:
        ob = mark_ours(bpy.data.objects.new(name, mesh), MAKER)
        ob[RUN_PROPERTY] = str(run_dir)
        scene.collection.objects.link(ob)
    _set_decimate(ob, decimate)
    mesh.update()
    return ob


def _extracted_from(ob: bpy.types.Object, run_dir: Path) -> bool:
    return (
        ob.type == "MESH" and ob.get("nerf_ours") == MAKER and ob.get(RUN_PROPERTY) == str(run_dir)
    )


def _set_decimate(ob: bpy.types.Object, ratio: float) -> None:
    modifier = ob.modifiers.get(DECIMATE_MODIFIER)
    if ratio >= 1.0:
        if modifier is not None:
            ob.modifiers.remove(modifier)
        return
    if modifier is None:
        modifier = ob.modifiers.new(DECIMATE_MODIFIER, "DECIMATE")
    modifier.decimate_type = "COLLAPSE"
    modifier.ratio = ratio
