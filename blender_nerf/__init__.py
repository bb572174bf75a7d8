"""blender-nerf: export a NeRF dataset from Blender, train, render and compare — in the sidebar.

Registered as a Blender extension (see addon_manifest.toml). The package, by layer (each folder's
``__init__`` says what lives there and what it may import):

- ``properties`` (``Scene.nerf``, ``Camera.nerf``), ``preferences`` (the engine's Python);
- ``scene/``: ``scene_io`` (the one bpy <-> plain-data bridge), ``geometry`` (camera maths, no
  bpy), ``shots`` (the one camera planner), ``blender_render`` (Blender's renderer, put back
  afterwards), ``paths`` (folder settings), ``units`` (distances in messages, in the scene's
  units);
- ``jobs/``: ``process`` (child processes), ``engine_job`` (the engine's JSON-lines events),
  ``watcher`` (the one timer that watches every job), ``engine_python`` (Install Dependencies);
- one folder per feature: ``export/`` (Export Dataset), ``train/`` (Train NeRF), ``views/``
  (Render Views, Import View, Import Cameras), ``compare/`` (Compare), ``geometry/`` (Extract
  Mesh);
- ``operators/`` (``bpy.ops.nerf.*``) and ``ui/`` (the sidebar tab "NeRF"): the top.

``nerf_engine`` (a link to the repository's engine, vendored in the extension zip) is imported
relatively; the add-on runs its torch parts only in a separate process.
"""

import bpy

from . import operators, preferences, properties
from .jobs import watcher
from .ui import panels, panels_views

_CLASSES = (*preferences.CLASSES, *operators.CLASSES, *panels.CLASSES, *panels_views.CLASSES)


def register():
    properties.register()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    watcher.register()


def unregister():
    watcher.unregister()  # first: stops every trainer while Scene.nerf still exists
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    properties.unregister()
