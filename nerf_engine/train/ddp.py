"""Training on several processes (``torchrun``, see ``distributed.py``): what the trainer does
differently there, in one place.

- Every rank holds the whole model, wrapped in ``DistributedDataParallel`` (gloo on a CPU with
  ``device_ids=None``, NCCL with one GPU per ``LOCAL_RANK``), and trains ``batch_rays`` rays a step
  drawn from its own random stream (``distributed.rank_seed``). DDP averages the gradients, so
  a step trains on a **global batch of** ``batch_rays × world_size`` rays: the same step as one
  process with that batch. Learning-rate rule: ``lr`` is the rate of the global batch and is
  not scaled with the number of processes (Adam normalises the gradient's scale; the larger batch
  only lowers its noise). To reproduce a one-process run on N processes, divide ``batch_rays``
  by N; to train faster, keep it and let the global batch grow.
- The occupancy grid is a buffer DDP must not broadcast (that would overwrite a refresh): each
  rank measures a share of the cells and an ``all_reduce(MAX)`` joins them, so every rank keeps
  the same grid (``OccupancyGrid.update``).
- Rank 0 alone writes the run folder (events, previews, checkpoints, metrics) and speaks events;
  the others are silent (:class:`SilentLog`).
- Every stop is agreed (:func:`agree_stop`): a signal or cancel seen by any rank, and rank-wide
  elapsed time for the time budget, so all ranks leave the loop after the same step. A reported
  loss is the mean over the ranks, so the NaN guard rolls back on every rank together.
"""

from __future__ import annotations

import contextlib
import inspect

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data.events import event
from ..distributed import Group


def wrap(model: nn.Module, group: Group, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` for several processes (parameters broadcast from
    rank 0 now, gradients averaged in every backward); ``model`` itself for one."""
    if not group.active:
        return model
    # The occupancy grid is kept identical by its own refresh: no buffer broadcast per forward
    # (``forward_sync_buffers`` since torch 2.13, ``broadcast_buffers`` before).
    newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    buffers = {"forward_sync_buffers" if newer else "broadcast_buffers": False}
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, **buffers)


def pass_sync(net: nn.Module, last: bool):
    """Around one of a step's forward/backward passes: gradients are averaged over the ranks
    only in the ``last`` pass (the earlier ones accumulate locally, ``no_sync``)."""
    if last or not isinstance(net, DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()


def agree_stop(
    group: Group, device: torch.device, signalled: bool, cancelled: bool, elapsed: float
) -> tuple[str | None, float]:
    """Why every rank stops now (``"signal"``, ``"cancelled"`` or None) and the elapsed seconds
    all ranks use (the largest), so the time budget and the learning rate agree."""
    if group.active:
        flags = torch.tensor([signalled, cancelled, elapsed], dtype=torch.float64, device=device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        signalled, cancelled, elapsed = bool(flags[0]), bool(flags[1]), float(flags[2])
    return ("signal" if signalled else "cancelled" if cancelled else None), elapsed


class SilentLog:
    """The event log of ranks other than 0: events are built (and returned) but go nowhere."""

    def emit(self, kind: str, step: int, /, **fields) -> dict:
        return event(kind, step, **fields)

    def close(self) -> None:
        pass

    def __enter__(self) -> SilentLog:
        return self

    def __exit__(self, *exc) -> None:
        pass


class LostPeerError(RuntimeError):
    """Another process of the job stopped (killed, crashed or unreachable) mid-training."""


def lost_peer(exc: BaseException, group: Group, newest: str | None) -> LostPeerError | None:
    """The clear error for a collective that failed because a peer is gone, or None when
    ``exc`` is something else (or there is one process)."""
    if not group.active or isinstance(exc, ValueError | OSError):
        return None
    if not isinstance(exc, RuntimeError):  # (DistBackendError, gloo's "Connection closed")
        return None
    kept = f"the newest checkpoint {newest} is intact" if newest else "no checkpoint was written"
    return LostPeerError(
        f"rank {group.rank}: another training process of this job stopped ({exc}); {kept}. "
        "Look for its error above, then run the same torchrun command with --resume."
    )
