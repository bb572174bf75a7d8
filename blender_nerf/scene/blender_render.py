"""Blender's renderer for dataset images (Export Dataset) and ground truth (Compare): the render
settings, the depth and mask passes, and putting the scene back afterwards.

:class:`SceneState` records every value it changes and every datablock it creates, and a
:class:`SettingsSnapshot` of every render setting (taken before anything changes: setting one
value can change another, as the view transform resets the Look), so that
:meth:`SceneState.restore` returns the scene to how the artist left it, after success, error or
cancel alike. :func:`render_still` is the one call of Blender's renderer; :func:`check_rendered_png`
refuses an image that a full disk cut short.
"""

from __future__ import annotations

import sys
from pathlib import Path

import bpy

from .ours import ours_in_render
from .scene_io import SceneError

MASK_INDEX = 1  # object pass index given to the subject while a mask is rendered
PASS_PREFIX = "pass_"  # the compositor writes <staging>/pass_depth.exr, pass_mask.png
MIN_RESOLUTION = 4  # Blender's smallest resolution_x/y
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk every complete PNG ends with


# The scene's render settings (attribute paths from the scene): everything an operator that
# renders may change, directly or as a side effect, walked property by property.
RENDER_SETTINGS = (
    "render",  # with image_settings (and its colour management), bake, ffmpeg
    "view_settings",  # view transform, Look, exposure, gamma, curve mapping
    "display_settings",
    "sequencer_colorspace_settings",
    "cycles",  # samples, film (exposure, pixel filter), light paths, ...
    "cycles_curves",
    "eevee",
    "display",  # Workbench
)
# Path endings not read: in a default scene they hold no valid value (reading them logs a warning
# in 5.0) and no render of ours uses them (the viewport's wireframe colour; the colour space of
# linear file formats, unset until one is chosen).
UNREAD = ("shading.wireframe_color_type", "linear_colorspace_settings.name")
MAX_DEPTH = 4  # nested settings (render.image_settings.view_settings.curve_mapping)
RESTORE_PASSES = 4  # values that depend on others (a Look on its view transform) need a 2nd pass


class SettingsSnapshot:
    """Every writable render setting of a scene (the structs of :data:`RENDER_SETTINGS` and
    the settings nested in them, not datablocks they point to), read at construction.

    :meth:`restore` writes back each value that differs now, pass after pass until none does,
    so that values which depend on others (the Look on the view transform, colour depth on the
    file format) come back too.
    """

    def __init__(self, scene: bpy.types.Scene):
        self.values: dict[str, tuple[bpy.types.bpy_struct, str, object]] = {}
        for path in RENDER_SETTINGS:
            struct = getattr(scene, path, None)
            if struct is not None:
                self._walk(struct, path, 0, set())

    def _walk(self, struct, path: str, depth: int, seen: set[tuple[int, str]]) -> None:
        # a struct is its address and type: image_settings lives at the start of render's
        seen.add((struct.as_pointer(), struct.bl_rna.identifier))
        for prop in struct.bl_rna.properties:
            name = prop.identifier
            if name == "rna_type" or prop.type == "COLLECTION" or f"{path}.{name}".endswith(UNREAD):
                continue
            try:
                value = getattr(struct, name)
            except (AttributeError, RuntimeError, TypeError):
                continue
            if prop.type == "POINTER":
                nested = isinstance(value, bpy.types.bpy_struct) and not isinstance(
                    value, bpy.types.ID
                )
                key = (value.as_pointer(), value.bl_rna.identifier) if nested else None
                if nested and depth < MAX_DEPTH and key not in seen:
                    self._walk(value, f"{path}.{name}", depth + 1, seen)
            elif not prop.is_readonly:
                self.values[f"{path}.{name}"] = (struct, name, _plain(value))

    def current(self) -> dict[str, object]:
        """{path: value} of the same settings now (``'render.engine'``, ``'view_settings.look'``,
        ``'cycles.samples'``)."""
        return {path: _plain(getattr(s, name)) for path, (s, name, _) in self.values.items()}

    def changed(self) -> dict[str, tuple[object, object]]:
        """{path: (value then, value now)} of every setting that differs now."""
        now = self.current()
        return {p: (v[2], now[p]) for p, v in self.values.items() if now[p] != v[2]}

    def restore(self) -> list[str]:
        """Write back every setting that changed; returns those that could not be (normally
        none), as ``'path: reason'``."""
        errors: dict[str, str] = {}
        for _ in range(RESTORE_PASSES):
            changed = self.changed()
            if not changed:
                return []
            errors = {}
            for path in changed:
                struct, name, value = self.values[path]
                try:
                    setattr(struct, name, value)
                except (AttributeError, TypeError, ValueError, RuntimeError) as exc:
                    errors[path] = str(exc)
        return [f"{p}: {errors.get(p, 'did not keep its value')}" for p in self.changed()]


