"""Whether the seeds of a configuration train faster stacked than one by one, decided in one place.

On a CPU, stacking pays where a step is small: the members' layers become one grouped
convolution and one batched product instead of S small ones, and per-operation overhead and
poorly filled vector units are paid once. Where a step is large, oneDNN's grouped convolution is
slower than S plain ones and separate runs win. Measured with ``benchmarks/stacked.py`` (2 cores,
AVX-512, 3 members, one single-threaded worker per core either way; member-images per second,
stacked / separate): quickstart small 2.2x, quickstart deeper 1.6x, study C's MNIST net 1.5x
(65-85 MFLOP a training step), against A2 0.4x and A3 0.6x (1.2 and 3.4 GFLOP a step).

On a GPU one small CNN leaves the device mostly idle, so the design (docs/stacked_seeds.md)
stacks there whatever the size; that is expected, not yet measured by this project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cnnlab.train.fast import enabled as fast_enabled

StackMode = Literal["auto", "always", "never"]
STACK_MODES: tuple[str, ...] = ("auto", "always", "never")

# Largest training step (multiply-adds x 2 x 3, forward and backward, for the batch) that a CPU
# trains faster stacked; see the module docstring for the measurements either side.
CPU_MAX_STEP_FLOPS = 300e6


@dataclass(frozen=True)
class StackChoice:
    stack: bool
    reason: str  # in words, for the progress display


def choose(mode: str, members: int, step_flops: float, device_type: str, unstackable: str | None = None) -> StackChoice:
    """Whether ``members`` seeds of one configuration train stacked: ``mode`` (the spec's
    ``train.stack`` or ``cnnlab run --stack``), the model's training FLOPs per step (``step_flops``:
    per image x batch) and the device. ``unstackable``: why the model cannot stack, if it cannot."""
    if members < 2:
        return StackChoice(False, "one seed")
    if mode == "never":
        return StackChoice(False, "stack: never")
    if unstackable:
        return StackChoice(False, unstackable)
    if mode == "always":
        return StackChoice(True, "stack: always")
    if not fast_enabled():
        return StackChoice(False, "CNNLAB_FAST=0")
    if device_type == "cuda":
        return StackChoice(True, "a GPU")
    if step_flops <= CPU_MAX_STEP_FLOPS:
        return StackChoice(True, f"{step_flops / 1e6:,.0f} MFLOP a step")
    return StackChoice(False, f"{step_flops / 1e9:,.1f} GFLOP a step: faster as separate runs on a CPU")
