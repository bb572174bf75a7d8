"""Import View's compositor target with depth and shadows (issue 17): the NeRF's depth converted
exactly to the convention of Blender's own Z pass; a CG cube half behind the NeRF's object is
hidden where Blender hides it (Z Combine), which Alpha Over cannot do; and a CG sphere casts its
shadow onto the NeRF's surface through a shadow-catcher mesh, as in Blender's full render."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from addon_helpers import render_png, time_limit, use_trained_run  # noqa: E402

from blender_nerf.nerf_engine.data.cameras import image_rays  # noqa: E402
from blender_nerf.nerf_engine.data.images import composite, write_png16  # noqa: E402
from blender_nerf.scene import geometry, scene_io  # noqa: E402
from blender_nerf.views import nerf_depth  # noqa: E402
from blender_nerf.views.shadow_catcher import WAS_CATCHER  # noqa: E402


@pytest.fixture(autouse=True)
def _no_hang():
    with time_limit(240):
        yield


def _z_pass(scene, path):
    """Blender's own Z pass of ``scene`` [h, w] (row 0 at the top), through a compositor of its
    own that the test restores afterwards."""
    tree = bpy.data.node_groups.new("Z pass", "CompositorNodeTree")
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    layers, output = tree.nodes.new("CompositorNodeRLayers"), tree.nodes.new("NodeGroupOutput")
    bpy.context.view_layer.use_pass_z = True
    layers.layer = layers.layer  # shows the Depth output
    tree.links.new(layers.outputs["Depth"], output.inputs[0])
    scene.compositing_node_group, scene.render.use_compositing = tree, True
    settings = scene.render.image_settings
    settings.file_format, settings.color_depth = "OPEN_EXR", "32"
    scene.render.filepath, scene.render.use_file_extension = str(path), False
    assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
    settings.file_format = "PNG"
    scene.compositing_node_group = None
    bpy.data.node_groups.remove(tree)
    return scene_io.read_image(path)[..., 0].astype(np.float64)


def test_nerf_depth_becomes_blender_z_pass_convention_exactly(scene, tmp_path):
    """A ground plane seen at a slant by a wide, shifted lens: the distance along each ray (the
    engine's depth, written as Render Views writes it) converts to Blender's own Z pass."""
    scene.render.resolution_x, scene.render.resolution_y = 40, 24
    camera = scene.camera
    camera.data.lens, camera.data.shift_x = 14.0, 0.1
    scene.cycles.filter_width = 0.01  # each pixel's Z from its centre's ray
    bpy.data.objects.remove(bpy.data.objects["Cube"])
    bpy.ops.mesh.primitive_plane_add(size=200, location=(0, 0, -1))
    bpy.context.view_layer.update()
    z_pass = _z_pass(scene, tmp_path / "z.exr")

    intrinsics = scene_io.camera_intrinsics(camera, scene, (40, 24))
    rays_o, rays_d = image_rays(intrinsics, scene_io.camera_to_world(camera))
    t = (-1.0 - rays_o[..., 2]) / rays_d[..., 2]  # analytic distance along each ray to z = -1
    hit = (t > 0) & (z_pass < 1e9)
    assert hit.sum() > 300
    depth_max = float(t[hit].max())
    write_png16(
        tmp_path / "v_depth.png",
        np.round(np.where(hit, t, 0) / depth_max * 65535).astype(np.uint16),
    )
    source = nerf_depth.DepthSource("v", tmp_path / "v_depth.png", depth_max, intrinsics)
    planar = nerf_depth.planar_depth(source)

    quantum = depth_max / 65535
    assert np.abs(planar[hit] - z_pass[hit]).max() < 2 * quantum + 1e-4 * z_pass[hit].max()
    assert (planar[~hit] == nerf_depth.NO_HIT).all()  # where the NeRF is empty, as Blender
    # the distance along the ray is not the Z pass: a test that could not tell them apart
    assert np.abs(t[hit] - z_pass[hit]).max() > 0.2 * z_pass[hit].max()
    assert np.allclose(geometry.planar_to_ray_distance(planar, intrinsics)[hit], t[hit], 1e-3)


def _behind_the_subject(scene):
    """A red CG cube half behind the default cube as the camera sees it."""
    eye = np.array(scene.camera.matrix_world.translation)
    ahead = -eye / np.linalg.norm(eye)
    side = np.cross(ahead, (0.0, 0.0, 1.0))
    side /= np.linalg.norm(side)
    bpy.ops.mesh.primitive_cube_add(size=1.2, location=tuple(1.9 * ahead + 1.7 * side))
    cg = bpy.context.object
    material = bpy.data.materials.new("Red")
    material.diffuse_color = (0.8, 0.05, 0.05, 1.0)
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (0.8, 0.05, 0.05, 1.0)
    cg.data.materials.append(material)
    return cg


def _psnr(a, b):
    return float(-10 * np.log10(np.mean((a - b) ** 2)))


def _over_white(rgba):
    return composite(rgba, (1.0, 1.0, 1.0))


def test_depth_compositing_hides_what_the_nerf_hides(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    scene.render.resolution_x = scene.render.resolution_y = 40  # the cube's edges in more pixels
    nerf.render_depth = True
    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    subject = bpy.data.objects["Cube"]
    cg = _behind_the_subject(scene)
    full = render_png(scene, tmp_path / "blender_full.png")  # Blender: subject and CG cube
    subject.hide_render = True
    cg_alone = render_png(scene, tmp_path / "cg_alone.png")
    subject.hide_render = False
    cg.hide_render = True
    subject_alone = render_png(scene, tmp_path / "subject_alone.png")
    cg.hide_render, subject.hide_render = False, True  # the NeRF stands in for the subject
    cube = cg_alone[..., 3] > 0.99  # the CG cube's pixels
    hidden = cube & (subject_alone[..., 3] > 0.99)  # ... of which Blender hides these
    assert cube.sum() > 30 and 10 < hidden.sum() < cube.sum() - 10  # half behind

    nerf.import_target = "COMPOSITOR"
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    alpha_over = render_png(scene, tmp_path / "alpha_over.png")
    nerf.import_use_depth = True
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    tree = scene.compositing_node_group
    assert "NeRF Alpha Over" not in tree.nodes and "NeRF Z Combine" in tree.nodes
    by_depth = render_png(scene, tmp_path / "by_depth.png")

    reference = _over_white(full)[cube]
    psnr_depth = _psnr(_over_white(by_depth)[cube], reference)
    psnr_over = _psnr(_over_white(alpha_over)[cube], reference)
    print(f"CG cube's pixels: Z Combine {psnr_depth:.2f} dB, Alpha Over {psnr_over:.2f} dB")
    assert psnr_depth > psnr_over + 6.0
    assert psnr_depth > 17.0  # the rest is the tiny NeRF's own error in colour
    # where the NeRF's cube is in front, the composite shows it (white-ish), not the red cube
    red = lambda image: image[..., 0] - image[..., 1]  # noqa: E731
    assert (
        red(_over_white(by_depth))[hidden].mean()
        < 0.5 * red(_over_white(alpha_over))[hidden].mean()
    )


def test_depth_compositing_without_depth_is_refused_before_any_change(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    assert bpy.ops.nerf.render_views() == {"FINISHED"}  # without Depth
    nerf.import_target, nerf.import_use_depth = "COMPOSITOR", True
    groups = len(bpy.data.node_groups)
    with pytest.raises(RuntimeError, match=r"has no depth.*turn on Render > Depth"):
        bpy.ops.nerf.import_view()
    assert scene.compositing_node_group is None and len(bpy.data.node_groups) == groups
    assert not scene.render.film_transparent


def _sphere_above_the_subject():
    """A CG sphere whose shadow (from the default Light) falls on the default cube's top."""
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.4, location=(0.8, 0.2, 1.9))
    return bpy.context.object


