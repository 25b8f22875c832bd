"""A faster way to run a built model's forward pass, for training and evaluation only.

The built model stays a plain ``nn.Sequential`` of standard, non-in-place modules, because
hooks, Captum and the explain figures need exactly that. The trainer runs the same parameters
through ``FastForward`` instead, which computes the same function with fewer passes over memory
(each choice was measured with ``benchmarks/speed.py``):

- a monotonic activation directly followed by max pooling is applied after the pooling
  (``max(act(x)) == act(max(x))``), on a quarter of the values;
- the activation of a conv or dense layer (and one directly after batch norm or pooling)
  runs in place: none of those layers' backward passes reads its output;
- float32 dense layers on the CPU multiply through oneDNN rather than MKL (``dense.py``);
- 2x2 max pooling of channels-last CPU tensors runs a small compiled kernel (``max_pool.py``)
  that stores one byte per output and writes each gradient once;
- with ``channels_last`` the convolutions run in oneDNN's native NHWC layout, and flatten,
  being in Keras' height-width-channel order, is then a free view rather than a copy.

Everything else (batch norm, dropout, padding, average pooling) calls the model's own module,
so train/eval mode and running statistics stay shared with the model.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from cnnlab.models.build import BuiltModel
from cnnlab.models.layers import LEAKY_RELU_SLOPE
from cnnlab.train.fast import dense, max_pool

# Non-decreasing activations commute with max pooling. GELU is not monotonic; it never moves.
_MONOTONIC = {"relu", "leaky_relu", "elu", "tanh", "sigmoid", "linear"}

_IN_PLACE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu_,
    "leaky_relu": lambda x: F.leaky_relu_(x, LEAKY_RELU_SLOPE),
    "elu": lambda x: F.elu_(x),
    "tanh": torch.tanh_,
    "sigmoid": torch.sigmoid_,
    "linear": lambda x: x,
}

# Layers whose backward pass does not read their output, so their output may be overwritten.
_OUTPUT_FREE = {"batchnorm", "maxpool", "avgpool", "globalavgpool"}

Step = Callable[[torch.Tensor], torch.Tensor]


def _activation_of(item_kind: str, layer) -> str:
    return getattr(layer, "activation", "linear") if item_kind in ("conv", "dense", "activation") else "linear"


def _split(module: nn.Module) -> tuple[list[nn.Module], bool]:
    """A conv/dense layer's modules without its activation module, and whether it had one."""
    if isinstance(module, nn.Sequential):
        children = list(module)
        kinds = (nn.Conv2d, nn.Linear, nn.ZeroPad2d)
        if children and not isinstance(children[-1], kinds):
            return children[:-1], True
        return children, False
    return [module], False


def _chain(modules: list[nn.Module]) -> Step:
    modules = [dense.dense(m) if isinstance(m, nn.Linear) else m for m in modules]
    if len(modules) == 1:
        return modules[0]

    def run(x: torch.Tensor) -> torch.Tensor:
        for module in modules:
            x = module(x)
        return x

    return run


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pooling(module: nn.Module) -> Step:
    """A max-pool module's step: the compiled 2x2 kernel where it applies, else the module."""
    if not (isinstance(module, nn.MaxPool2d) and _pair(module.kernel_size) == (2, 2) and _pair(module.stride) == (2, 2)
            and _pair(module.padding) == (0, 0) and _pair(module.dilation) == (1, 1) and not module.ceil_mode):
        return module

    def pool(x: torch.Tensor) -> torch.Tensor:
        return max_pool.max_pool_2x2(x) if max_pool.applies(x, 2, 2, 0) and max_pool.pays(x) else module(x)

    return pool


def _then(first: Step, activation: Callable[[torch.Tensor], torch.Tensor]) -> Step:
    return lambda x: activation(first(x))


class FastForward(nn.Module):
    """``built.module``'s function, computed in fewer memory passes (see the module docstring)."""

    def __init__(self, built: BuiltModel):
        super().__init__()
        self.model = built.module  # registered, so .to() and .train() reach the shared modules
        self.steps: list[Step] = []
        self.fused: list[str] = []  # what was rearranged, for tests and profiling
        items = built.resolved
        modules = list(built.module)
        free = False  # may the last step's output be overwritten (nothing saved it for backward)?
        index = 0
        while index < len(items):
            item, module = items[index], modules[index]
            kind = item.kind
            activation = _activation_of(kind, item.layer)
            following = items[index + 1].kind if index + 1 < len(items) else None
            if kind in ("conv", "dense"):
                core, had_activation = _split(module)
                body, own_output = _chain(core), True
            elif kind == "activation" and activation in _IN_PLACE:
                body, had_activation, own_output = (lambda x: x), True, free
            else:
                self.steps.append(_pooling(module) if kind == "maxpool" else module)
                free = kind in _OUTPUT_FREE
                index += 1
                continue
            if not had_activation:
                self.steps.append(body)
                free = True
            elif activation in _MONOTONIC and following == "maxpool":
                # The pooled tensor is new and max pooling's backward reads only indices.
                pool = _pooling(modules[index + 1])
                self.steps.append(_then(lambda x, body=body, pool=pool: pool(body(x)), _IN_PLACE[activation]))
                self.fused.append(f"{item.name}+{items[index + 1].name}")
                free = activation == "linear"
                index += 1
            elif activation in _IN_PLACE and own_output:
                self.steps.append(_then(body, _IN_PLACE[activation]))
                free = activation == "linear"
            else:  # gelu, whose backward reads its input, or an input something else saved
                self.steps.append(_then(body, module[-1] if isinstance(module, nn.Sequential) else module))
                free = False
            index += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x
