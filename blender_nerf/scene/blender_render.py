"""Blender's renderer for dataset images (Export Dataset) and ground truth (Compare): the render
settings, the depth and mask passes, and putting the scene back afterwards.

:class:`SceneState` records every value it changes and every datablock it creates, so that
:meth:`SceneState.restore` returns the scene to how the artist left it, after success, error or
cancel alike. :func:`render_still` is the one call of Blender's renderer; :func:`check_rendered_png`
refuses an image that a full disk cut short.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from .ours import ours_in_render
from .scene_io import SceneError

MASK_INDEX = 1  # object pass index given to the subject while a mask is rendered
PASS_PREFIX = "pass_"  # the compositor writes <staging>/pass_depth.exr, pass_mask.png
MIN_RESOLUTION = 4  # Blender's smallest resolution_x/y
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk every complete PNG ends with


class SceneState:
    """Changes to a scene that can be undone: attribute values, frame, temporary datablocks."""

    def __init__(self, scene: bpy.types.Scene):
        self.scene = scene
        self._saved: list[tuple[object, str, object]] = []
        self._keys: set[tuple[int, str]] = set()
        self._datablocks: list[tuple[bpy.types.bpy_prop_collection, bpy.types.ID]] = []
        self._frame = (scene.frame_current, scene.frame_subframe)

    def set(self, owner, attr: str, value) -> None:
        """Set ``owner.attr = value``, remembering the first value it had."""
        key = (owner.as_pointer(), attr)
        if key not in self._keys:
            self._keys.add(key)
            self._saved.append((owner, attr, getattr(owner, attr)))
        if getattr(owner, attr) != value:
            setattr(owner, attr, value)

    def created(self, collection: bpy.types.bpy_prop_collection, datablock: bpy.types.ID):
        """Remember a temporary datablock to remove on restore (removed last-created first)."""
        self._datablocks.append((collection, datablock))
        return datablock

    def restore(self) -> list[str]:
        """Put everything back; returns what could not be restored (normally nothing)."""
        problems = []
        for owner, attr, value in self._saved:  # in the order set: enums depend on earlier ones
            try:
                if getattr(owner, attr) != value:
                    setattr(owner, attr, value)
            except (AttributeError, TypeError, ValueError, ReferenceError) as exc:
                problems.append(f"{attr}: {exc}")
        self._saved.clear()
        self._keys.clear()
        for collection, datablock in reversed(self._datablocks):
            try:
                collection.remove(datablock)
            except (ReferenceError, RuntimeError) as exc:
                problems.append(f"removing a temporary datablock: {exc}")
        self._datablocks.clear()
        frame, subframe = self._frame
        if (self.scene.frame_current, self.scene.frame_subframe) != self._frame:
            self.scene.frame_set(frame, subframe=subframe)
        return problems


def render_still(scene: bpy.types.Scene) -> set[str]:
    """Blender renders the scene's active camera and writes ``scene.render.filepath``: the one
    place export and Compare call the renderer (tests replace it to simulate a failing one)."""
    return bpy.ops.render.render(write_still=True, scene=scene.name)


def check_rendered_png(path: Path, what: str) -> None:
    """Raise SceneError unless Blender wrote ``path`` as a complete PNG (a full disk leaves a
    file that ends early; it must never be taken for a finished image)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - len(PNG_END)))
            complete = handle.read() == PNG_END
    except OSError:
        complete = False
    if not complete:
        raise SceneError(
            f"Blender wrote an incomplete image for {what} ('{path.name}' ends early); "
            "check the free space of the output folder's disk and try again."
        )


def configure_render(
    state: SceneState, view_layer: bpy.types.ViewLayer, *, transparent: bool
) -> None:
    """Render settings for dataset images: one view layer, no border, no compositing, no
    post-processing, PNG RGBA 8-bit, and the 'Standard' view transform (AgX, the default since
    4.0, changes colours in a way a NeRF comparison would count as error)."""
    scene = state.scene
    render = scene.render
    for attr, value in (
        ("film_transparent", transparent),
        ("use_border", False),
        ("use_multiview", False),
        ("use_compositing", False),
        ("use_sequencer", False),
        ("use_file_extension", False),
    ):
        state.set(render, attr, value)
    settings = render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5.0+
        state.set(settings, "media_type", "IMAGE")
    state.set(settings, "file_format", "PNG")
    state.set(settings, "color_mode", "RGBA")
    state.set(settings, "color_depth", "8")
    state.set(settings, "color_management", "FOLLOW_SCENE")
    state.set(scene.display_settings, "display_device", "sRGB")
    view = scene.view_settings
    for attr, value in (
        ("view_transform", "Standard"),
        ("look", "None"),
        ("exposure", 0.0),
        ("gamma", 1.0),
        ("use_curve_mapping", False),
    ):
        state.set(view, attr, value)
    for layer in scene.view_layers:
        state.set(layer, "use", layer == view_layer)


