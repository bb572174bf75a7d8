"""An imported NeRF image plane shows in its own camera only.

The plane is the NeRF's picture for one camera, placed to fill exactly that camera's view; seen
from any other camera it is a flat card floating in the scene. A geometry-nodes modifier
removes the plane's geometry unless the scene's active camera stands where the plane's own
camera stands: the *Active Camera* node's object, brought into the plane's space (*Object
Info*, Relative), must sit at the plane's origin with no rotation (the plane is parented to its
camera with the camera's pose, so its own camera does, wherever it moves).

Why geometry nodes and not the alternatives:
- a driver on ``hide_render``/``hide_viewport`` keyed to ``scene.camera`` is not re-evaluated
  when the active camera changes (measured in Blender 5.0: it kept the first camera's value),
  and a Python expression needs "Auto Run Python Scripts", off for files from elsewhere;
- ray visibility and holdout are one flag per object, the same for every camera;
- view layers all render through the one scene camera.
The *Active Camera* node is re-evaluated whenever the scene's camera changes (also by camera
markers), removes the geometry in every viewport shading mode and in Cycles and EEVEE final
renders alike, and needs no Python at render time: the file works without the add-on.
"""

from __future__ import annotations

import bpy

from ..scene.ours import is_ours, mark_ours

GROUP_NAME = "NeRF Own Camera Only"
MODIFIER_NAME = "NeRF: own camera only"
TOLERANCE_INPUT = "Tolerance"
ROTATION_TOLERANCE = 1e-3  # radians: a camera turned further is another camera
LOCATION_TOLERANCE = 1e-3  # of the plane's distance (scene units grow with it)


def show_to_own_camera(plane: bpy.types.Object, distance: float, maker: str) -> None:
    """Give ``plane`` (parented to its camera with the camera's pose) the modifier that hides it
    from every other camera; ``distance``: the plane's distance from the camera, in scene units
    (the location tolerance scales with it)."""
    modifier = plane.modifiers.get(MODIFIER_NAME)
    if modifier is None:
        modifier = plane.modifiers.new(MODIFIER_NAME, "NODES")
    modifier.node_group = _node_group(maker)
    socket = modifier.node_group.interface.items_tree[TOLERANCE_INPUT]
    modifier[socket.identifier] = LOCATION_TOLERANCE * distance


def _node_group(maker: str) -> bpy.types.GeometryNodeTree:
    """The shared node group (made once per file, marked as ours)."""
    group = bpy.data.node_groups.get(GROUP_NAME)
    if group is not None and is_ours(group) and group.bl_idname == "GeometryNodeTree":
        return group
    group = mark_ours(bpy.data.node_groups.new(GROUP_NAME, "GeometryNodeTree"), maker)
    face = group.interface
    face.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    tolerance = face.new_socket(TOLERANCE_INPUT, in_out="INPUT", socket_type="NodeSocketFloat")
    tolerance.default_value, tolerance.min_value = 1e-3, 0.0
    face.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    inputs, output = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    camera = nodes.new("GeometryNodeInputActiveCamera")
    info = nodes.new("GeometryNodeObjectInfo")
    info.transform_space = "RELATIVE"  # the active camera in the plane's space
    links.new(camera.outputs[0], info.inputs["Object"])
    offset = _below(nodes, links, info.outputs["Location"], inputs.outputs[TOLERANCE_INPUT])
    euler = nodes.new("FunctionNodeRotationToEuler")
    links.new(info.outputs["Rotation"], euler.inputs[0])
    turn = _below(nodes, links, euler.outputs[0], ROTATION_TOLERANCE)
    same = nodes.new("FunctionNodeBooleanMath")
    same.operation = "AND"
    links.new(offset, same.inputs[0])
    links.new(turn, same.inputs[1])
    switch = nodes.new("GeometryNodeSwitch")
    switch.input_type = "GEOMETRY"
    links.new(same.outputs[0], switch.inputs["Switch"])
    links.new(inputs.outputs["Geometry"], switch.inputs["True"])  # False: no geometry
    links.new(switch.outputs[0], output.inputs["Geometry"])
    for x, node in enumerate((inputs, camera, info, euler, same, switch, output)):
        node.location = (200 * x - 600, 0)
    return group


def _below(nodes, links, vector_socket, limit) -> bpy.types.NodeSocket:
    """A boolean socket: length of ``vector_socket`` < ``limit`` (a number or a socket)."""
    length = nodes.new("ShaderNodeVectorMath")
    length.operation = "LENGTH"
    links.new(vector_socket, length.inputs[0])
    compare = nodes.new("FunctionNodeCompare")
    compare.data_type, compare.operation = "FLOAT", "LESS_THAN"
    links.new(length.outputs["Value"], compare.inputs[0])
    if isinstance(limit, float):
        compare.inputs[1].default_value = limit
    else:
        links.new(limit, compare.inputs[1])
    return compare.outputs[0]
