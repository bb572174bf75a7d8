"""Several processes, one job: the ranks that ``torchrun`` starts, and the few collectives the
engine needs (``torch.distributed``; gloo on a CPU, NCCL on CUDA GPUs).

We write no cluster runtime of our own. ``torchrun`` (``python -m torch.distributed.run``) starts
the processes on one node or many, sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` (rendezvous) and restarts them on failure
(``TORCHELASTIC_RESTART_COUNT``); :func:`process_group` reads that environment and joins the
group (``init_method="env://"``). Without torchrun (or with one process) everything here is a
no-op, so the single-process engine is unchanged.

Devices: on CUDA each process drives the GPU of its ``LOCAL_RANK`` with NCCL; on a CPU the ranks
use gloo and split the physical cores (:func:`cpu_threads`). Apple MPS has no collective backend
and is refused with advice.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

# How long a collective waits for the other ranks before it fails (then torchrun stops or, with
# --max-restarts, restarts the job): a rank that renders a preview keeps the others waiting.
# $NERF_DDP_TIMEOUT_S overrides it (seconds).
TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Group:
    """This process's place among the processes of one job (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the process's index on its node (its GPU on CUDA)
    local_world_size: int = 1  # processes on this node (they share its CPU cores)
    restart_count: int = 0  # torchrun's elastic restarts of this job so far

    @property
    def active(self) -> bool:
        """More than one process: collectives run."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run folder and speaks the events."""
        return self.rank == 0


SINGLE = Group()


def launched(environ: dict | None = None) -> Group:
    """The :class:`Group` torchrun's environment variables describe (``SINGLE`` without them).
    Raises ValueError naming the variable when one is not a valid number."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return SINGLE
    values = {}
    for name, key, default in (
        ("rank", "RANK", 0),
        ("world_size", "WORLD_SIZE", 1),
        ("local_rank", "LOCAL_RANK", 0),
        ("local_world_size", "LOCAL_WORLD_SIZE", 1),
        ("restart_count", "TORCHELASTIC_RESTART_COUNT", 0),
    ):
        text = env.get(key, str(default))
        try:
            values[name] = int(text)
        except ValueError:
            raise ValueError(
                f"environment variable {key}={text!r} is not a number; start the engine with "
                "torchrun (python -m torch.distributed.run), which sets it."
            ) from None
    group = Group(**values)
    if not 0 <= group.rank < group.world_size:
        raise ValueError(f"RANK={group.rank} is outside WORLD_SIZE={group.world_size}.")
    return group


def rank_device(device: torch.device, group: Group) -> torch.device:
    """The device of this rank: on CUDA the GPU of its ``LOCAL_RANK`` (which must exist)."""
    if not group.active or device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if group.local_rank >= count:
        raise ValueError(
            f"LOCAL_RANK {group.local_rank} has no GPU: this node has {count}; start at most "
            f"{count} processes per node (torchrun --nproc-per-node {count})."
        )
    return torch.device("cuda", group.local_rank)


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[tuple[Group, torch.device]]:
    """Join the job's process group for the block (NCCL for a CUDA ``device``, gloo for the
    CPU) and yield ``(group, this rank's device)``; leave it afterwards. One process: a no-op.
    Raises ValueError for a device no backend serves (MPS) or a bad torchrun environment."""
    group = launched()
    if not group.active or dist.is_initialized():
        yield group, rank_device(device, group)
        return
    if device.type == "mps":
        raise ValueError(
            "several processes on Apple MPS: torch.distributed has no backend for it; train "
            "with one process, or use --device cpu."
        )
    device = rank_device(device, group)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    # torchrun's rendezvous store outlives an elastic restart: keys of this attempt get a prefix
    # of their own, or a restarted rank may read a dead rank's address and wait for it forever
    timeout = collective_timeout()
    store, rank, world_size = next(dist.rendezvous("env://", timeout=timeout))
    store = dist.PrefixStore(f"nerf_engine/attempt_{group.restart_count}", store)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
    try:
        yield group, device
    finally:
        # A DistributedDataParallel wrapper holds the gloo/NCCL group and its worker threads:
        # one left for the interpreter's exit to free (a reference cycle is enough) aborts the
        # process ("terminate called without an active exception"). Collect what is already
        # garbage; wrappers still in use must be released first (``Trainer.close``).
        gc.collect()
        with contextlib.suppress(Exception):  # (after a lost peer the group may be broken)
            dist.destroy_process_group()


def collective_timeout() -> datetime.timedelta:
    """:data:`TIMEOUT_S`, or ``$NERF_DDP_TIMEOUT_S``; ValueError names a bad value."""
    text = os.environ.get("NERF_DDP_TIMEOUT_S", "")
    try:
        seconds = float(text) if text else TIMEOUT_S
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"NERF_DDP_TIMEOUT_S={text!r}: give a positive number of seconds.")
    return datetime.timedelta(seconds=seconds)


def cpu_threads(group: Group, device: torch.device) -> int:
    """Intra-op threads for one rank on a CPU: its share of the node's physical cores (torchrun
    sets ``OMP_NUM_THREADS=1``, which would leave all but one core idle); 0 (keep the default)
    for one process, a GPU, or an explicit ``NERF_THREADS``."""
    if not group.active or device.type != "cpu" or os.environ.get("NERF_THREADS"):
        return 0
    return max(1, physical_cores() // max(group.local_world_size, 1))


def physical_cores() -> int:
    """Physical CPU cores this process may run on (hyper-threads counted once); Linux reads
    ``/proc/cpuinfo``, elsewhere (or when that fails) the logical count."""
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    logical = logical or os.cpu_count() or 1
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            blocks = handle.read().split("\n\n")
    except OSError:
        return logical
    cores = set()
    for block in blocks:
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return min(len(cores), logical) if cores else logical


def rank_seed(seed: int, group: Group, step: int = 0) -> int:
    """The seed of this rank's random stream: ``seed`` itself for one process (so a single
    process is unchanged), else the rank's child of ``numpy.random.SeedSequence([seed, step])``
    — statistically independent streams, one per rank (``step``: where a resumed run starts)."""
    if not group.active:
        return seed
    child = np.random.SeedSequence([seed, step]).spawn(group.world_size)[group.rank]
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def share(n: int, group: Group) -> slice:
    """This rank's contiguous share of ``n`` items (sizes differ by at most one)."""
    base, extra = divmod(n, group.world_size)
    start = group.rank * base + min(group.rank, extra)
    return slice(start, start + base + (group.rank < extra))


def all_max(group: Group) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function that replaces a tensor by its elementwise maximum over the ranks (in place,
    returned); None for one process."""
    if not group.active:
        return None

    def combine(tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    return combine


def all_mean(values: torch.Tensor, group: Group) -> torch.Tensor:
    """The mean of ``values`` (any shape) over the ranks; itself for one process."""
    if not group.active:
        return values
    total = values.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / group.world_size


def gather(obj, group: Group) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank; ``[obj]`` alone."""
    if not group.active:
        return [obj]
    found = [None] * group.world_size
    dist.all_gather_object(found, obj)
    return found


def barrier(group: Group) -> None:
    if group.active:
        dist.barrier()
