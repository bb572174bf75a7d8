"""Ground truth for Compare: Blender renders the compared cameras as Export Dataset renders
dataset images (the scene's engine, 'Standard' view transform, PNG RGBA, the dataset's
transparency, no blur unless Keep Blur), plus a mask of the subject objects. The scene is put
back afterwards, whatever happens."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import bpy

from ..scene import blender_render
from ..scene.blender_render import (
    PASS_PREFIX,
    SceneState,
    check_engine,
    check_rendered_png,
    configure_passes,
    configure_pinhole,
    configure_render,
    hide_ours,
    render_notes,
    set_render_size,
)
from ..scene.scene_io import SceneError
from ..scene.shots import Shot

STAGING = ".staging"


def render_ground_truth(
    context: bpy.types.Context,
    shots: list[Shot],
    folder: Path,
    *,
    transparent: bool,
    subject: list[bpy.types.Object],
    include_ours: bool = False,
) -> list[str]:
    """Render ``folder/<name>.png`` (and ``<name>_mask.png`` when there is a ``subject``) for
    every shot, without what the add-on made (imported NeRF planes: the NeRF's own picture is
    no ground truth) unless ``include_ours``, with Keep Blur and Cycles Without a GPU of
    ``scene.nerf``. Returns notes on what the renders did differently from the scene (blur off,
    Cycles for EEVEE). Raises SceneError when Blender does not or cannot render."""
    scene = context.scene
    state = SceneState(scene)
    staging = folder / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    keep_blur = scene.nerf.keep_blur
    try:
        check_engine(state, use_cycles=scene.nerf.cycles_without_gpu, who="Compare")
        configure_render(state, context.view_layer, transparent=transparent, keep_blur=keep_blur)
        if not include_ours:
            hide_ours(state, scene)
        configure_passes(
            state, context.view_layer, subject, staging, depth=False, mask=bool(subject)
        )
        for shot in shots:
            _render(state, shot, staging, folder, mask=bool(subject), keep_blur=keep_blur)
    finally:
        state.restore()
        shutil.rmtree(staging, ignore_errors=True)
    return render_notes(state)


def _render(
    state: SceneState, shot: Shot, staging: Path, folder: Path, *, mask: bool, keep_blur: bool
) -> None:
    scene = state.scene
    if shot.frame is not None and shot.frame != scene.frame_current:
        scene.frame_set(shot.frame)
    camera = bpy.data.objects.get(shot.camera)
    if camera is None:
        raise SceneError(f"Camera '{shot.camera}' was deleted while Compare rendered.")
    configure_pinhole(state, camera, keep_blur=keep_blur)
    state.set(scene, "camera", camera)
    set_render_size(state, shot.intrinsics.w, shot.intrinsics.h)
    for stale in staging.iterdir():
        stale.unlink()
    image = staging / "image.png"
    state.set(scene.render, "filepath", str(image))
    result = blender_render.render_still(scene)  # looked up here: tests replace it
    if "FINISHED" not in result or not image.is_file():
        raise SceneError(
            f"Blender did not render camera '{shot.camera}' ({result}); see the system console."
        )
    check_rendered_png(image, f"camera '{shot.camera}'")
    if mask:
        found = sorted(staging.glob(f"{PASS_PREFIX}mask*"))
        if not found:
            raise SceneError(
                f"The compositor wrote no object mask; check that {scene.render.engine} "
                "supports the Object Index pass."
            )
        os.replace(found[-1], folder / f"{shot.name}_mask.png")
    os.replace(image, folder / f"{shot.name}.png")
