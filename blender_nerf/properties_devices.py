"""Training on several devices: the "Devices" count and, for a cluster, the torchrun command that
starts the training processes — in the Training panel (``Scene.nerf.devices``) and in the add-on
preferences, which decide what a scene leaves at 0 or empty.

With more than one device (or a cluster command) the trainer runs under PyTorch's ``torchrun``
(``python -m torch.distributed.run --standalone --nproc-per-node N``), one process per GPU (or
CPU share); progress, cancel and resume work as with one (``job.TrainRequest.command``).
"""

from __future__ import annotations

import shlex

import bpy
from bpy.props import IntProperty, StringProperty

MAX_DEVICES = 1024
DEVICES_TIP = "How many GPUs train together, and how to start them on a cluster"
COUNT_DESCRIPTION = (
    "How many GPUs train together, one training process each (on a computer without a GPU: "
    "processes sharing its cores). More than 1 starts the trainer with PyTorch's torchrun"
)
LAUNCHER_DESCRIPTION = (
    "For a cluster: the torchrun command that starts the training on every machine, e.g. "
    "torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint head:29500 "
    "(run the same on each machine). Empty: torchrun on this computer"
)


class NERF_PG_devices(bpy.types.PropertyGroup):
    """``Scene.nerf.devices``: the scene's own choice; 0 / empty take the preferences'."""

    count: IntProperty(
        name="Devices",
        description=COUNT_DESCRIPTION + " (0: as in the add-on preferences)",
        min=0,
        max=MAX_DEVICES,
        default=0,
    )
    launcher: StringProperty(
        name="Cluster Command",
        description=LAUNCHER_DESCRIPTION + " (or as in the add-on preferences)",
        default="",
    )


def preference_properties() -> dict:
    """The same two settings for the add-on preferences (where the count starts at 1)."""
    return {
        "devices": IntProperty(
            name="Devices", description=COUNT_DESCRIPTION, min=1, max=MAX_DEVICES, default=1
        ),
        "torchrun_command": StringProperty(
            name="Cluster Command", description=LAUNCHER_DESCRIPTION, default=""
        ),
    }


def chosen(devices: NERF_PG_devices, prefs) -> tuple[int, tuple[str, ...]]:
    """(device count, cluster command as an argument list) for a training request: the scene's,
    else the preferences' (``prefs`` None: one device, no command). Raises ValueError for a
    command that does not split like a shell line."""
    count = devices.count or (prefs.devices if prefs is not None else 1)
    text = devices.launcher.strip() or (prefs.torchrun_command.strip() if prefs else "")
    try:
        return count, tuple(shlex.split(text))
    except ValueError as exc:
        raise ValueError(f"Cluster Command: {exc} in {text!r}") from exc


CLASSES = (NERF_PG_devices,)