def test_shadow_catcher_casts_cg_shadows_on_the_nerf(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    scene.render.resolution_x = scene.render.resolution_y = 40  # the shadow in more pixels
    scene.cycles.samples = 32  # the Shadow Catcher pass is a ratio of two noisy estimates
    assert bpy.ops.nerf.render_views() == {"FINISHED"}, nerf.job_status
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    subject = bpy.data.objects["Cube"]
    sphere = _sphere_above_the_subject()
    full = _over_white(render_png(scene, tmp_path / "blender_full.png"))
    sphere.hide_render = True
    unshadowed = _over_white(render_png(scene, tmp_path / "blender_unshadowed.png"))
    sphere.hide_render = False
    subject.hide_render = True  # the NeRF stands in for it, and a mesh of its surface:
    sphere_alone = render_png(scene, tmp_path / "sphere_alone.png")
    shadow = (unshadowed - full).mean(-1) > 0.1  # Blender darkens these by the sphere's shadow
    shadow &= sphere_alone[..., 3] < 0.01
    assert shadow.sum() >= 10

    nerf.import_target = "COMPOSITOR"
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    without = _over_white(render_png(scene, tmp_path / "without_catcher.png"))
    bpy.ops.mesh.primitive_cube_add(size=2.0)
    stand_in = bpy.context.object
    nerf.import_use_shadow_catcher, nerf.import_shadow_catcher = True, stand_in
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    assert stand_in.is_shadow_catcher and stand_in[WAS_CATCHER] is False
    assert bpy.context.view_layer.cycles.use_pass_shadow_catcher
    with_catcher = _over_white(render_png(scene, tmp_path / "with_catcher.png"))

    darker = (without - with_catcher).mean(-1)[shadow]
    error = np.abs(with_catcher - full).mean(-1)[shadow]
    error_without = np.abs(without - full).mean(-1)[shadow]
    # how much of the light the shadow takes, in the composite and in Blender's render
    kept = with_catcher.mean(-1)[shadow] / without.mean(-1)[shadow]
    kept_blender = full.mean(-1)[shadow] / unshadowed.mean(-1)[shadow]
    print(f"shadow pixels: {shadow.sum()}, darker by {darker.mean():.3f}, |composite - "
          f"Blender| {error.mean():.3f} (without the catcher {error_without.mean():.3f}), light "
          f"kept {kept.mean():.3f} (Blender {kept_blender.mean():.3f})")  # fmt: skip
    assert darker.mean() > 0.1
    assert np.abs(kept - kept_blender).mean() < 0.1
    assert error.mean() < 0.5 * error_without.mean()
    assert error.mean() < 0.06  # the tiny NeRF's own error in colour, and the pass's noise
    # the stand-in mesh itself never shows: outside the shadow the composite is the NeRF's
    elsewhere = ~shadow & (sphere_alone[..., 3] < 0.01)
    assert np.abs(with_catcher - without).mean(-1)[elsewhere].mean() < 0.02

    nerf.import_use_shadow_catcher = False  # importing again without: the mesh as it was
    assert bpy.ops.nerf.import_view() == {"FINISHED"}
    assert not stand_in.is_shadow_catcher and WAS_CATCHER not in stand_in
    assert "NeRF Shadows" not in scene.compositing_node_group.nodes


def test_shadow_catcher_is_refused_without_a_mesh_or_cycles(scene, trained_run, tmp_path):
    nerf = use_trained_run(scene, trained_run, tmp_path / "render")
    assert bpy.ops.nerf.render_views() == {"FINISHED"}
    nerf.import_target, nerf.import_use_shadow_catcher = "COMPOSITOR", True
    with pytest.raises(RuntimeError, match=r"need a mesh of the NeRF's surfaces.*Extract Mesh"):
        bpy.ops.nerf.import_view()
    nerf.import_shadow_catcher = bpy.data.objects["Cube"]
    scene.render.engine = "BLENDER_EEVEE"
    with pytest.raises(RuntimeError, match="set Render Engine to Cycles"):
        bpy.ops.nerf.import_view()
    assert scene.compositing_node_group is None and not scene.render.film_transparent
    assert not bpy.data.objects["Cube"].is_shadow_catcher
