"""What the trainer runs for speed, decided in one place: forward, memory layout, evaluation
batches, optimizer kernels and the heap; and the switch that turns all of it off."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from cnnlab.models.build import BuiltModel
from cnnlab.train.fast.allocator import tune_allocator
from cnnlab.train.fast.forward import FastForward

# CNNLAB_FAST=0 trains on PyTorch's plain path: the model's own modules in NCHW, PyTorch's default
# optimizer kernels, the heap left alone. Results agree to float rounding (tests compare them).
FAST_SWITCH = "CNNLAB_FAST"
_OFF = ("0", "false", "no", "off")

# PyTorch's default on the CPU updates one tensor at a time in several passes; the fused kernels
# update each parameter in one pass. Adam on A2's 1.4M parameters: 5.8 ms a step default, 1.9 ms
# with foreach, 0.4 ms fused (benchmarks/speed.py; 2 cores). Same arithmetic, same state_dict.
# RMSprop has no fused kernel here, so it takes foreach.
OPTIMIZER_OPTIONS: dict[str, dict[str, Any]] = {
    "sgd": {"fused": True}, "adam": {"fused": True}, "adamw": {"fused": True}, "rmsprop": {"foreach": True},
}

# Evaluation batches are as large as this budget for the largest activation allows (32 to 1,024
# images). Bigger is not faster once that activation leaves the CPU's last-level cache: measured
# on a 32 MB L3 (benchmarks/speed.py's models, 2 threads), A2 evaluated 16,700 img/s at batch 64
# and 7,800 at 291 (a 64 MB budget), B2+BN 8,200 at 32 and 3,800 at 291; tiny nets (C's MNIST net,
# 47,000 img/s at 1,024) keep their big batches.
EVAL_ACTIVATION_BYTES = 16 * 1024 * 1024


def enabled() -> bool:
    """Whether the fast path is on (``CNNLAB_FAST``, read at each call; on unless 0/false/no/off)."""
    return os.environ.get(FAST_SWITCH, "1").strip().lower() not in _OFF


def evaluation_batch_size(built: BuiltModel) -> int:
    """Images per no-grad evaluation batch for this model (32 to 1,024)."""
    largest = max((math.prod(info.output_shape) for info in built.layers), default=1) * 4
    return int(min(1024, max(32, EVAL_ACTIVATION_BYTES // largest)))


def has_conv(built: BuiltModel) -> bool:
    """Whether the model has a convolution (and so gains from channels-last tensors)."""
    return any(info.kind == "conv" for info in built.layers)


@dataclass
class TrainingPath:
    """How the trainer runs one model: see ``training_path``."""

    forward: Callable[[torch.Tensor], torch.Tensor]  # an nn.Module sharing the model's parameters
    memory_format: torch.memory_format  # of the model's weights and of every input batch
    eval_batch_size: int
    optimizer_options: dict[str, Any] = field(default_factory=dict)  # keyword arguments for the optimizer


def training_path(built: BuiltModel, device: torch.device, optimizer: str) -> TrainingPath:
    """The forward callable, tensor layout, evaluation batch and optimizer options for training
    ``built`` on ``device`` with ``optimizer``: the fast ones, or PyTorch's plain ones when
    ``CNNLAB_FAST=0``. The evaluation batch is sized by the activation budget either way (it also
    bounds evaluation's memory)."""
    batch = evaluation_batch_size(built)
    if not enabled():
        return TrainingPath(built.module, torch.contiguous_format, batch)
    if device.type == "cpu":
        tune_allocator()
    # Convolutions run in channels-last (NHWC), oneDNN's native layout; flatten is then a view.
    memory_format = torch.channels_last if has_conv(built) else torch.contiguous_format
    return TrainingPath(FastForward(built), memory_format, batch, dict(OPTIMIZER_OPTIONS.get(optimizer, {})))
