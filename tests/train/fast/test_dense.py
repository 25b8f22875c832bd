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


# ---------------------------------------------------------------- the feature test and its fallback


@pytest.fixture
def feature_test(monkeypatch):
    """Runs ``dense._op``'s feature test afresh with ``_find_op`` replaced; the real answer is restored after."""
    dense._op.cache_clear()

    def use(op):
        monkeypatch.setattr(dense, "_find_op", lambda: op)
        dense._op.cache_clear()

    yield use
    monkeypatch.undo()
    dense._op.cache_clear()


def _raises(error):
    def op(*args):
        raise error

    return op


BROKEN_OPS = {
    "missing": None,
    "unsupported": _raises(RuntimeError("could not create a primitive")),
    "signature changed": _raises(TypeError("_linear_pointwise() takes 3 positional arguments")),
    "not implemented": _raises(NotImplementedError("no kernel for CPU")),
    "ignores the bias": lambda a, b, bias, *rest: a @ b.t(),
    # Right for contiguous operands, wrong for the transposed views backward passes.
    "ignores strides": lambda a, b, bias, *rest: F.linear(a.as_strided(a.shape, (a.shape[1], 1)),
                                                          b.as_strided(b.shape, (b.shape[1], 1)), bias),
    "returns no tensor": lambda *args: None,
}


@pytest.mark.parametrize("name", list(BROKEN_OPS))
def test_a_missing_or_broken_op_fails_the_feature_test_and_dense_layers_use_f_linear(feature_test, name):
    feature_test(BROKEN_OPS[name])
    assert dense._op() is None
    module = torch.nn.Linear(10, 3)
    x = torch.randn(6, 10, requires_grad=True)
    assert not dense.applies(x, module.weight)
    out = dense.dense(module)(x)
    assert type(out.grad_fn).__name__ != "_DenseBackward"
    torch.testing.assert_close(out, F.linear(x, module.weight, module.bias), rtol=0, atol=0)


def test_the_feature_test_leaves_the_global_random_state_alone(feature_test):
    feature_test(lambda a, b, bias, *rest: F.linear(a, b, bias))
    before = torch.get_rng_state()
    assert dense._op() is not None
    assert torch.equal(torch.get_rng_state(), before)


@needs_op
def test_the_feature_test_runs_once_per_process_and_passes_the_real_op(feature_test):
    real, calls = dense._find_op(), []

    def counted(*args):
        calls.append(args)
        return real(*args)

    feature_test(counted)
    module, x = torch.nn.Linear(5, 4), torch.randn(3, 5)
    for _ in range(3):
        assert dense.applies(x, module.weight)
    assert len(calls) == 3  # forward, input gradient, weight gradient: once, then cached


@needs_op
def test_training_on_the_fallback_learns_what_the_fast_path_learns(feature_test, monkeypatch):
    from tests.train.fast.test_switch import METRICS, _train

    fast = _train(monkeypatch, "1")
    feature_test(_raises(RuntimeError("gone in this torch")))
    fallback = _train(monkeypatch, "1")
    assert dense._op() is None  # the rest of the fast path stayed on; only dense layers fell back
    assert type(fallback.forward).__name__ == "FastForward" and fallback.optimizer.defaults["fused"]
    for epoch, (ours, theirs) in enumerate(zip(fallback.history, fast.history)):
        for metric in METRICS:
            assert ours[metric] == pytest.approx(theirs[metric], rel=1e-3, abs=1e-3), (epoch, metric)
    for name, value in fallback.model.state_dict().items():
        torch.testing.assert_close(value, fast.model.state_dict()[name], rtol=1e-3, atol=1e-3)
