"""The trainer's fast forward computes exactly the built model's function, gradients included."""

from __future__ import annotations

import pytest
import torch

from cnnlab.models import build_model
from cnnlab.train.fast import FastForward

from tests.models import architectures as arch
from tests.models.architectures import CIFAR10, MNIST, layers, variant

CASES = {
    "A2": (arch.A2, None, CIFAR10),
    "A3+BN": (arch.A3, arch.A_BATCHNORM, CIFAR10),
    "A3+dropout": (arch.A3, arch.A_DROPOUT, CIFAR10),
    "B2+BN before activation": (arch.B2, {"batchnorm": {"position": "before_activation"}}, CIFAR10),
    "C MNIST": (arch.C_MNIST, None, MNIST),
    "D+l2": (arch.D, {"l2": 1e-3}, MNIST),
    "E+BN+dropout": (arch.E, {"batchnorm": True, "dropout": 0.5}, CIFAR10),
    "odd activations": ([{"conv": {"filters": 8, "kernel": 3, "activation": "tanh"}}, {"maxpool": 2},
                         {"conv": {"filters": 8, "kernel": 3, "activation": "gelu"}}, {"maxpool": 2},
                         {"conv": {"filters": 8, "kernel": 3, "activation": "linear"}},
                         {"activation": "elu"}, {"activation": "sigmoid"}, {"maxpool": {"size": 2, "padding": "same"}},
                         "flatten", {"dense": {"units": 16, "activation": "leaky_relu"}}, {"dense": 10}], None, MNIST),
}


def _close(got, expected, msg=None):
    # Dense layers multiply through oneDNN in the fast forward and through MKL in the model: the
    # same products summed in another order, so float32 rounding differs by ~1e-5 of the scale.
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=2e-5 * scale, msg=msg)


def _pair(items, variant_data, shape, channels_last):
    built = build_model(layers(items), shape, 10, variant(variant_data) if variant_data else None, generator_seed=3)
    fast_built = build_model(layers(items), shape, 10, variant(variant_data) if variant_data else None,
                             generator_seed=3)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    built.module.to(memory_format=fmt)  # the same kernels on both sides
    fast_built.module.to(memory_format=fmt)
    if channels_last:
        # Dropout masks are drawn in memory order, so the same seed masks other cells in NHWC.
        for module in list(built.module.modules()) + list(fast_built.module.modules()):
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    return built, FastForward(fast_built), fmt


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels_last", "contiguous"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_forward_matches_the_model_in_outputs_and_gradients(case, channels_last):
    items, variant_data, shape = CASES[case]
    built, fast, fmt = _pair(items, variant_data, shape, channels_last)
    x = torch.randn((6,) + shape, generator=torch.Generator().manual_seed(0))
    y = torch.arange(6) % 10
    for training in (True, False):
        built.module.train(training)
        fast.train(training)
        torch.manual_seed(1)  # the same dropout masks
        expected = built.module(x.contiguous(memory_format=fmt))
        torch.manual_seed(1)
        got = fast(x.contiguous(memory_format=fmt))
        _close(got, expected)
        if training:
            torch.nn.functional.cross_entropy(expected, y).backward()
            torch.nn.functional.cross_entropy(got, y).backward()
            for (name, a), (_, b) in zip(built.module.named_parameters(), fast.model.named_parameters()):
                _close(b.grad, a.grad, msg=f"gradient of {name}")
    # Running statistics moved the same way.
    for (name, a), (_, b) in zip(built.module.named_buffers(), fast.model.named_buffers()):
        _close(b, a, msg=name)


def test_monotonic_activations_move_past_max_pooling_and_gelu_does_not():
    _, fast, _ = _pair(CASES["odd activations"][0], None, MNIST, True)
    assert fast.fused == ["conv1+maxpool1", "activation2+maxpool3"]
    _, fast, _ = _pair(arch.A3, None, CIFAR10, True)
    assert fast.fused == ["conv1+maxpool1"]


def test_flatten_is_keras_order_and_a_view_of_channels_last_activations():
    built = build_model(layers([{"conv": {"filters": 3, "kernel": 1}}, "flatten", {"dense": 10}]), (2, 2, 2), 10)
    flatten = built.module.flatten1
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)  # N, C, H, W
    flat = flatten(x)
    # Keras: image 0's values are (h=0,w=0,c=0), (h=0,w=0,c=1), (h=0,w=0,c=2), (h=0,w=1,c=0) ...
    assert flat[0, :4].tolist() == [x[0, 0, 0, 0], x[0, 1, 0, 0], x[0, 2, 0, 0], x[0, 0, 0, 1]]
    last = x.contiguous(memory_format=torch.channels_last)
    assert flatten(last).data_ptr() == last.data_ptr()  # no copy
