"""float32 dense layers on the CPU through oneDNN's matmul instead of MKL's.

PyTorch sends a float32 ``F.linear`` and its two backward products to MKL, which on AMD CPUs runs
its AVX2 code; oneDNN (already inside PyTorch for convolutions, and what TensorFlow uses for
everything) reaches more of the AVX-512 peak at our shapes. ``torch.ops.mkldnn._linear_pointwise``
takes ordinary strided tensors, so all three products go through it without copies. Measured at
A2's dense layer (64 x 14,400 x 100, 2 threads): forward 152 against 146 GFLOP/s, input gradient
188 against 149, weight gradient 195 against 160.

bf16 autocast already routes dense layers to oneDNN, so this is for float32 only; anything it does
not cover (other dtypes or devices) uses ``F.linear``.

The op is private to PyTorch: it may vanish, change its signature or its answers in any release.
So it is used only after ``_op``'s feature test (once per process) found it present and agreeing
with ``F.linear`` on a tiny input in each of the three ways ``_Dense`` calls it; otherwise every
dense layer takes ``F.linear`` (the public path, also what ``CNNLAB_FAST=0`` runs), and a test
forces that fallback and compares its training with the fast path's.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from cnnlab.train.device import autocast_enabled

log = logging.getLogger(__name__)

# oneDNN and MKL sum the tiny products of the feature test in different orders; a wrong op
# (transposed, ignoring the bias or a stride) is off by whole units.
_AGREEMENT = {"rtol": 1e-4, "atol": 1e-4}


def _find_op() -> Optional[Callable[..., torch.Tensor]]:
    """The private op, if this torch has it and was built with oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def _agrees(op: Callable[..., Any]) -> bool:
    """Whether ``op`` computes ``F.linear`` for a forward, an input-gradient and a weight-gradient
    call: contiguous operands with a bias, then the transposed (strided) views backward passes."""
    # A generator of its own: the test must not move the global random state training draws from.
    generator = torch.Generator().manual_seed(0)
    x, weight, grad = (torch.randn(*shape, generator=generator) for shape in ((3, 5), (4, 5), (3, 4)))
    bias = torch.randn(4, generator=generator)
    cases = [((x, weight, bias), F.linear(x, weight, bias)),
             ((grad, weight.t(), None), grad @ weight),
             ((grad.t(), x.t(), None), grad.t() @ x)]
    for (a, b, c), expected in cases:
        got = op(a, b, c, "none", [], "")
        if not (isinstance(got, torch.Tensor) and got.shape == expected.shape and got.dtype == expected.dtype
                and torch.allclose(got, expected, **_AGREEMENT)):
            return False
    return True


@lru_cache(maxsize=None)
def _op() -> Optional[Callable[..., torch.Tensor]]:
    """The oneDNN linear op where the feature test passes, else None (then ``F.linear`` everywhere)."""
    try:
        op = _find_op()
        if op is None:
            return None
        with torch.no_grad():
            if _agrees(op):
                return op
        log.info("torch.ops.mkldnn._linear_pointwise disagrees with F.linear: dense layers use F.linear")
    # Any failure of a private op (a changed signature is a TypeError, a missing kernel a
    # RuntimeError or NotImplementedError) means the same thing: use the public path.
    except Exception as error:
        log.info("torch.ops.mkldnn._linear_pointwise is unusable (%s): dense layers use F.linear", error)
    return None


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


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.dim() == 2 and x.dtype == torch.float32 and weight.dtype == torch.float32 and x.device.type == "cpu"
            and not autocast_enabled("cpu") and _op() is not None)


def dense(module: torch.nn.Linear):
    """A step computing ``module(x)``: through oneDNN where ``applies``, else the module itself."""

    def step(x: torch.Tensor) -> torch.Tensor:
        if applies(x, module.weight):
            return _Dense.apply(x, module.weight, module.bias)
        return module(x)

    return step
