"""2x2, stride-2 max pooling for channels-last CPU training, through a small compiled kernel.

PyTorch's CPU max pooling stores an int64 index per output, and its backward zero-fills the
whole input-sized gradient before scattering into it. On the small CNNs of our users' studies
the pooled tensor is the first conv's output, the largest of the step, so those passes were a
large share of a step (measured in ``benchmarks/speed.py``: see the README). The kernel in
``kernels/maxpool2x2.c`` keeps a one-byte window position and writes each gradient once.

It is compiled on first use with the system's C compiler (well under a second) into the user
cache, keyed by the source, the compiler and this CPU, so nothing is built at install time. Where
no compiler works, or ``CNNLAB_NATIVE_KERNELS=0`` (this kernel only; ``CNNLAB_FAST=0`` turns off
the whole fast path), training uses PyTorch's kernel: the results are the same (tests compare
values, gradients and tie-breaking with it).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from cnnlab.data.cache import user_cache_dir
from cnnlab.fsutil import atomic_path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels") / "maxpool2x2.c"
ENV_SWITCH = "CNNLAB_NATIVE_KERNELS"
# The first that compiles wins: no -march=native or no OpenMP (a single-threaded kernel) elsewhere.
_FLAGS = [["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"], ["-O3"]]
_BYTES = {torch.float32: 4, torch.bfloat16: 2}


def _cpu_identity() -> str:
    """What -march=native compiled for: a cached library must not move to a different CPU."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    wanted = [line for line in lines if line.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(wanted)))


def _compilers() -> list[str]:
    named = [os.environ.get("CC", "")] + ["cc", "gcc", "clang"]
    return [path for path in dict.fromkeys(shutil.which(name) or "" for name in named if name) if path]


class _CompileFailed(Exception):
    pass


def _compile(folder: Path) -> Optional[Path]:
    source = SOURCE.read_bytes()
    for compiler in _compilers():
        for flags in _FLAGS:
            key = hashlib.sha256(b"\0".join([source, compiler.encode(), " ".join(flags).encode(),
                                             _cpu_identity().encode()])).hexdigest()[:16]
            library = folder / f"maxpool2x2-{key}.so"
            if library.exists():
                return library
            try:
                with atomic_path(library) as temporary:  # a failed compile must leave nothing behind
                    command = [compiler, *flags, "-shared", "-fPIC", "-o", str(temporary), str(SOURCE)]
                    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
                    if done.returncode != 0:
                        raise _CompileFailed(done.stderr[-2000:])
            except (OSError, subprocess.TimeoutExpired, _CompileFailed) as error:
                log.debug("compiling the max-pool kernel with %s %s failed: %s", compiler, flags, error)
                continue
            return library
    return None


@lru_cache(maxsize=None)
def _library() -> Optional[ctypes.CDLL]:
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if not sys.platform.startswith("linux") and sys.platform != "darwin":
        return None
    try:
        path = _compile(user_cache_dir() / "kernels")
        library = ctypes.CDLL(str(path)) if path else None
    except OSError as error:  # an unwritable cache, a library the loader refuses
        log.debug("the max-pool kernel is unavailable: %s", error)
        return None
    if library is None:
        log.info("no C compiler worked: max pooling uses PyTorch's kernel (a little slower)")
        return None
    size = ctypes.c_int64
    for name in ("cnnlab_maxpool2x2_forward", "cnnlab_maxpool2x2_backward"):
        function = getattr(library, name)
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, size, size, size, size, size,
                             ctypes.c_int]
        function.restype = ctypes.c_int
    return library


def available() -> bool:
    """Whether the compiled kernel is in use (it compiles on the first call)."""
    return _library() is not None


