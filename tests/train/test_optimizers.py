"""Each optimizer against its update written out by hand (the formulas in cnnlab/train/optimizers.py).

Two steps on a tiny tensor with fixed gradients: the first step fills the optimizer's state, the
second reads it back, so a wrong momentum, bias correction or decay shows in the second.
"""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.spec.training import Optimizer
from cnnlab.train.optimizers import build_optimizer

W0 = [0.5, -1.0, 2.0]
GRADS = [[0.1, -0.2, 0.3], [0.4, 0.1, -0.5]]


def _steps(spec: Optimizer, options=None) -> list[float]:
    """The weights after applying GRADS in turn with cnnlab's optimizer."""
    w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    optimizer = build_optimizer([w], spec, options)
    for grad in GRADS:
        w.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    return w.detach().tolist()


def _sgd(lr, mu, nesterov, wd):
    out = []
    for i, w in enumerate(W0):
        b = None
        for grads in GRADS:
            g = grads[i] + wd * w
            b = g if b is None else mu * b + g
            w -= lr * (g + mu * b) if nesterov else lr * b
        out.append(w)
    return out


def _adam(lr, b1, b2, eps, wd, decoupled):
    out = []
    for i, w in enumerate(W0):
        m = v = 0.0
        for t, grads in enumerate(GRADS, start=1):
            g = grads[i]
            if decoupled:
                w -= lr * wd * w
            else:
                g += wd * w
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            w -= lr / (1 - b1 ** t) * m / (math.sqrt(v / (1 - b2 ** t)) + eps)
        out.append(w)
    return out


def _rmsprop(lr, rho, eps, mu, wd):
    out = []
    for i, w in enumerate(W0):
        v = b = 0.0
        for grads in GRADS:
            g = grads[i] + wd * w
            v = rho * v + (1 - rho) * g * g
            step = g / (math.sqrt(v) + eps)
            if mu:
                b = mu * b + step
                w -= lr * b
            else:
                w -= lr * step
        out.append(w)
    return out


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_sgd_with_momentum_nesterov_and_weight_decay(nesterov, wd):
    spec = Optimizer(name="sgd", lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=wd)
    assert _steps(spec) == pytest.approx(_sgd(0.1, 0.9, nesterov, wd), rel=1e-12)


def test_sgd_nesterov_differs_from_plain_momentum():
    # Guards the reference itself: if both lines above computed the same thing, nesterov would be untested.
    assert _sgd(0.1, 0.9, True, 0.0) != pytest.approx(_sgd(0.1, 0.9, False, 0.0), rel=1e-6)


@pytest.mark.parametrize("options", [None, {"fused": True}])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_with_bias_correction_and_coupled_weight_decay(options, wd):
    spec = Optimizer(name="adam", lr=0.01, beta1=0.8, beta2=0.95, eps=1e-3, weight_decay=wd)
    assert _steps(spec, options) == pytest.approx(_adam(0.01, 0.8, 0.95, 1e-3, wd, decoupled=False), rel=1e-10)


@pytest.mark.parametrize("options", [None, {"fused": True}])
def test_adamw_decays_the_weights_apart_from_the_gradient(options):
    spec = Optimizer(name="adamw", lr=0.01, beta1=0.8, beta2=0.95, eps=1e-3, weight_decay=0.5)
    assert _steps(spec, options) == pytest.approx(_adam(0.01, 0.8, 0.95, 1e-3, 0.5, decoupled=True), rel=1e-10)
    assert _adam(0.01, 0.8, 0.95, 1e-3, 0.5, decoupled=True) != pytest.approx(
        _adam(0.01, 0.8, 0.95, 1e-3, 0.5, decoupled=False), rel=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_rmsprop_with_keras_rho_momentum_and_weight_decay(momentum, wd):
    spec = Optimizer(name="rmsprop", lr=0.01, rho=0.8, eps=1e-3, momentum=momentum, weight_decay=wd)
    assert _steps(spec) == pytest.approx(_rmsprop(0.01, 0.8, 1e-3, momentum, wd), rel=1e-10)


def test_the_defaults_are_keras():
    spec = Optimizer()
    assert (spec.name, spec.lr, spec.beta1, spec.beta2, spec.eps) == ("adam", 1e-3, 0.9, 0.999, 1e-7)
    assert Optimizer(name="rmsprop").rho == 0.9
    assert _steps(Optimizer()) == pytest.approx(_adam(1e-3, 0.9, 0.999, 1e-7, 0.0, decoupled=False), rel=1e-10)
