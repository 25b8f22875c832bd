"""float32 dense layers through oneDNN compute what F.linear computes, gradients included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlab.train.fast import dense

needs_op = pytest.mark.skipif(dense._op() is None, reason="this torch has no usable oneDNN linear op")


@needs_op
@pytest.mark.parametrize("shape", [(64, 14_400, 100), (7, 33, 5), (1, 10, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_outputs_and_all_three_gradients_match_f_linear(shape, bias):
    n, k, m = shape
    generator = torch.Generator().manual_seed(k)
    x = torch.randn(n, k, generator=generator)
    module = torch.nn.Linear(k, m, bias=bias)
    grad = torch.randn(n, m, generator=generator)
    ours_x, theirs_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = dense.dense(module)(ours_x)
    ours.backward(grad)
    ours_grads = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    theirs = F.linear(theirs_x, module.weight, module.bias)
    theirs.backward(grad)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_x.grad, theirs_x.grad, rtol=1e-5, atol=1e-5)
    for got, expected in zip(ours_grads, [p.grad for p in module.parameters()]):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    assert ours.grad_fn is not None and type(ours.grad_fn).__name__ == "_DenseBackward"


def test_bf16_autocast_and_other_dtypes_keep_pytorchs_path():
    module = torch.nn.Linear(8, 3)
    x = torch.randn(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not dense.applies(x, module.weight)
        assert dense.dense(module)(x).dtype == torch.bfloat16
    assert not dense.applies(x.double(), module.weight.double())
    assert not dense.applies(torch.randn(2, 3, 8), module.weight)
