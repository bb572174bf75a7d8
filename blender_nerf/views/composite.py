"""Import View's compositor target: the NeRF's picture combined with the scene's own render.

Built into the scene's compositor node group (``scene.compositing_node_group``; a new one when
the scene has none), between whatever the artist's tree gives its output (the front: by default
the Render Layers' image) and that output:

- **Alpha Over** (the NeRF always behind the scene's objects), or, with Depth Compositing,
  **Z Combine**: per pixel the nearer of the render and the NeRF in front, by Blender's own Z pass
  and the NeRF's depth converted to that convention (``views/nerf_depth.py``), each over the
  other by its alpha;
- with Shadows on the NeRF, the NeRF's picture is first multiplied by the view layer's Shadow
  Catcher pass (``views/shadow_catcher.py``): the light the scene's objects take from the mesh
  standing in for the NeRF's surfaces.

Every node made here is marked as the add-on's own and named, so importing again reuses them
(and switches between Alpha Over and Z Combine) instead of adding more.
"""

from __future__ import annotations

import bpy

from ..scene.ours import mark_ours

MAKER = "Import View"  # the add-on's mark on what Import View made (scene/ours.py)
TAG = "nerf_import"  # on each datablock Import View made: the camera whose render it shows
NODE_IMAGE, NODE_OVER = "NeRF Background", "NeRF Alpha Over"
NODE_Z, NODE_DEPTH, NODE_DEPTH_VALUE = "NeRF Z Combine", "NeRF Depth", "NeRF Depth Value"
NODE_SHADOWS, NODE_LAYERS = "NeRF Shadows", "NeRF Render Layers"
FRONT = {NODE_OVER: "Foreground", NODE_Z: "A"}  # each combining node's input for the front


def compositor_background(
    scene: bpy.types.Scene,
    image: bpy.types.Image,
    camera: str,
    frame_range,
    depth: bpy.types.Image | None = None,
    shadows: bool = False,
) -> None:
    """Put the NeRF's ``image`` (of ``camera``) behind the scene's render, or with ``depth`` (its
    planar depth image) in front where it is nearer; ``shadows``: multiplied by the Shadow
    Catcher pass. ``frame_range(node)`` sets an Image node's frames (image sequences). Sets the
    film transparent, the Standard view transform (the colours the NeRF was trained on) and
    the passes the nodes read."""
    tree = scene.compositing_node_group
    if tree is None:
        tree = bpy.data.node_groups.new("NeRF Compositing", "CompositorNodeTree")
        tree[TAG] = camera
        mark_ours(tree, MAKER)
        scene.compositing_node_group = tree
    output = _group_output(tree)
    front = _take_front(tree, output)
    source = _node(tree, NODE_IMAGE, "CompositorNodeImage", (-300, -250))
    source.image = image
    frame_range(source)
    nerf = source.outputs["Image"]
    if shadows:
        nerf = _shadowed(scene, tree, nerf)
    else:
        _remove(tree, NODE_SHADOWS)
    if depth is not None:
        combine = _z_combine(scene, tree, front, nerf, depth, frame_range)
    else:
        combine = _node(tree, NODE_OVER, "CompositorNodeAlphaOver", (150, 0))
        tree.links.new(front, combine.inputs["Foreground"])
        tree.links.new(nerf, combine.inputs["Background"])
        for name in (NODE_Z, NODE_DEPTH, NODE_DEPTH_VALUE):
            _remove(tree, name)
    tree.links.new(combine.outputs[0], output.inputs[0])
    scene.render.use_compositing = True
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"


def _take_front(tree, output) -> bpy.types.NodeSocket:
    """What the artist's tree puts in front: the input of our earlier combining node (removed
    here), else what feeds the output, else a new Render Layers node's image."""
    for name, socket in FRONT.items():
        node = tree.nodes.get(name)
        if node is not None:
            links = node.inputs[socket].links
            front = links[0].from_socket if links else None
            tree.nodes.remove(node)
            if front is not None:
                return front
    if output.inputs[0].links:
        return output.inputs[0].links[0].from_socket
    return _render_layers(tree).outputs["Image"]


def _render_layers(tree) -> bpy.types.Node:
    """The tree's Render Layers node (the first), else ours."""
    found = [n for n in tree.nodes if n.bl_idname == "CompositorNodeRLayers"]
    return found[0] if found else _node(tree, NODE_LAYERS, "CompositorNodeRLayers", (-300, 0))


def _pass(scene, tree, name: str, use: str) -> bpy.types.NodeSocket:
    """The Render Layers' output ``name`` (Depth, Shadow Catcher), its pass turned on."""
    layers = _render_layers(tree)
    layer = scene.view_layers.get(layers.layer) or scene.view_layers[0]
    settings = layer.cycles if use == "use_pass_shadow_catcher" else layer
    setattr(settings, use, True)
    layers.layer = layers.layer  # the node shows the outputs of the passes now on
    return layers.outputs[name]


def _shadowed(scene, tree, nerf) -> bpy.types.NodeSocket:
    """The NeRF's (premultiplied) colour times the Shadow Catcher pass, its alpha kept."""
    mix = _node(tree, NODE_SHADOWS, "ShaderNodeMix", (-50, -250))
    mix.data_type, mix.blend_type, mix.clamp_result = "RGBA", "MULTIPLY", False
    mix.inputs["Factor"].default_value = 1.0
    tree.links.new(nerf, mix.inputs[6])  # A (RGBA)
    tree.links.new(_pass(scene, tree, "Shadow Catcher", "use_pass_shadow_catcher"), mix.inputs[7])
    return mix.outputs[2]  # Result (RGBA)


def _z_combine(scene, tree, front, nerf, depth, frame_range) -> bpy.types.Node:
    """Z Combine of the front (with Blender's Z pass) and the NeRF (with its planar depth)."""
    combine = _node(tree, NODE_Z, "CompositorNodeZcombine", (150, 0))
    combine.inputs["Use Alpha"].default_value = True
    depth_node = _node(tree, NODE_DEPTH, "CompositorNodeImage", (-300, -500))
    depth_node.image = depth
    frame_range(depth_node)
    value = _node(tree, NODE_DEPTH_VALUE, "CompositorNodeSeparateColor", (-50, -500))
    tree.links.new(depth_node.outputs["Image"], value.inputs[0])
    tree.links.new(front, combine.inputs["A"])
    tree.links.new(_pass(scene, tree, "Depth", "use_pass_z"), combine.inputs["Depth A"])
    tree.links.new(nerf, combine.inputs["B"])
    tree.links.new(value.outputs["Red"], combine.inputs["Depth B"])
    return combine


def _remove(tree, name: str) -> None:
    node = tree.nodes.get(name)
    if node is not None:
        tree.nodes.remove(node)


def _group_output(tree) -> bpy.types.Node:
    outputs = [node for node in tree.nodes if node.bl_idname == "NodeGroupOutput"]
    if outputs:
        return next((n for n in outputs if n.is_active_output), outputs[0])
    if not tree.interface.items_tree:
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    output = tree.nodes.new("NodeGroupOutput")
    output.location = (400, 0)
    return output


def _node(tree, name: str, kind: str, location) -> bpy.types.Node:
    node = tree.nodes.get(name)
    if node is None:
        node = mark_ours(tree.nodes.new(kind), MAKER)
        node.name = node.label = name
        node.location = location
    return node
