"""The sidebar's Render, Compare and Geometry sub-panels (tab "NeRF"). Draw code in module functions
taking ``(layout, context)``, as in ``panels.py``, so tests draw it into a recording layout."""

from __future__ import annotations

import bpy

from ..jobs import watcher
from .panels import CATEGORY, draw_images

WIDE_SCALE = 9.0  # the side-by-side image and the training curve are wider than tall


class NERF_PT_render(bpy.types.Panel):
    bl_label = "Render"
    bl_idname = "NERF_PT_render"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_parent_id = "NERF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        draw_render(self.layout, context)


class NERF_PT_compare(bpy.types.Panel):
    bl_label = "Compare"
    bl_idname = "NERF_PT_compare"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_parent_id = "NERF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        draw_compare(self.layout, context)


class NERF_PT_geometry(bpy.types.Panel):
    bl_label = "Geometry"
    bl_idname = "NERF_PT_geometry"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_parent_id = "NERF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        draw_geometry(self.layout, context)


def draw_render(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    nerf = context.scene.nerf
    layout.use_property_split = True
    layout.use_property_decorate = False
    col = layout.column()
    col.enabled = not nerf.job_running
    col.prop(nerf, "run_dir")
    col.prop(nerf, "render_dir")
    col.prop(nerf, "render_source")
    if nerf.render_source == "ANIMATION":
        col.prop(nerf, "render_use_scene_range")
        sub = col.column(align=True)
        sub.enabled = not nerf.render_use_scene_range
        sub.prop(nerf, "render_frame_start")
        sub.prop(nerf, "render_frame_end")
        sub.prop(nerf, "render_frame_step")
    col.prop(nerf, "render_depth")
    _job_button(layout, context, "nerf.render_views", "RENDER_STILL")
    draw_images(layout, [(nerf.render_image, "NeRF Render")])
    box = layout.box()
    box.prop(nerf, "import_target")
    if nerf.import_target == "PLANE":
        box.prop(nerf, "import_distance")
    elif nerf.import_target == "CAMERA_BACKGROUND":
        box.prop(nerf, "import_opacity")
        box.prop(nerf, "import_depth")
    else:
        box.prop(nerf, "import_use_depth")
        box.prop(nerf, "import_use_shadow_catcher")
        if nerf.import_use_shadow_catcher:
            box.prop(nerf, "import_shadow_catcher")
        box.label(text="Sets Film > Transparent and the Standard view", icon="INFO")
    row = box.row()
    row.enabled = not nerf.job_running
    row.operator("nerf.import_view", icon="IMPORT")
    layout.operator("nerf.import_cameras", icon="OUTLINER_OB_CAMERA")


def draw_compare(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    nerf = context.scene.nerf
    layout.use_property_split = True
    layout.use_property_decorate = False
    col = layout.column()
    col.enabled = not nerf.job_running
    col.prop(nerf, "render_source")
    col.prop(nerf, "subject", text="Mask")
    col.prop(nerf, "include_ours")
    _job_button(layout, context, "nerf.compare", "IMAGE_REFERENCE")
    if nerf.compare_views:
        grid = layout.grid_flow(row_major=True, columns=2, align=True)
        grid.label(text=f"PSNR {nerf.compare_psnr:.2f} dB")
        grid.label(text=f"SSIM {nerf.compare_ssim:.3f}")
        grid.label(text=f"Object PSNR {nerf.compare_psnr_mask:.2f} dB")
        grid.label(text=f"Object SSIM {nerf.compare_ssim_mask:.3f}")
        layout.label(text=f"{nerf.compare_views} view(s): {nerf.compare_report}", icon="FILE")
    draw_images(layout, [(nerf.compare_image, "Blender | NeRF | Difference")], WIDE_SCALE)
    draw_images(layout, [(nerf.curve_image, "Training Curve")], WIDE_SCALE)


def draw_geometry(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    nerf = context.scene.nerf
    layout.use_property_split = True
    layout.use_property_decorate = False
    col = layout.column()
    col.enabled = not nerf.job_running
    col.prop(nerf, "run_dir")
    for name in ("resolution", "threshold", "remove_floaters", "decimate", "smooth"):
        col.prop(nerf.mesh, name)
    _job_button(layout, context, "nerf.extract_mesh", "MESH_DATA")


def _job_button(layout, context, idname: str, icon: str) -> None:
    """The operator's button, or Cancel while one of the scene's engine jobs runs."""
    row = layout.row()
    row.scale_y = 1.5
    if watcher.scene_job(context.scene) is not None:
        row.operator("nerf.cancel_job", text="Cancel", icon="CANCEL")
        return
    row.enabled = not context.scene.nerf.job_running
    row.operator(idname, icon=icon)


CLASSES = (NERF_PT_render, NERF_PT_compare, NERF_PT_geometry)
