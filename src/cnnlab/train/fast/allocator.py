"""glibc heap settings that keep training's large buffers mapped between steps (CPU only)."""

from __future__ import annotations

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
