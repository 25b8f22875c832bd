"""A model's memory need for training, estimated from its shapes before anything is allocated.

Weights, their gradients and the optimizer's state, plus the activations a training batch keeps
for the backward pass, and the largest pair of consecutive activations an evaluation batch
holds. A rough upper bound: enough to refuse a request that cannot fit (a million-filter
layer) with a message instead of an out-of-memory kill.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from cnnlab.errors import ModelError
from cnnlab.models.shapes import LayerInfo

BYTES = 4  # float32
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 2}
EVAL_BATCH = 1024


def training_bytes(layers: Sequence[LayerInfo], batch_size: int, optimizer: str = "adam") -> int:
    params = sum(info.trainable_params + info.non_trainable_params for info in layers)
    kept = sum(math.prod(info.output_shape) for info in layers)  # per image, kept for backward
    widest = max((math.prod(info.input_shape) + math.prod(info.output_shape) for info in layers), default=0)
    weights = params * BYTES * (2 + OPTIMIZER_STATES.get(optimizer, 2))
    train = batch_size * kept * BYTES * 2  # activations and their gradients
    evaluate = EVAL_BATCH * widest * BYTES
    return weights + max(train, evaluate)


def available_bytes() -> Optional[int]:
    """Memory this machine can still give (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(layers: Sequence[LayerInfo], batch_size: int, optimizer: str = "adam",
                 available: Optional[int] = None) -> None:
    """Refuse a model whose training would need more memory than the machine has."""
    need = training_bytes(layers, batch_size, optimizer)
    have = available if available is not None else available_bytes()
    if have is not None and need > 0.9 * have:
        widest = max(layers, key=lambda info: math.prod(info.output_shape))
        raise ModelError(
            f"training this model needs about {need / 2**30:.1f} GiB of memory (batch {batch_size}; its largest "
            f"layer, {widest.name}, outputs {math.prod(widest.output_shape):,} values per image) and this machine has "
            f"{have / 2**30:.1f} GiB available; make the layers smaller or lower train.batch_size"
        )
