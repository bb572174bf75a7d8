"""blender-nerf: export a NeRF dataset from Blender, train, render and compare — in the sidebar.

Registered as a Blender extension (see addon_manifest.toml). Modules:
``properties`` (``Scene.nerf``), ``preferences``, ``panels`` (sidebar tab "NeRF"),
``operators`` (``bpy.ops.nerf.*``), ``scene_io`` (bpy objects -> plain data), ``geometry``
(camera math without bpy), ``export_plan``/``export_job``/``render_setup`` (Export Dataset),
``jobs``/``train_job`` (engine subprocesses, no bpy), ``background`` (polling them from a timer),
``training`` (Train NeRF), ``engine_python`` (which Python runs the engine; Install Dependencies),
``view_plan``/``view_jobs``/``scene_jobs`` (cameras and engine jobs of Render Views and Compare),
``render_views``, ``comparison``/``ground_truth``, ``view_import`` (Import View),
``camera_import`` (Import Cameras), ``panels_views`` (the Render and Compare sub-panels).
"""

import bpy

from . import background, operators, panels, panels_views, preferences, properties

_CLASSES = (*preferences.CLASSES, *operators.CLASSES, *panels.CLASSES, *panels_views.CLASSES)


def register():
    properties.register()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    background.register()


def unregister():
    background.unregister()  # first: stops every trainer while Scene.nerf still exists
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    properties.unregister()
