"""Import View with real NeRF renders: the image plane fills the camera frame (corners within
0.5 px, a Cycles render through the camera reproduces the NeRF image), image sequences follow
the frame, the camera background, the compositor background (an empty scene renders as the NeRF
image within 1/255), and importing again replaces instead of piling up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import blender_pixels, render_png, time_limit, use_trained_run  # noqa: E402

from blender_nerf.nerf_engine.data.images import composite  # noqa: E402
from blender_nerf.scene import geometry, scene_io  # noqa: E402
from blender_nerf.views.import_view import TAG  # noqa: E402


@pytest.fixture(autouse=True)
def _no_hang():
    with time_limit(120):
        yield


def _odd_camera(scene):
    """A 32×20 frame (40×25 at 80 %), lens shift and a scaled camera."""
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = 40, 25, 80
    scene.camera.data.shift_x, scene.camera.data.shift_y = 0.05, -0.03
    scene.camera.scale = (2.0, 2.0, 2.0)
    bpy.context.view_layer.update()


def _counts():
    return {
        kind: len(getattr(bpy.data, kind))
        for kind in ("objects", "meshes", "materials", "images", "node_groups", "cameras")
    }


def test_image_plane_fills_the_frame_and_shows_the_render_pixel_aligned(
    scene, trained_run, tmp_path
):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    _odd_camera(scene)
    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    nerf.import_target, nerf.import_distance = "PLANE", 3.0
    assert bpy.ops.nerf.import_view() == {"FINISHED"}

    plane = next(ob for ob in bpy.data.objects if ob.get(TAG) == "Camera")
    assert plane.parent == scene.camera and not plane.visible_shadow
    bpy.context.view_layer.update()
    corners = [plane.matrix_world @ v.co for v in plane.data.vertices]
    pixels = blender_pixels(scene, scene.camera, corners, 32, 20)
    assert np.abs(pixels - [[0, 0], [32, 0], [32, 20], [0, 20]]).max() < 0.5
    eye = scene_io.camera_to_world(scene.camera)[:3, 3]
    assert np.allclose([np.dot(np.array(c) - eye, -scene_io.camera_to_world(scene.camera)[:3, 2])
                        for c in corners], 3.0)  # fmt: skip
    uv = np.empty(8)
    plane.data.uv_layers[0].data.foreach_get("uv", uv)
    loops = [plane.data.loops[i].vertex_index for i in range(4)]
    assert dict(zip(loops, map(tuple, uv.reshape(4, 2)), strict=True))[0] == (0.0, 1.0)

    # through the camera, Cycles shows the NeRF's pixels (a tiny pixel filter: no blur)
    bpy.data.objects["Cube"].hide_render = True
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    scene.cycles.filter_width = 0.01
    seen = render_png(scene, tmp_path / "through_the_camera.png")
    nerf_image = scene_io.read_image(tmp_path / "render" / "Camera.png")
    assert np.abs(seen[..., 3] - nerf_image[..., 3]).max() <= 1.5 / 255
    error = composite(seen, (1, 1, 1)) - composite(nerf_image, (1, 1, 1))
    assert np.abs(error).max() <= 3 / 255


def test_auto_distance_and_reimport_replace_the_earlier_import(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    assert bpy.ops.nerf.render_views() == {"FINISHED"}
    for target in ("PLANE", "CAMERA_BACKGROUND", "COMPOSITOR"):
        nerf.import_target = target
        assert bpy.ops.nerf.import_view() == {"FINISHED"}
    counts = _counts()
    nodes = len(scene.compositing_node_group.nodes)
    assert bpy.ops.nerf.render_views() == {"FINISHED"}  # a newer render of the same camera
    for target in ("PLANE", "CAMERA_BACKGROUND", "COMPOSITOR"):
        nerf.import_target = target
        assert bpy.ops.nerf.import_view() == {"FINISHED"}
    assert _counts() == counts
    assert len(scene.compositing_node_group.nodes) == nodes
    assert len(scene.camera.data.background_images) == 1
    plane = next(ob for ob in bpy.data.objects if ob.get(TAG) == "Camera")
    distance = -min(v.co.z for v in plane.data.vertices)
    aabb = json.loads((trained_run.run / "config.json").read_text())["scene"]["aabb"]
    pose = scene_io.camera_to_world(scene.camera)[None]
    farthest = geometry.near_far(np.array(aabb), pose, margin=0.0)[1]
    assert distance == pytest.approx(1.1 * farthest)  # 0: just behind the scene box


def test_camera_background_settings(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    assert bpy.ops.nerf.render_views() == {"FINISHED"}
    nerf.import_target = "CAMERA_BACKGROUND"
    nerf.import_opacity, nerf.import_depth = 0.4, "FRONT"
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    data = scene.camera.data
    (background,) = data.background_images
    assert data.show_background_images and background.image.get(TAG) == "Camera"
    assert background.alpha == pytest.approx(0.4) and background.display_depth == "FRONT"
    assert background.frame_method == "STRETCH"
    assert Path(bpy.path.abspath(background.image.filepath)) == tmp_path / "render/Camera.png"


def test_animation_imports_an_image_sequence_that_follows_the_frame(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    camera = scene.camera
    start = camera.location.copy()
    camera.keyframe_insert("location", frame=2)
    camera.location = start * 1.15
    camera.keyframe_insert("location", frame=4)
    scene.frame_start, scene.frame_end = 2, 4
    nerf.render_source = "ANIMATION"
    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    nerf.import_target, nerf.import_distance = "PLANE", 3.0
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    image = next(im for im in bpy.data.images if im.get(TAG) == "Camera")
    assert image.source == "SEQUENCE"

    bpy.data.objects["Cube"].hide_render = True
    scene.render.film_transparent = True
    scene.cycles.filter_width = 0.01
    for frame in (2, 4):
        scene.frame_set(frame)
        seen = render_png(scene, tmp_path / f"seen_{frame}.png")
        expected = scene_io.read_image(tmp_path / "render" / f"Camera_{frame:04d}.png")
        assert np.abs(seen[..., 3] - expected[..., 3]).max() <= 1.5 / 255, frame


def test_compositor_background_of_an_empty_scene_is_the_nerf_image(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    scene.view_settings.view_transform = "AgX"  # the import sets Standard
    assert bpy.ops.nerf.render_views() == {"FINISHED"}
    for name in ("Cube", "Light"):
        bpy.data.objects.remove(bpy.data.objects[name])
    nerf.import_target = "COMPOSITOR"
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    render = scene.render
    assert render.use_compositing and render.film_transparent
    assert scene.view_settings.view_transform == "Standard"

    result = render_png(scene, tmp_path / "composited.png")
    expected = scene_io.read_image(tmp_path / "render" / "Camera.png")
    assert expected[..., 3].max() > 0.9 and expected[..., 3].min() < 0.1  # not a blank test
    assert np.abs(result[..., 3] - expected[..., 3]).max() <= 1 / 255 + 1e-6
    premultiplied = result[..., :3] * result[..., 3:], expected[..., :3] * expected[..., 3:]
    assert np.abs(premultiplied[0] - premultiplied[1]).max() <= 1 / 255 + 1e-6


def test_compositor_background_goes_behind_an_existing_compositor(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    assert bpy.ops.nerf.render_views() == {"FINISHED"}
    tree = bpy.data.node_groups.new("Artist", "CompositorNodeTree")
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    layers, blur = tree.nodes.new("CompositorNodeRLayers"), tree.nodes.new("CompositorNodeBlur")
    output = tree.nodes.new("NodeGroupOutput")
    tree.links.new(layers.outputs["Image"], blur.inputs[0])
    tree.links.new(blur.outputs[0], output.inputs[0])
    scene.compositing_node_group = tree
    nerf.import_target = "COMPOSITOR"
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    assert scene.compositing_node_group == tree
    over = output.inputs[0].links[0].from_node
    assert over.bl_idname == "CompositorNodeAlphaOver"
    assert over.inputs["Foreground"].links[0].from_node == blur  # the artist's result in front
    assert over.inputs["Background"].links[0].from_node.image.get(TAG) == "Camera"
