"""float32 dense layers on the CPU through oneDNN's matmul instead of MKL's.

PyTorch sends a float32 ``F.linear`` and its two backward products to MKL, which on AMD CPUs runs
its AVX2 code; oneDNN (already inside PyTorch for convolutions, and what TensorFlow uses for
everything) reaches more of the AVX-512 peak at our shapes. ``torch.ops.mkldnn._linear_pointwise``
takes ordinary strided tensors, so all three products go through it without copies. Measured at
A2's dense layer (64 x 14,400 x 100, 2 threads): forward 152 against 146 GFLOP/s, input gradient
188 against 149, weight gradient 195 against 160.

bf16 autocast already routes dense layers to oneDNN, so this is for float32 only; anything it does
not cover (no such op in this torch, other dtypes or devices) uses ``F.linear``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import torch


@lru_cache(maxsize=None)
def _op():
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return None
    try:  # present but unusable (a build without oneDNN matmul): find out once
        a = torch.ones(2, 3)
        if not torch.equal(op(a, torch.ones(4, 3), None, "none", [], ""), torch.full((2, 4), 3.0)):
            return None
    except RuntimeError:
        return None
    return op


def _matmul(a: torch.Tensor, b_transposed: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``a @ b_transposed.T (+ bias)`` through oneDNN."""
    return _op()(a, b_transposed, bias, "none", [], "")


class _Dense(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _matmul(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = _matmul(grad, weight.t()) if ctx.needs_input_grad[0] else None
        grad_weight = _matmul(grad.t(), x.t()) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def _autocast_on_cpu() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch before 2.4
        return torch.is_autocast_cpu_enabled()


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.dim() == 2 and x.dtype == torch.float32 and weight.dtype == torch.float32 and x.device.type == "cpu"
            and not _autocast_on_cpu() and _op() is not None)


def dense(module: torch.nn.Linear):
    """A step computing ``module(x)``: through oneDNN where ``applies``, else the module itself."""

    def step(x: torch.Tensor) -> torch.Tensor:
        if applies(x, module.weight):
            return _Dense.apply(x, module.weight, module.bias)
        return module(x)

    return step
