"""Add-on preferences (Edit > Preferences > Add-ons > blender-nerf)."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

ADDON_ID = __package__  # "blender_nerf", or "bl_ext.<repo>.blender_nerf" as an installed extension


class NERF_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(
        name="Engine Python",
        description="A Python interpreter with PyTorch that runs the NeRF engine for training and "
        "rendering (empty: the one set up by Install Dependencies)",
        default="",
        subtype="FILE_PATH",
    )

    def draw(self, context: bpy.types.Context) -> None:
        draw_preferences(self.layout, self)


def draw_preferences(layout: bpy.types.UILayout, prefs: bpy.types.AddonPreferences) -> None:
    """The preferences' layout (a function so that tests can draw it into a recording layout)."""
    layout.use_property_split = True
    layout.prop(prefs, "python_path")
    layout.label(text="Datasets export from the sidebar: 3D Viewport > N > NeRF.", icon="INFO")


CLASSES = (NERF_AP_preferences,)