def hide_ours(state: SceneState, scene: bpy.types.Scene) -> list[str]:
    """Leave the add-on's own objects (imported NeRF planes, extracted meshes; see
    :mod:`.ours`) out of the renders: ``hide_render`` on, put back by
    :meth:`SceneState.restore` exactly as it was, also after a failure. Returns the names of the
    objects hidden, sorted."""
    hidden = ours_in_render(scene)
    for ob in hidden:
        state.set(ob, "hide_render", True)
    return sorted(ob.name for ob in hidden)


def set_render_size(state: SceneState, w: int, h: int) -> None:
    """Render exactly ``w``×``h`` pixels (the percentage is already in ``w``, ``h``).

    Blender's resolution is at least 4 pixels a side; smaller sizes are set as 4× the size at
    25 % (Blender renders resolution × percentage // 100 pixels).
    """
    render = state.scene.render
    scale = 4 if min(w, h) < MIN_RESOLUTION else 1
    state.set(render, "resolution_percentage", 100 // scale)
    state.set(render, "resolution_x", w * scale)
    state.set(render, "resolution_y", h * scale)


def configure_passes(
    state: SceneState,
    view_layer: bpy.types.ViewLayer,
    subject: list[bpy.types.Object],
    staging: Path,
    *,
    depth: bool,
    mask: bool,
) -> None:
    """A temporary compositor that passes the image through and writes the depth pass (EXR) and
    a subject mask (PNG) into ``staging``. Nothing is changed if neither is wanted."""
    if not (depth or mask):
        return
    scene = state.scene
    if depth:
        state.set(view_layer, "use_pass_z", True)
    if mask:
        state.set(view_layer, "use_pass_object_index", True)
    tree = state.created(
        bpy.data.node_groups, bpy.data.node_groups.new(".nerf_export_passes", "CompositorNodeTree")
    )
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    layers = tree.nodes.new("CompositorNodeRLayers")
    layers.scene, layers.layer = scene, view_layer.name
    tree.links.new(layers.outputs["Image"], tree.nodes.new("NodeGroupOutput").inputs[0])
    out = tree.nodes.new("CompositorNodeOutputFile")
    out.directory, out.file_name = str(staging) + "/", PASS_PREFIX
    _set_format(out.format, "OPEN_EXR", "32")  # one file per pass, not one multilayer EXR
    out.file_output_items.clear()
    if depth:
        item = _file_item(out, "depth", "OPEN_EXR", "32")
        tree.links.new(layers.outputs["Depth"], out.inputs[item])
    if mask:
        for ob in scene.objects:
            state.set(ob, "pass_index", MASK_INDEX if ob in subject else 0)
        id_mask = tree.nodes.new("CompositorNodeIDMask")
        id_mask.inputs["Index"].default_value = MASK_INDEX
        id_mask.inputs["Anti-Alias"].default_value = True
        tree.links.new(layers.outputs["Object Index"], id_mask.inputs["ID value"])
        item = _file_item(out, "mask", "PNG", "8")
        tree.links.new(id_mask.outputs[0], out.inputs[item])
    state.set(scene, "compositing_node_group", tree)
    state.set(scene.render, "use_compositing", True)


def _file_item(node, name: str, file_format: str, depth: str) -> int:
    """Add a single-channel output ``name`` to a File Output node; returns its input index."""
    item = node.file_output_items.new("FLOAT", name)
    item.override_node_format = True
    item.save_as_render = False  # data, not colour: no view transform
    _set_format(item.format, file_format, depth)
    return len(node.file_output_items) - 1


def _set_format(fmt, file_format: str, depth: str) -> None:
    if hasattr(fmt, "media_type"):
        fmt.media_type = "IMAGE"
    fmt.file_format = file_format
    fmt.color_mode = "BW"
    fmt.color_depth = depth
