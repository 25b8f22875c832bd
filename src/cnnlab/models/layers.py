"""Torch modules for each layer kind, with Keras' padding and defaults.

Every layer becomes one module named like Keras would name it. A conv or dense layer with a
non-linear activation is a small ``nn.Sequential`` (padding, the conv/linear, the activation
module), so a forward hook on ``model.conv1`` sees the post-activation output, as Keras' layer
output is, and Captum's guided backprop finds the ``nn.ReLU`` modules it overrides.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from cnnlab.errors import ModelError
from cnnlab.models.shapes import LayerInfo
from cnnlab.models.variants import ResolvedLayer

# keras.activations.leaky_relu's default; torch's default slope is 0.01.
LEAKY_RELU_SLOPE = 0.2


def make_activation(name: str) -> nn.Module:
    """The activation as a module (never in-place: hooks keep the tensors they see)."""
    makers = {
        "relu": nn.ReLU,
        "elu": nn.ELU,  # alpha 1.0, as Keras
        "leaky_relu": lambda: nn.LeakyReLU(LEAKY_RELU_SLOPE),
        "gelu": nn.GELU,  # exact erf form, Keras' default (approximate=False)
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "linear": nn.Identity,
    }
    if name not in makers:
        raise ModelError(f"unknown activation '{name}'; known: {', '.join(makers)}")
    return makers[name]()


class MeanPool2d(nn.AvgPool2d):
    """Average pooling over explicitly padded input that divides by the real (unpadded) cells.

    Keras' 'same' average pooling can pad one more pixel at the bottom/right than at the top/
    left; ``nn.AvgPool2d`` pads symmetrically only, so the padding is done here and each
    window's sum is divided by its count of real cells (cached per input size).
    """

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int, int, int]):
        super().__init__(kernel_size, stride)
        self.pad = pad  # top, bottom, left, right
        self._counts: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.pad
        padded = F.pad(x, (left, right, top, bottom))
        sums = F.avg_pool2d(padded, self.kernel_size, self.stride, divisor_override=1)
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
        counts = self._counts.get(key)
        if counts is None:
            ones = F.pad(torch.ones((1, 1) + tuple(x.shape[-2:]), device=x.device, dtype=x.dtype),
                         (left, right, top, bottom))
            counts = F.avg_pool2d(ones, self.kernel_size, self.stride, divisor_override=1)
            self._counts[key] = counts
        return sums / counts

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pad(top,bottom,left,right)={self.pad}"


class Flatten(nn.Module):
    """Keras' Flatten: each image's values in height, width, channel order, (N, C, H, W) -> (N, H*W*C).

    The order is Keras' own, so a dense kernel means what it means in Keras. It is also what
    makes training fast: for a channels-last tensor (how the trainer runs convolutions) this
    order is the memory order, and the flatten is a view instead of a copy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        return x.flatten(1)


class GlobalAvgPool2d(nn.Module):
    """Keras' GlobalAveragePooling2D: the mean over height and width, (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _torch_pad(pad: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    top, bottom, left, right = pad
    return (left, right, top, bottom)


def _symmetric(pad: tuple[int, int, int, int]) -> bool:
    return pad[0] == pad[1] and pad[2] == pad[3]


def _with_activation(core: list[nn.Module], activation: str) -> nn.Module:
    modules = core + ([] if activation == "linear" else [make_activation(activation)])
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)


def make_module(item: ResolvedLayer, info: LayerInfo) -> nn.Module:
    """The module for one layer, given its inferred shapes and padding."""
    layer, kind = item.layer, item.kind
    if kind == "conv":
        symmetric = _symmetric(info.pad)
        conv = nn.Conv2d(info.input_shape[0], layer.filters, tuple(layer.kernel), stride=tuple(layer.stride),
                         padding=(info.pad[0], info.pad[2]) if symmetric else 0,
                         dilation=tuple(layer.dilation), bias=layer.bias)
        core = [conv] if symmetric else [nn.ZeroPad2d(_torch_pad(info.pad)), conv]
        return _with_activation(core, layer.activation)
    if kind == "dense":
        return _with_activation([nn.Linear(info.input_shape[0], layer.units, bias=layer.bias)], layer.activation)
    if kind == "maxpool":
        if _symmetric(info.pad):  # torch pads max pooling with -inf itself
            return nn.MaxPool2d(info.kernel, info.stride, padding=(info.pad[0], info.pad[2]))
        # Padding with -inf makes the padded cells lose every max; each 'same' window holds
        # at least one real cell, so no -inf reaches the output.
        pad = nn.ConstantPad2d(_torch_pad(info.pad), float("-inf"))
        return nn.Sequential(pad, nn.MaxPool2d(info.kernel, info.stride))
    if kind == "avgpool":
        if not any(info.pad):
            return nn.AvgPool2d(info.kernel, info.stride)
        if _symmetric(info.pad):
            return nn.AvgPool2d(info.kernel, info.stride, padding=(info.pad[0], info.pad[2]),
                                count_include_pad=False)
        return MeanPool2d(info.kernel, info.stride, info.pad)
    if kind == "globalavgpool":
        return GlobalAvgPool2d()
    if kind == "flatten":
        return Flatten()
    if kind == "dropout":
        return nn.Dropout(layer.rate)
    if kind == "batchnorm":
        # Keras: moving = momentum * moving + (1 - momentum) * batch; torch weighs the batch.
        norm = nn.BatchNorm2d if len(info.input_shape) == 3 else nn.BatchNorm1d
        return norm(info.input_shape[0], eps=layer.epsilon, momentum=1.0 - layer.momentum)
    if kind == "activation":
        return make_activation(layer.activation)
    raise ModelError(f"{item.name}: layer type '{kind}' cannot be built")


def core_module(module: nn.Module) -> nn.Module:
    """The module that does a layer's work (Conv2d, Linear, MaxPool2d, BatchNorm...), past padding."""
    if isinstance(module, nn.Sequential):
        for child in module:
            if not isinstance(child, (nn.ZeroPad2d, nn.ConstantPad2d)):
                return child
    return module
