"""Extract Mesh's settings: ``scene.nerf.mesh`` (a PropertyGroup of its own inside Scene.nerf)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty


class NERF_PG_mesh(bpy.types.PropertyGroup):
    """How Extract Mesh turns the trained NeRF into a mesh."""

    resolution: IntProperty(
        name="Resolution",
        description="Detail of the mesh: grid cells along the longest side of the NeRF's scene "
        "box (256 gives about a million triangles for a full scene; memory and time grow with "
        "the cube of it)",
        min=16,
        soft_max=512,
        max=2048,
        default=256,
    )
    threshold: FloatProperty(
        name="Surface Density",
        description="How dense the NeRF must be where the surface lies (0: automatic, where a "
        "slice 1/64 of the scene's size thick is half opaque). Raise it when the mesh is puffy "
        "or foggy, lower it when thin parts are missing",
        min=0.0,
        soft_max=1000.0,
        default=0.0,
    )
    decimate: FloatProperty(
        name="Decimate",
        description="Share of the triangles to keep, by Blender's Decimate modifier (1: all)",
        min=0.001,
        max=1.0,
        default=1.0,
        subtype="FACTOR",
    )
    smooth: BoolProperty(
        name="Smooth Shading",
        description="Shade the mesh smooth instead of showing every triangle",
        default=True,
    )
    remove_floaters: BoolProperty(
        name="Remove Floaters",
        description="Leave out small loose pieces (NeRF fog and floaters) under 2% of the scene "
        "box's size",
        default=True,
    )
