"""What the add-on reports back into ``scene.nerf``, mixed into it (properties.py): the last
Compare's numbers and pictures, the running job's state, and the training job's latest numbers
and preview. Read-only in the UI; the jobs write them.
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, PointerProperty, StringProperty


class StatusSettings:
    """A mixin of ``NERF_PG_scene``: its properties register with it."""

    # --- the last Compare (read-only in the UI) ---
    compare_psnr: FloatProperty(
        name="PSNR",
        default=0.0,
        description="How close the NeRF's pictures are to Blender's, in dB (higher is closer; "
        "above 30 the difference is hard to see)",
    )
    compare_ssim: FloatProperty(
        name="SSIM",
        default=0.0,
        precision=4,
        description="How alike the NeRF's pictures and Blender's look in structure, from 0 to 1 "
        "(1: the same)",
    )
    compare_psnr_mask: FloatProperty(
        name="PSNR (object)",
        default=0.0,
        description="PSNR counted on the subject only, without the background",
    )
    compare_ssim_mask: FloatProperty(
        name="SSIM (object)",
        default=0.0,
        precision=4,
        description="SSIM counted on the subject only, without the background",
    )
    compare_views: IntProperty(
        name="Views", default=0, description="How many views the last Compare measured"
    )
    compare_report: StringProperty(
        name="Report",
        default="",
        subtype="FILE_PATH",
        description="The last Compare's full report (every view's numbers)",
    )
    compare_image: PointerProperty(
        name="Side by Side",
        type=bpy.types.Image,
        description="Blender's picture | the NeRF's | their difference, for the first view",
    )
    curve_image: PointerProperty(
        name="Training Curve",
        type=bpy.types.Image,
        description="How the NeRF's picture quality grew during training",
    )
    render_image: PointerProperty(
        name="NeRF Render", type=bpy.types.Image, description="The first view of Render Views"
    )
    # --- state of the running job (read-only in the UI) ---
    job_progress: FloatProperty(
        name="Progress",
        description="How far the running task is",
        min=0.0,
        max=1.0,
        default=0.0,
        subtype="FACTOR",
    )
    job_status: StringProperty(
        name="Status", description="What the running or last task is doing or did", default=""
    )
    job_running: BoolProperty(
        name="Running", description="A task (export, training, render) is running", default=False
    )
    # --- the training job's latest numbers and preview (read-only in the UI) ---
    train_step: IntProperty(name="Step", description="The training's current step", default=0)
    train_total_steps: IntProperty(
        name="Total Steps", description="How many steps the training will take", default=0
    )
    train_loss: FloatProperty(
        name="Loss",
        default=0.0,
        precision=5,
        description="How far the NeRF's pictures still are from the training pictures (lower "
        "is better)",
    )
    train_psnr: FloatProperty(
        name="PSNR",
        default=0.0,
        description="How close the NeRF's pictures are to the training pictures, in dB (higher "
        "is closer)",
    )
    train_rays_per_s: FloatProperty(
        name="Rays/s",
        default=0.0,
        description="Training speed: pixels learned per second",
    )
    train_eta_s: FloatProperty(
        name="ETA",
        default=0.0,
        unit="TIME_ABSOLUTE",
        description="Time left until training ends",
    )
    preview_image: PointerProperty(
        name="Preview",
        type=bpy.types.Image,
        description="The NeRF's latest picture of a held-out view (RUN/previews/latest.png)",
    )
    target_image: PointerProperty(
        name="Ground Truth",
        type=bpy.types.Image,
        description="The same held-out view as Blender rendered it (RUN/previews/target.png)",
    )
