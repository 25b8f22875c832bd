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


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` ("cpu", "cuda") here, on any torch we accept."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch before 2.4 took no device
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


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


# CNNLAB_BF16=emulated: treat bf16 as emulated on a CPU that has bf16 instructions. With oneDNN's
# ONEDNN_MAX_CPU_ISA=AVX2 it reproduces an AVX2-only machine (slow bf16) on an AVX-512 one.
BF16_SWITCH = "CNNLAB_BF16"


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 autocast runs on bf16 hardware here (elsewhere it is emulated, and slower).

    A CPU counts as native when it has AVX-512 bf16 or AMX bf16 instructions, unless the
    environment variable ``CNNLAB_BF16=emulated`` says to treat bf16 as emulated anyway (read at
    each call); tests and benchmarks then shrink or skip their bf16 parts as they would on an
    AVX2-only CPU. Together with ``ONEDNN_MAX_CPU_ISA=AVX2`` it reproduces such a machine.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if os.environ.get(BF16_SWITCH, "").strip().lower() == "emulated":
        return False
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        flags = []
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
