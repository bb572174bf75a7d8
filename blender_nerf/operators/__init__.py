"""Operators (``bpy.ops.nerf.*``)."""

from .export_dataset import NERF_OT_export_dataset

CLASSES = (NERF_OT_export_dataset,)
