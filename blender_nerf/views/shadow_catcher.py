"""Shadows on the NeRF: a mesh standing in for the NeRF's surfaces as Cycles' shadow catcher.

The mesh (``scene.nerf.import_shadow_catcher``; empty: the mesh extracted from the run, see
:func:`extracted_mesh`) gets Object > Visibility > Shadow Catcher: Cycles renders it
transparent, so it never shows itself (and hides whatever CG stands behind it, as the NeRF's
surface would), and writes the light the scene's objects take from it into the view layer's
Shadow Catcher pass, which the compositor multiplies onto the NeRF's picture
(``views/composite.py``). :func:`check_catcher` refuses before anything changes;
:func:`set_catcher` changes the scene and :func:`release_catchers` undoes it for a mesh that is no
longer the catcher (each mesh remembers whether it was a shadow catcher before).
"""

from __future__ import annotations

import bpy

from ..scene.ours import nerf_meshes
from ..scene.scene_io import SceneError

WAS_CATCHER = "nerf_was_shadow_catcher"  # set on the mesh we made a catcher: its earlier value


def extracted_mesh(scene: bpy.types.Scene) -> bpy.types.Object | None:
    """The mesh Extract Mesh made of the scene's run (else of another run), if there is one."""
    return (nerf_meshes(scene, scene.nerf.run_dir) or [None])[0]


def check_catcher(scene: bpy.types.Scene) -> bpy.types.Object:
    """The mesh to catch the shadows; SceneError with what to do when there is none or the
    render engine cannot catch shadows."""
    if scene.render.engine != "CYCLES":
        raise SceneError(
            "Shadows on the NeRF need Cycles' shadow catcher: set Render Engine to Cycles, or "
            "turn off Shadows on the NeRF."
        )
    catcher = scene.nerf.import_shadow_catcher or extracted_mesh(scene)
    if catcher is None:
        raise SceneError(
            "Shadows on the NeRF need a mesh of the NeRF's surfaces: extract one (Extract Mesh) "
            "or choose a mesh as NeRF Mesh (e.g. a plane where the NeRF's ground is)."
        )
    if catcher.type != "MESH" or scene.objects.get(catcher.name) is None:
        raise SceneError(
            f"NeRF Mesh '{catcher.name}' is not a mesh object of scene '{scene.name}': choose "
            "one that is."
        )
    return catcher


def set_catcher(scene: bpy.types.Scene, catcher: bpy.types.Object) -> None:
    """Make ``catcher`` the scene's only shadow catcher of ours and turn on the Shadow Catcher
    pass of every view layer that renders."""
    release_catchers(scene, keep=catcher)
    if WAS_CATCHER not in catcher:
        catcher[WAS_CATCHER] = bool(catcher.is_shadow_catcher)
    catcher.is_shadow_catcher = True
    for layer in scene.view_layers:
        if layer.use:
            layer.cycles.use_pass_shadow_catcher = True


def release_catchers(scene: bpy.types.Scene, keep: bpy.types.Object | None = None) -> None:
    """Give every mesh we made a shadow catcher (but ``keep``) its earlier setting back."""
    for ob in scene.objects:
        if ob != keep and WAS_CATCHER in ob:
            ob.is_shadow_catcher = bool(ob[WAS_CATCHER])
            del ob[WAS_CATCHER]
