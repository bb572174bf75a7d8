"""blender-nerf: export a NeRF dataset from Blender, train, render and compare — in the sidebar.

The add-on is registered as a Blender extension (see addon_manifest.toml). Its features arrive in
later issues; today it registers cleanly so that the packaging and tests have something to load.
"""

import bpy


class NERF_PT_main(bpy.types.Panel):
    bl_label = "NeRF"
    bl_idname = "NERF_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "NeRF"

    def draw(self, context):
        self.layout.label(text="blender-nerf")


CLASSES = (NERF_PT_main,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
