"""What training a model costs in arithmetic, for choosing threads and workers and for benchmarks."""

from __future__ import annotations

from typing import Sequence

from cnnlab.models.shapes import LayerInfo


def training_flops(layers: Sequence[LayerInfo]) -> float:
    """Floating-point operations of one training step, per image.

    Convolutions and dense layers only (everything else is memory traffic, not arithmetic):
    the forward multiply-adds times two, times three for the forward pass and the input and
    weight gradients.
    """
    total = 0
    for info in layers:
        if info.kind == "conv":
            out_c, out_h, out_w = info.output_shape
            total += 2 * out_c * out_h * out_w * info.input_shape[0] * info.kernel[0] * info.kernel[1]
        elif info.kind == "dense":
            total += 2 * info.input_shape[0] * info.output_shape[0]
    return 3.0 * total
