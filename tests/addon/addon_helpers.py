"""Shared checks for the add-on tests (plain functions, imported by the test modules)."""

from __future__ import annotations

import bpy

from blender_nerf.nerf_engine.dataset import SPLITS, read_split


def export(scene, out_dir, **settings):
    """Set ``scene.nerf`` from keywords, run the operator, return its result set."""
    scene.nerf.dataset_dir = str(out_dir)
    for key, value in settings.items():
        setattr(scene.nerf, key, value)
    return bpy.ops.nerf.export_dataset()


def read_all(out_dir):
    """{split: Split} for every split that was written."""
    return {
        s: read_split(out_dir, s) for s in SPLITS if (out_dir / f"transforms_{s}.json").exists()
    }


def scene_fingerprint(scene):
    """The scene state an export must leave as it found it."""
    render = scene.render
    view = scene.view_settings
    return {
        "camera": scene.camera.name if scene.camera else None,
        "frame": (scene.frame_current, scene.frame_subframe),
        "objects": sorted(ob.name for ob in bpy.data.objects),
        "cameras": sorted(c.name for c in bpy.data.cameras),
        "node_groups": sorted(g.name for g in bpy.data.node_groups),
        "compositor": getattr(scene.compositing_node_group, "name", None),
        "render": {
            a: getattr(render, a)
            for a in (
                "engine",
                "resolution_x",
                "resolution_y",
                "resolution_percentage",
                "film_transparent",
                "filepath",
                "use_compositing",
                "use_file_extension",
                "use_border",
                "pixel_aspect_x",
                "pixel_aspect_y",
            )
        },
        "image": (render.image_settings.file_format, render.image_settings.color_mode),
        "view": (view.view_transform, view.look, view.exposure, view.gamma),
        "passes": [(vl.use, vl.use_pass_z, vl.use_pass_object_index) for vl in scene.view_layers],
        "pass_index": sorted((ob.name, ob.pass_index) for ob in bpy.data.objects),
        "selection": sorted(ob.name for ob in bpy.context.selected_objects),
    }


class RenderLog:
    """Records, for every render Blender starts, the settings the export renders with."""

    def __init__(self):
        self.renders = []

    def __call__(self, scene, *args):
        self.renders.append(
            {
                "camera": scene.camera.name if scene.camera else None,
                "view_transform": scene.view_settings.view_transform,
                "look": scene.view_settings.look,
                "film_transparent": scene.render.film_transparent,
                "frame": scene.frame_current,
                "size": (scene.render.resolution_x, scene.render.resolution_y),
                "percentage": scene.render.resolution_percentage,
            }
        )

    def __enter__(self):
        bpy.app.handlers.render_pre.append(self)
        return self

    def __exit__(self, *exc):
        bpy.app.handlers.render_pre.remove(self)

    def __len__(self):
        return len(self.renders)


def vertices_world(objects=None):
    """[N, 3] world coordinates of every vertex of the given (default: all) mesh objects."""
    import numpy as np

    objects = objects or [ob for ob in bpy.data.objects if ob.type == "MESH"]
    return np.array([tuple(ob.matrix_world @ v.co) for ob in objects for v in ob.data.vertices])


def blender_pixels(scene, camera, points, w, h):
    """Pixel coordinates of ``points`` according to Blender's own world_to_camera_view."""
    import numpy as np
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    ndc = [world_to_camera_view(scene, camera, Vector(p)) for p in points]
    return np.array([(v.x * w, (1.0 - v.y) * h) for v in ndc])


def configure_fast_render(scene, size=(32, 32), samples=1):
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 1
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
