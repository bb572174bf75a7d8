"""The panel speaks an artist's words: every control has a plain tooltip, distances in messages
read in the scene's units, and the rig's elevation fields say what the rig will do."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import blender_nerf  # noqa: E402
from blender_nerf.export.plan import build_plan  # noqa: E402
from blender_nerf.scene import geometry  # noqa: E402
from blender_nerf.scene.scene_io import SceneError  # noqa: E402
from blender_nerf.scene.units import length  # noqa: E402

# Words of the NeRF field (or of our code) that mean nothing to an artist in a tooltip.
JARGON = (
    "aabb",
    "mlp",
    "4×128",
    "8×128",
    "8×256",
    "empty-space",
    "spiral",
    "depth_max",
    "65535",
    "k-planes",
    "intrinsics",
    "c2w",
    "rays_o",
    "rays_d",
    "near, far",
    "softplus",
    "σ",
)


def _ours(base: type) -> list[type]:
    """The add-on's registered subclasses of ``base`` (whichever module defines them)."""
    found, todo = [], list(base.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith(blender_nerf.__name__) and cls.is_registered:
            found.append(cls)
    return found


def _tooltips(struct, where: str):
    """(where, tooltip) for every control of an RNA struct an artist can see: each property
    and each choice of a menu. Hidden properties are never shown, and Blender's own (rna_type,
    bl_idname) are not ours: both are skipped."""
    for prop in struct.properties:
        if prop.identifier == "rna_type" or prop.identifier.startswith("bl_") or prop.is_hidden:
            continue
        name = f"{where}.{prop.identifier}"
        yield name, prop.description
        if prop.type == "ENUM":
            for item in prop.enum_items:
                yield f"{name}[{item.identifier}]", item.description


def _problem(text: str) -> str | None:
    if not text.strip():
        return "no tooltip"
    words = [word for word in JARGON if word in text.lower()]
    return f"jargon {words}: {text!r}" if words else None


def test_every_control_has_a_plain_tooltip(scene):
    texts = []
    groups = _ours(bpy.types.PropertyGroup) + _ours(bpy.types.AddonPreferences)
    for cls in groups:
        texts += _tooltips(cls.bl_rna, cls.__name__)
    operators = [getattr(bpy.ops.nerf, name) for name in dir(bpy.ops.nerf)]
    for op in operators:
        rna = op.get_rna_type()
        texts.append((op.idname_py(), rna.description))
        texts += _tooltips(rna, op.idname_py())
    names = {cls.__name__ for cls in groups}
    assert {"NERF_PG_scene", "NERF_PG_camera", "NERF_AP_preferences"} <= names
    assert len(operators) >= 10 and len(texts) > 100, "the walk found the add-on's controls"
    problems = [f"{where}: {why}" for where, text in texts if (why := _problem(text))]
    assert problems == []


def test_a_distance_in_a_message_reads_in_the_scenes_units(scene, tmp_path):
    """A room modelled in centimetres: the clipping warning says cm, with the right numbers."""
    units = scene.unit_settings
    units.system, units.scale_length, units.length_unit = "METRIC", 0.01, "CENTIMETERS"
    camera = bpy.data.objects["Camera"]
    scene.nerf.dataset_dir, scene.nerf.camera_source = str(tmp_path), "SELECTED"
    camera.select_set(True)
    camera.data.clip_end = 10.0  # Blender units: 10 cm here; the cube is ~9.5-13 cm away
    plan = build_plan(bpy.context)
    (note,) = plan.notes
    found = re.search(r"clips at ([\d.]+) cm–([\d.]+) cm but the subject lies ([\d.]+) cm–"
                      r"([\d.]+) cm away", note)  # fmt: skip
    assert found, note
    near, far = geometry.near_far(plan.aabb, np.stack([v.camera_to_world for v in plan.views]), 0)
    start, end, lies_near, lies_far = (float(x) for x in found.groups())
    assert (start, end) == pytest.approx((camera.data.clip_start, 10.0))
    assert (lies_near, lies_far) == pytest.approx((near, far), rel=5e-3)  # 1 unit = 1 cm


def test_length_follows_the_unit_settings(scene):
    units = scene.unit_settings
    assert length(scene, 2.5) == "2.5 m"  # the factory scene: metres
    units.scale_length, units.length_unit = 0.01, "CENTIMETERS"
    assert length(scene, 250.0) == "250 cm"
    units.length_unit = "ADAPTIVE"  # Blender picks the unit by size
    assert length(scene, 250.0) == "2.5 m"
    units.system, units.scale_length, units.length_unit = "IMPERIAL", 1.0, "FEET"
    assert length(scene, 0.3048 * 12) == "12'"
    units.system = "NONE"
    assert length(scene, 250.0) == "250"


def test_upper_hemisphere_and_min_elevation_agree(scene, tmp_path):
    """No silent clamp: Upper Hemisphere is Min Elevation at 0° or above, both ways."""
    nerf = scene.nerf
    nerf.dataset_dir, nerf.rig_views = str(tmp_path), 24
    assert nerf.rig_hemisphere and nerf.rig_elevation_min == 0.0

    nerf.rig_elevation_min = math.radians(-30)  # the artist asks for views from below
    assert not nerf.rig_hemisphere
    elevation = _rig_elevations(build_plan(bpy.context))
    assert elevation.min() < 0 and elevation.min() >= -30 - 1e-6

    nerf.rig_hemisphere = True  # the field shows where the rig starts now
    assert nerf.rig_elevation_min == 0.0
    assert _rig_elevations(build_plan(bpy.context)).min() >= -1e-6

    nerf.rig_hemisphere = False  # the whole sphere again
    assert nerf.rig_elevation_min == pytest.approx(-math.pi / 2)
    assert _rig_elevations(build_plan(bpy.context)).min() < -30

    nerf.rig_elevation_max = math.radians(-60)
    nerf.rig_elevation_min = math.radians(-10)
    with pytest.raises(SceneError, match="Max Elevation is below"):
        build_plan(bpy.context)


def _rig_elevations(plan) -> np.ndarray:
    """Degrees above the subject's centre (the default cube's: the origin) of every view."""
    centres = np.array([v.camera_to_world[:3, 3] for v in plan.views])
    return np.degrees(np.arcsin(centres[:, 2] / np.linalg.norm(centres, axis=1)))
