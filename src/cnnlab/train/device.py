"""Device and thread selection, and the environment a run records."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, Optional

import torch

from cnnlab.errors import TrainError


def select_device(requested: str = "auto") -> torch.device:
    """CUDA when present (or asked for), else the CPU."""
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainError("train.device is 'cuda' but PyTorch sees no CUDA device; use 'auto' or 'cpu'")
        return torch.device("cuda")
    return torch.device("cpu")


def cpu_count() -> int:
    """Cores this process may use (respects affinity masks and containers)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Below this much arithmetic per training step a second thread costs more in hand-offs than it
# computes: on 2 cores a digits-sized model trained 1.4x faster on one thread, study C's MNIST
# net (86 MFLOP a step) equally fast on one or two, A2 (1.2 GFLOP) 1.4x faster on two.
SMALL_STEP_FLOPS = 100e6


def threads_for(step_flops: float) -> int:
    """Threads for one run alone on this machine: one for tiny steps, else every core."""
    return 1 if step_flops < SMALL_STEP_FLOPS else cpu_count()


def configure_threads(threads: Optional[int]) -> int:
    """Use ``threads`` CPU threads (default: every core this process may use)."""
    count = threads or cpu_count()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 autocast runs on bf16 hardware here (elsewhere it is emulated, and slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        flags = []
    return "avx512_bf16" in flags or "amx_bf16" in flags


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_allocator_tuned = False


def tune_allocator() -> bool:
    """Keep freed activation buffers in the heap instead of handing them back to the kernel.

    glibc serves blocks above its mmap threshold with fresh mmap()s and unmaps them on free, so
    every training step page-faults its multi-megabyte activations and gradients in again: on
    CIFAR-sized nets that was 30-35 % of a step (measured with benchmarks/speed.py). Raising the
    mmap threshold to glibc's maximum (32 MiB) and the trim threshold keeps that memory mapped
    and reused. Peak memory is unchanged; memory is returned when the process exits. Does
    nothing (and returns False) where the C library is not glibc.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    except (OSError, AttributeError):
        return False
    _allocator_tuned = ok
    return ok


def environment(device: torch.device) -> dict[str, Any]:
    """What a result depends on besides its config: versions, machine, device, threads."""
    import numpy

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cores": cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