def applies(x: torch.Tensor, kernel: int, stride: int, padding: int) -> bool:
    """Whether ``max_pool_2x2`` computes this pooling: 2x2 windows, stride 2, no padding, a
    channels-last float32/bfloat16 CPU tensor at least 2x2."""
    return (kernel == 2 and stride == 2 and padding == 0 and x.device.type == "cpu" and x.dim() == 4
            and x.dtype in _BYTES and x.shape[2] >= 2 and x.shape[3] >= 2
            and x.is_contiguous(memory_format=torch.channels_last) and available())


# Whether the kernel beat PyTorch's pooling, per input shape, dtype and whether a backward follows.
# Which is faster depends on the channel count, the CPU and its compiler's vector code: measured
# fwd+bwd on one AVX-512 core, 32 images: at 28x28, 4 channels 143 us against PyTorch's 324, 12
# channels 343 against 600, 16 channels 447 against 648; at 14x14, 24 channels 241 against 214, 48
# channels 339 against 409 (before the kernel's few-channel paths, 4 and 12 channels lost: 593 and
# 1,375 us). So each shape is timed once, both ways, on this CPU, and the faster one kept. Both give
# the same values and gradients (tests/train/fast/test_max_pool.py), so the choice changes nothing else.
_FASTER: dict[tuple, bool] = {}
_TIMING_REPEATS = 3


def pays(x: torch.Tensor) -> bool:
    """Whether ``max_pool_2x2`` is faster than PyTorch's pooling for tensors like ``x`` (one that
    ``applies`` accepted) on this CPU: timed once per shape, then remembered."""
    backward = torch.is_grad_enabled() and x.requires_grad
    key = (tuple(x.shape), x.dtype, backward, torch.get_num_threads())
    if key not in _FASTER:
        _FASTER[key] = _time(x, max_pool_2x2, backward) < _time(x, lambda t: F.max_pool2d(t, 2, 2), backward)
    return _FASTER[key]


def _time(like: torch.Tensor, pool, backward: bool) -> float:
    # Its own generator: a run's dropout draws from the global one, whose stream this must not move.
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(like.shape, generator=generator).to(like.dtype).contiguous(memory_format=torch.channels_last)
    best = float("inf")
    with torch.enable_grad() if backward else torch.no_grad():
        for _ in range(_TIMING_REPEATS + 1):  # the first call warms up
            started = time.perf_counter()
            x = probe.detach().requires_grad_(backward)
            y = pool(x)
            if backward:
                y.backward(torch.ones_like(y))
            best = min(best, time.perf_counter() - started)
    return best


class _MaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, c, h, w = x.shape
        y = torch.empty((n, c, h // 2, w // 2), dtype=x.dtype, memory_format=torch.channels_last)
        where = torch.empty((n, h // 2, w // 2, c), dtype=torch.uint8)
        _library().cnnlab_maxpool2x2_forward(x.data_ptr(), y.data_ptr(), where.data_ptr(), n, h, w, c,
                                             _BYTES[x.dtype], torch.get_num_threads())
        ctx.save_for_backward(where)
        ctx.input_shape = (n, c, h, w)
        ctx.mark_non_differentiable(where)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (where,) = ctx.saved_tensors
        n, c, h, w = ctx.input_shape
        grad = grad.contiguous(memory_format=torch.channels_last)
        grad_input = torch.empty((n, c, h, w), dtype=grad.dtype, memory_format=torch.channels_last)
        _library().cnnlab_maxpool2x2_backward(grad.data_ptr(), where.data_ptr(), grad_input.data_ptr(), n, h, w, c,
                                              _BYTES[grad.dtype], torch.get_num_threads())
        return grad_input


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2, 2)`` for a tensor ``applies`` accepted."""
    if not torch.is_grad_enabled() or not x.requires_grad:
        return _MaxPool2x2.forward(_NoContext(), x)
    return _MaxPool2x2.apply(x)


class _NoContext:
    """Stands in for autograd's context when nothing will call backward (evaluation)."""

    def save_for_backward(self, *tensors: torch.Tensor) -> None:
        pass

    def mark_non_differentiable(self, *tensors: torch.Tensor) -> None:
        pass