def _plain(value):
    """An RNA value as a comparable Python value (arrays as nested tuples)."""
    if isinstance(value, (bool, int, float, str, set, type(None))):
        return value
    try:
        return tuple(_plain(v) for v in value)
    except TypeError:
        return value


class SceneState:
    """Changes to a scene that can be undone: attribute values, frame, temporary datablocks,
    and every render setting (a :class:`SettingsSnapshot` taken at construction)."""

    def __init__(self, scene: bpy.types.Scene):
        self.scene = scene
        self.settings = SettingsSnapshot(scene)
        self.notes: list[str] = []  # what the renders do differently from the scene, said once
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

    def note(self, text: str) -> None:
        """Remember something the artist should be told (each text once)."""
        if text not in self.notes:
            self.notes.append(text)

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
        problems += self.settings.restore()  # last: it repairs what depends on restored values
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


def has_gpu() -> bool:
    """Whether Blender can draw with a GPU here, which EEVEE needs.

    With Blender's interface there is one (the interface draws with it). Headless (background
    mode, or bpy as a module) Blender does not open the GPU before EEVEE renders, and
    ``gpu.platform`` refuses to answer; on Linux a GPU shows as a device node (``/dev/dri/
    renderD*`` for Mesa's drivers, ``/dev/nvidiactl`` for NVIDIA's) — without one EEVEE gets
    software OpenGL at best (minutes a view) or none. macOS (Metal) and Windows always have one.
    """
    if not bpy.app.background or not sys.platform.startswith("linux"):
        return True
    return Path("/dev/nvidiactl").exists() or any(Path("/dev/dri").glob("renderD*"))


def check_engine(state: SceneState, *, use_cycles: bool, who: str) -> None:
    """Refuse EEVEE where Blender has no GPU (:func:`has_gpu`); with ``use_cycles`` render
    with Cycles instead (the scene keeps EEVEE), noted for the report. ``who`` names the
    operator in the advice ("the export"). Raises SceneError."""
    if not state.scene.render.engine.startswith("BLENDER_EEVEE") or has_gpu():
        return
    if not use_cycles:
        raise SceneError(
            f"EEVEE needs a GPU here; use Cycles ({who} can switch it for you: turn on "
            "'Cycles Without a GPU' in the NeRF panel's Dataset settings, or set Render "
            "Engine to Cycles)."
        )
    state.set(state.scene.render, "engine", "CYCLES")
    state.note("rendered with Cycles (with the scene's Cycles settings): EEVEE needs a GPU")


NO_DOF = "without the depth of field of "  # + the camera's name, a note for the report
NO_MOTION_BLUR = "without motion blur"
NAMED_CAMERAS = 3  # cameras named in a note; more are counted


def configure_pinhole(state: SceneState, camera: bpy.types.Object, *, keep_blur: bool) -> None:
    """The pictures of a pinhole at one instant, as the dataset's cameras describe: switch
    ``camera``'s depth of field off for the render, unless ``keep_blur``."""
    dof = getattr(camera.data, "dof", None)
    if keep_blur or dof is None or not dof.use_dof:
        return
    state.note(NO_DOF + camera.name)
    state.set(dof, "use_dof", False)


def render_notes(state: SceneState) -> list[str]:
    """What the renders did differently from the scene, as sentences for the report."""
    cameras = [n.removeprefix(NO_DOF) for n in state.notes if n.startswith(NO_DOF)]
    blur = ["motion blur"] if NO_MOTION_BLUR in state.notes else []
    if cameras:
        names = ", ".join(f"'{name}'" for name in cameras[:NAMED_CAMERAS])
        if len(cameras) > NAMED_CAMERAS:
            names += f" and {len(cameras) - NAMED_CAMERAS} more"
        blur.append(f"the depth of field of camera{'s' if len(cameras) > 1 else ''} {names}")
    notes = [n[0].upper() + n[1:] + "." for n in state.notes if not n.startswith("without ")]
    if blur:
        notes.append(
            f"Rendered without {' and '.join(blur)}: a NeRF learns sharp pictures taken in an "
            "instant (turn on Keep Blur to keep them)."
        )
    return notes


def configure_render(
    state: SceneState,
    view_layer: bpy.types.ViewLayer,
    *,
    transparent: bool,
    keep_blur: bool = False,
) -> None:
    """Render settings for dataset images: one view layer, no border, no compositing, no
    post-processing, PNG RGBA 8-bit, and the 'Standard' view transform (AgX, the default since
    4.0, changes colours in a way a NeRF comparison would count as error); no motion blur
    unless ``keep_blur`` (cameras: :func:`configure_pinhole`)."""
    scene = state.scene
    render = scene.render
    if render.use_motion_blur and not keep_blur:
        state.note(NO_MOTION_BLUR)
        state.set(render, "use_motion_blur", False)
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
