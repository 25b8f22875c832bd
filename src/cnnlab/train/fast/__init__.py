"""The fast path: everything cnnlab does only for speed, behind one switch.

The trainer asks one question, ``training_path(built, device, optimizer)``, and gets the forward
callable, tensor layout, evaluation batch size and optimizer options to train with. The fast
forward (``forward.py``) computes the built model's function in fewer memory passes, with 2x2 max
pooling through a compiled kernel (``max_pool.py``, ``kernels/maxpool2x2.c``) and float32 dense
layers through oneDNN (``dense.py``); ``policy.py`` holds the choices and the measurements behind
them. Environment switches:

- ``CNNLAB_FAST=0``: none of it; PyTorch's plain path (the results agree to float rounding).
  Read each time a trainer is built.
- ``CNNLAB_NATIVE_KERNELS=0``: only the compiled max-pool kernel off (PyTorch's pooling instead).
  Read when a process first pools.
"""

from __future__ import annotations

from cnnlab.train.fast.allocator import tune_allocator
from cnnlab.train.fast.forward import FastForward
from cnnlab.train.fast.max_pool import ENV_SWITCH as KERNEL_SWITCH
from cnnlab.train.fast.policy import (
    EVAL_ACTIVATION_BYTES, FAST_SWITCH, OPTIMIZER_OPTIONS, TrainingPath, enabled, evaluation_batch_size, has_conv,
    training_path,
)

__all__ = [
    "EVAL_ACTIVATION_BYTES", "FAST_SWITCH", "FastForward", "KERNEL_SWITCH", "OPTIMIZER_OPTIONS", "TrainingPath",
    "enabled", "evaluation_batch_size", "has_conv", "training_path", "tune_allocator",
]
