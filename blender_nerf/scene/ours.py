"""What the add-on itself put into the scene ("ours"): imported NeRF images and their planes,
materials and compositor nodes, cameras it made, meshes extracted from a NeRF.

Ours never counts as the artist's scene: Export leaves it out of the subject, the scene box
and the rendered views, and Compare leaves it out of the ground truth, so the NeRF never
learns from (or is scored against) its own pictures. The scene setting "Include NeRF
Results" (``scene.nerf.include_ours``) turns that off.

The marker is one custom property, ``nerf_ours`` = what made it (e.g. "Import View"), set by
:func:`mark_ours` and read by :func:`is_ours`. A custom property rather than a collection:
it marks every kind of datablock (images, materials, node groups and compositor nodes as
well as objects), it stays with an object the artist moves to another collection, links into
several, or copies (Shift+D copies custom properties), and it shows in Object Properties >
Custom Properties, where an artist who wants one of ours to count as the scene deletes it.
"""

from __future__ import annotations

import bpy

OURS = "nerf_ours"
LEGACY_TAGS = ("nerf_import",)  # what Import View marked before OURS existed (older files)
MESH_MAKER = "Extract Mesh"  # the marker of the objects, meshes and materials Extract Mesh makes
MESH_RUN = "nerf_run"  # custom property of an extracted mesh: the run folder it came from


def mark_ours(item, maker: str):
    """Mark ``item`` (a datablock or a node) as made by the add-on's ``maker`` (shown to the
    artist, e.g. "Import View"); returns ``item``."""
    item[OURS] = maker
    return item


def is_ours(item) -> bool:
    """True when ``item`` (a datablock or a node; None: False) carries the marker. An object
    counts by its own marker only, so deleting it makes the object the artist's (a copy made
    with Shift+D or Alt+D keeps the marker: it is still the NeRF's picture)."""
    return item is not None and any(item.get(key) is not None for key in (OURS, *LEGACY_TAGS))


def ours_in_render(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """The scene's objects of ours that a render can show: every one enabled for rendering
    but cameras (a camera shows nothing, and the render may look through it)."""
    return [
        ob for ob in scene.objects if ob.type != "CAMERA" and not ob.hide_render and is_ours(ob)
    ]


def nerf_meshes(scene: bpy.types.Scene, run_dir: str = "") -> list[bpy.types.Object]:
    """The scene's mesh objects made by Extract Mesh (the artist's copies, which keep the
    marker, included); with ``run_dir``, those of that run first."""
    meshes = [ob for ob in scene.objects if ob.type == "MESH" and ob.get(OURS) == MESH_MAKER]
    if run_dir:
        key = bpy.path.abspath(run_dir).rstrip("/\\")
        meshes.sort(key=lambda ob: bpy.path.abspath(ob.get(MESH_RUN, "")).rstrip("/\\") != key)
    return meshes
