"""Process and hardware setup: device choice, mixed precision, the C allocator.

Every entry point (CLI, trainer, renderer, benchmarks) calls :func:`configure_process` first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import sys

import torch

from .config import TrainConfig

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit systems


@functools.cache
def configure_allocator() -> bool:
    """Keep freed memory in the process instead of handing it back to the OS after every step.

    A training step allocates and frees the same activations every time. By default glibc serves
    blocks above a (dynamic) threshold with fresh ``mmap`` calls and trims the heap after ``free``,
    so every step faults all that memory in again: measured here, half the CPU time of a step went
    to the kernel. Raising the mmap threshold to its 32 MB ceiling and never trimming keeps the
    heap; the engine keeps its per-pass activation tensors under that size (``rays_per_pass``), and
    the rare larger block still gets its own mapping, which avoids the heap fragmentation (and
    doubled peak memory, also measured) of switching mmap off altogether.
    Linux/glibc only; returns whether it applied. Opt out with NERF_SYSTEM_MALLOC=1.
    """
    if sys.platform != "linux" or os.environ.get("NERF_SYSTEM_MALLOC") == "1":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # int max: never trim
    ok &= libc.mallopt(_M_TOP_PAD, 64 * 2**20)
    return bool(ok)


def configure_process() -> None:
    """Allocator and thread settings for an engine process (every entry point calls this; the
    trainer then applies its config's ``threads``)."""
    configure_allocator()
    configure_threads()


def configure_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads: ``threads``, else ``$NERF_THREADS``, else torch's default
    (one per physical core, which the MLP's matrix products use well from 2 to 64 cores).
    Fewer leave cores to Blender while it stays open beside a training run. Returns the count."""
    wanted = threads or int(os.environ.get("NERF_THREADS", "0") or 0)
    if wanted < 0:
        raise ValueError(f"threads must be 0 (automatic) or positive, not {wanted}")
    if wanted and wanted != torch.get_num_threads():
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an unavailable explicit choice fails."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' requested but torch sees no CUDA GPU; use --device auto or cpu."
        )
    if name == "mps" and not _mps_available():
        raise ValueError(
            "device 'mps' requested but Apple MPS is not available; use --device auto or cpu."
        )
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or mps.")
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (AVX512-BF16 / AMX on x86, BF16 on Arm)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the MLPs, or None for full float32.

    ``auto``: bf16 on CUDA GPUs that support it and on CPUs with native bf16; fp32 elsewhere
    (MPS included). ``bf16`` forces it; ``off`` disables it.
    """
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return None


def enable_tf32(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


ACTIVATION_BUDGET_BYTES = 32 * 2**20


def rays_per_pass(config: TrainConfig, device: torch.device, *, training: bool) -> int:
    """How many rays go through the networks at once.

    On CUDA a whole training batch (the GPU has the memory and wants big kernels). On a CPU or MPS
    each activation tensor is kept near 32 MB: a paper-size batch in one pass needs over 12 GB, and
    glibc serves blocks that large with fresh mmaps whose page faults cost as much as the maths.
    """
    explicit = config.rays_per_pass if training else config.chunk_rays
    if explicit > 0:
        return explicit
    if device.type == "cuda":
        return config.batch_rays if training else max(config.batch_rays, 8192)
    samples = config.sampling.n_coarse + max(config.sampling.n_fine, 0)
    per_ray = samples * config.model.width * 4
    return int(max(64, min(ACTIVATION_BUDGET_BYTES // per_ray, config.batch_rays * 4)))


def new_generator(device: torch.device, seed: int) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
