"""Operators (``bpy.ops.nerf.*``)."""

from .dependencies import NERF_OT_check_engine, NERF_OT_install_dependencies
from .export_dataset import NERF_OT_export_dataset
from .geometry import NERF_OT_extract_mesh
from .train import NERF_OT_cancel_job, NERF_OT_job_report, NERF_OT_train
from .views import CLASSES as VIEW_CLASSES

CLASSES = (
    NERF_OT_export_dataset,
    NERF_OT_train,
    NERF_OT_cancel_job,
    NERF_OT_job_report,
    NERF_OT_check_engine,
    NERF_OT_install_dependencies,
    *VIEW_CLASSES,
    NERF_OT_extract_mesh,
)
