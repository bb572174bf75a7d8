"""The settings of Import View's compositor target, mixed into ``scene.nerf`` (properties.py).

``import_use_depth`` (Depth Compositing) and ``import_use_shadow_catcher`` with
``import_shadow_catcher`` (the mesh standing in for the NeRF's surfaces): ``views/composite.py``
and ``views/shadow_catcher.py`` read them.
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, PointerProperty


def _is_mesh(_settings, ob: bpy.types.Object) -> bool:
    return ob.type == "MESH"


class CompositeSettings:
    """A mixin of ``NERF_PG_scene``: its properties register with it."""

    import_use_depth: BoolProperty(
        name="Depth Compositing",
        description="The NeRF and the scene's objects hide each other by their distance from "
        "the camera (Z Combine with the NeRF's depth) instead of the NeRF always behind them. "
        "Needs the NeRF's depth: turn on Depth before Render Views",
        default=False,
    )
    import_use_shadow_catcher: BoolProperty(
        name="Shadows on the NeRF",
        description="Use the NeRF mesh as shadow catcher: the scene's objects cast their shadows "
        "onto the NeRF's surfaces in the composite, and the mesh itself stays invisible (Cycles)",
        default=False,
    )
    import_shadow_catcher: PointerProperty(
        name="NeRF Mesh",
        type=bpy.types.Object,
        poll=_is_mesh,
        description="The mesh that stands in for the NeRF's surfaces and catches the shadows "
        "(empty: the mesh extracted from the run)",
    )
