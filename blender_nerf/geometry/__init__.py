"""Extract Mesh: the trained NeRF as a mesh in the scene.

``bpy.ops.nerf.extract_mesh`` (contract) runs ``python -m nerf_engine mesh RUN --out MESH.ply``
in the background like Render Views (``start``), then builds the mesh object with ``foreach_set``
(``mesh_object``): vertices in world space (it lines up with the scene and the NeRF's renders),
faces, the colour attribute :data:`COLOR_ATTRIBUTE` and a material that shows it.

The object (and its mesh data) is named :func:`mesh_name` of the run folder, "NeRF Mesh <run>",
is marked as ours (``scene.ours.mark_ours`` with :data:`MAKER`) and records the run folder in
the custom property :data:`RUN_PROPERTY`; extracting the same run again replaces the mesh data
of that object (its modifiers and settings stay). :func:`mesh_objects` finds them all.
Imports ``scene/``, ``jobs/``, ``preferences`` and ``views/`` (the run check it shares).
"""

from __future__ import annotations

from pathlib import Path

from ..scene.ours import MESH_MAKER, MESH_RUN, nerf_meshes

MAKER = MESH_MAKER  # the ``nerf_ours`` marker of the objects, meshes and materials it makes
RUN_PROPERTY = MESH_RUN  # custom property: the run folder the mesh was extracted from
COLOR_ATTRIBUTE = "NeRF Color"  # the per-vertex colour attribute (BYTE_COLOR, POINT domain)


def mesh_name(run_dir: str | Path) -> str:
    """The name of the object (and of its mesh data) extracted from ``run_dir``."""
    return f"NeRF Mesh {Path(run_dir).name}"


def mesh_objects(scene) -> list:
    """The scene's objects made by Extract Mesh (the artist's copies with the marker included)."""
    return nerf_meshes(scene)
