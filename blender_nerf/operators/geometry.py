"""``bpy.ops.nerf.extract_mesh``: the trained NeRF as a mesh object (``geometry/``).

Runs the engine in the background like Render Views: headless ``execute()`` waits for the end
and builds the mesh; from the panel ``invoke()`` returns at once and the watcher's timer builds
it when the job ends (that end is an undo step of its own).
"""

from __future__ import annotations

import bpy

from ..geometry import extract
from .views import _EngineJobOperator


class NERF_OT_extract_mesh(_EngineJobOperator, bpy.types.Operator):
    """Turn the trained NeRF into a coloured mesh in the scene, in place over the original"""

    bl_idname = "nerf.extract_mesh"
    bl_label = "Extract Mesh"
    bl_options = frozenset({"REGISTER", "UNDO"})
    module = extract
    started = "Extracting the NeRF's mesh in the background."


CLASSES = (NERF_OT_extract_mesh,)
