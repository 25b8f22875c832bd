"""What the weights are: conv kernels (filters) and per-layer weight and bias distributions.

Both read only parameters, so they work from a stored state dict as well as from a model:
the report can show histograms of every run without building a single model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ModelError
from cnnlab.explain.activations import named_layer, plain_module
from cnnlab.models.layers import core_module

# "Near zero" for the sparsity figure: |w| below this counts as pruned by L1. Float32 weights
# that L1 drives to zero oscillate around it at about lr * l1, far below 1e-3 for usual
# settings, while an unregularized conv kernel has few weights this small.
NEAR_ZERO = 1e-3


def filters(model: Any, layer: str) -> torch.Tensor:
    """The kernels of a conv layer: out_channels x in_channels x kh x kw (a detached CPU copy)."""
    module = core_module(named_layer(model, layer))
    if not isinstance(module, nn.Conv2d):
        raise ModelError(f"{layer} is a {type(module).__name__}, not a conv layer; filters exist for conv layers only")
    return module.weight.detach().cpu().clone()


@dataclass(frozen=True)
class LayerWeights:
    """One conv or dense layer's kernel and bias values, flattened, with their near-zero fractions."""

    name: str
    kind: str  # conv | dense
    weights: np.ndarray
    biases: Optional[np.ndarray]

    @property
    def near_zero(self) -> float:
        """Fraction of kernel weights with |w| < NEAR_ZERO."""
        return float(np.mean(np.abs(self.weights) < NEAR_ZERO)) if self.weights.size else 0.0

    @property
    def bias_near_zero(self) -> Optional[float]:
        if self.biases is None or not self.biases.size:
            return None
        return float(np.mean(np.abs(self.biases) < NEAR_ZERO))


def weight_histograms(weights: Any) -> list[LayerWeights]:
    """Kernel and bias values of every conv and dense layer, in order, from a state dict or a model.

    A layer is named by the first part of its parameter names (``conv1`` for ``conv1.0.weight``);
    a 4-D weight is a conv kernel, a 2-D one a dense kernel; batch-norm scales (1-D) are left out.
    """
    state = _state_dict(weights)
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[-1] not in ("weight", "bias"):
            continue
        layers.setdefault(parts[0], {})[parts[-1]] = tensor
    out = []
    for name, tensors in layers.items():
        weight = tensors.get("weight")
        if weight is None or weight.dim() not in (2, 4):
            continue
        bias = tensors.get("bias")
        out.append(LayerWeights(
            name=name, kind="conv" if weight.dim() == 4 else "dense",
            weights=weight.detach().float().cpu().numpy().ravel(),
            biases=None if bias is None else bias.detach().float().cpu().numpy().ravel(),
        ))
    return out


def _state_dict(weights: Any) -> Mapping[str, torch.Tensor]:
    if isinstance(weights, Mapping):
        return weights
    return plain_module(weights).state_dict()
