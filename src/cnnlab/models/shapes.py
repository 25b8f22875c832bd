"""Shape inference and parameter counts with Keras semantics, before any tensor is allocated.

Everything here is arithmetic on the resolved layer list, so an impossible architecture (an
empty output, a 10**12-parameter typo) is refused in microseconds with a message that names
the layer, and the summary, explain and receptive-field code can read shapes and paddings
without re-deriving them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from cnnlab.errors import ModelError
from cnnlab.models.variants import ResolvedLayer

# A model past these is a typo, not an experiment: refusing it beats an out-of-memory crash
# (a float32 tensor of 1e9 elements is 4 GB, and the optimizer keeps two more of it).
MAX_TOTAL_PARAMS = 2_000_000_000
MAX_TENSOR_ELEMENTS = 1_000_000_000

KERAS_TYPES = {
    "conv": "Conv2D",
    "maxpool": "MaxPooling2D",
    "avgpool": "AveragePooling2D",
    "globalavgpool": "GlobalAveragePooling2D",
    "flatten": "Flatten",
    "dense": "Dense",
    "dropout": "Dropout",
    "batchnorm": "BatchNormalization",
    "activation": "Activation",
}

Pair = tuple[int, int]


@dataclass(frozen=True)
class LayerInfo:
    """What one built layer is: shapes (PyTorch order, no batch), parameters and geometry.

    ``kernel``/``stride``/``dilation``/``pad`` (top, bottom, left, right) are set for conv and
    pooling layers (global average pooling as the equivalent valid pool over the whole map) so
    receptive fields can be traced without re-deriving Keras' padding.
    """

    name: str
    kind: str
    keras_type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    trainable_params: int
    non_trainable_params: int
    kernel: Optional[Pair] = None
    stride: Optional[Pair] = None
    dilation: Optional[Pair] = None
    pad: Optional[tuple[int, int, int, int]] = None
    l1: float = 0.0
    l2: float = 0.0
    activation: Optional[str] = None  # conv/dense/activation layers: the activation applied last

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding (before, after): the odd pixel goes after (bottom/right)."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int, int]:
    """Output length and (pad before, pad after) along one axis; the length may be < 1."""
    before, after = same_padding(size, kernel, stride, dilation) if padding == "same" else (0, 0)
    effective = (kernel - 1) * dilation + 1
    return (size + before + after - effective) // stride + 1, before, after


def _require_image(info_name: str, shape: tuple[int, ...], previous: str) -> None:
    if len(shape) != 3:
        raise ModelError(
            f"{info_name} needs an image input (channels, height, width) but gets {shape} from "
            f"{previous}; convolution and pooling layers must come before flatten/globalavgpool"
        )


def _window(resolved: ResolvedLayer, shape: tuple[int, ...], kernel: Pair, stride: Pair,
            dilation: Pair, padding: str) -> tuple[int, int, tuple[int, int, int, int]]:
    """Output height, width and padding of a sliding window; a ModelError when it is empty."""
    height, top, bottom = output_size(shape[1], kernel[0], stride[0], dilation[0], padding)
    width, left, right = output_size(shape[2], kernel[1], stride[1], dilation[1], padding)
    if height < 1 or width < 1:
        effective = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
        what = "kernel" if resolved.kind == "conv" else "pool window"
        dil = f" with dilation {dilation[0]}x{dilation[1]}" if dilation != (1, 1) else ""
        raise ModelError(
            f"{resolved.name} would have an empty output: its {kernel[0]}x{kernel[1]} {what}{dil} "
            f"covers {effective[0]}x{effective[1]} pixels, but with '{padding}' padding its input "
            f"{shape} (channels, height, width) is only {shape[1]}x{shape[2]}; use padding: same, a "
            f"smaller {what}, or fewer pooling/strided layers before it"
        )
    return height, width, (top, bottom, left, right)


def infer_layers(resolved: Sequence[ResolvedLayer], input_shape: Sequence[int]) -> list[LayerInfo]:
    """Shapes, paddings and parameter counts of every layer; refuses empty and absurd models."""
    shape = check_input_shape(input_shape)
    infos: list[LayerInfo] = []
    total = 0
    previous = "the input"
    for item in resolved:
        info = _infer_one(item, shape, previous)
        for elements, tensor in _weight_tensors(item, info):
            if elements > MAX_TENSOR_ELEMENTS:
                raise ModelError(
                    f"{item.name} would need a {tensor} of {elements:,} elements (input {info.input_shape}, "
                    f"output {info.output_shape}); more than {MAX_TENSOR_ELEMENTS:,} is refused before "
                    f"allocating it. Reduce the units/filters or add pooling before it"
                )
        total += info.params
        if total > MAX_TOTAL_PARAMS:
            raise ModelError(
                f"the model would have at least {total:,} parameters (reached at {item.name}); more "
                f"than {MAX_TOTAL_PARAMS:,} is refused before allocating anything"
            )
        infos.append(info)
        shape = info.output_shape
        previous = item.name
    return infos


def check_shapes(resolved: Sequence[ResolvedLayer], input_shape: Sequence[int],
                 num_classes: Optional[int] = None) -> list[LayerInfo]:
    """Every check ``build_model`` makes, without allocating: shapes, sizes and classifier units.

    Lets the CLI check a whole study (every architecture x variant x sweep point) against a
    dataset's known shape before anything is downloaded or trained.
    """
    infos = infer_layers(resolved, input_shape)
    check_classifier(infos, num_classes)
    return infos


def check_classifier(infos: Sequence[LayerInfo], num_classes: Optional[int]) -> None:
    """The classifier (the last dense layer) must have one unit per class."""
    if num_classes is None:
        return
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"the number of classes must be a positive integer; got {num_classes!r}")
    denses = [info for info in infos if info.kind == "dense"]
    if not denses:
        raise ModelError("the architecture has no dense layer; the last dense layer is the classifier")
    classifier = denses[-1]
    if classifier.output_shape[0] != num_classes:
        raise ModelError(
            f"the classifier {classifier.name} (the last dense layer) has {classifier.output_shape[0]} units "
            f"but the dataset has {num_classes} classes; set its units to {num_classes}"
        )


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """The input shape as a (C, H, W) tuple of positive ints, or a ModelError saying what it got."""
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ModelError(
            f"the input shape must be (channels, height, width) with positive integers; got {input_shape!r}"
        )
    return shape  # type: ignore[return-value]


def _weight_tensors(item: ResolvedLayer, info: LayerInfo) -> list[tuple[int, str]]:
    if item.kind == "conv":
        kernel_elements = info.kernel[0] * info.kernel[1] * info.input_shape[0] * info.output_shape[0]
        return [(kernel_elements, "kernel")]
    if item.kind == "dense":
        return [(info.input_shape[0] * info.output_shape[0], "weight matrix")]
    return []


def _infer_one(item: ResolvedLayer, shape: tuple[int, ...], previous: str) -> LayerInfo:
    layer, kind = item.layer, item.kind
    common = {"name": item.name, "kind": kind, "keras_type": KERAS_TYPES[kind], "input_shape": shape,
              "l1": item.l1, "l2": item.l2}
    if kind == "conv":
        _require_image(item.name, shape, previous)
        height, width, pad = _window(item, shape, layer.kernel, layer.stride, layer.dilation, layer.padding)
        kernel_params = layer.kernel[0] * layer.kernel[1] * shape[0] * layer.filters
        return LayerInfo(**common, output_shape=(layer.filters, height, width),
                         trainable_params=kernel_params + (layer.filters if layer.bias else 0),
                         non_trainable_params=0, kernel=tuple(layer.kernel), stride=tuple(layer.stride),
                         dilation=tuple(layer.dilation), pad=pad, activation=layer.activation)
    if kind in ("maxpool", "avgpool"):
        _require_image(item.name, shape, previous)
        stride = tuple(layer.stride) if layer.stride is not None else tuple(layer.size)
        height, width, pad = _window(item, shape, layer.size, stride, (1, 1), layer.padding)
        return LayerInfo(**common, output_shape=(shape[0], height, width), trainable_params=0,
                         non_trainable_params=0, kernel=tuple(layer.size), stride=stride,
                         dilation=(1, 1), pad=pad)
    if kind == "globalavgpool":
        _require_image(item.name, shape, previous)
        return LayerInfo(**common, output_shape=(shape[0],), trainable_params=0, non_trainable_params=0,
                         kernel=(shape[1], shape[2]), stride=(shape[1], shape[2]), dilation=(1, 1),
                         pad=(0, 0, 0, 0))
    if kind == "flatten":
        return LayerInfo(**common, output_shape=(math.prod(shape),), trainable_params=0, non_trainable_params=0)
    if kind == "dense":
        if len(shape) != 1:
            raise ModelError(
                f"{item.name} needs a flat input (features,) but gets {shape} (channels, height, width) "
                f"from {previous}; add flatten or globalavgpool before it"
            )
        weights = shape[0] * layer.units
        return LayerInfo(**common, output_shape=(layer.units,),
                         trainable_params=weights + (layer.units if layer.bias else 0),
                         non_trainable_params=0, activation=layer.activation)
    if kind == "batchnorm":
        channels = shape[0]  # Keras normalizes the channel axis; torch's channel axis is 1
        return LayerInfo(**common, output_shape=shape, trainable_params=2 * channels,
                         non_trainable_params=2 * channels)
    if kind == "activation":
        return LayerInfo(**common, output_shape=shape, trainable_params=0, non_trainable_params=0,
                         activation=layer.activation)
    if kind == "dropout":
        return LayerInfo(**common, output_shape=shape, trainable_params=0, non_trainable_params=0)
    raise ModelError(f"{item.name}: layer type '{kind}' cannot be built")  # a new spec type without a builder
