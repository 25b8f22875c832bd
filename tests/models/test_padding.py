"""Keras 'same'/'valid' shapes and paddings, checked against independent computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.models import build_model, output_size, same_padding

from .architectures import layers


def keras_same(n, k, s, d=1):
    """TensorFlow's documented rule, written out again: out = ceil(n/s), odd pixel after."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return out, total // 2, total - total // 2


# Values worked out by hand from TensorFlow's padding documentation.
@pytest.mark.parametrize("n, k, s, out, before, after", [
    (28, 4, 3, 10, 1, 2), (32, 3, 2, 16, 0, 1), (32, 2, 1, 32, 0, 1), (5, 3, 1, 5, 1, 1),
    (7, 4, 2, 4, 1, 2), (32, 3, 1, 32, 1, 1), (6, 5, 3, 2, 1, 1), (6, 4, 3, 2, 0, 1), (3, 7, 1, 3, 3, 3),
])
def test_same_padding_known_values(n, k, s, out, before, after):
    assert same_padding(n, k, s) == (before, after)
    assert output_size(n, k, s, 1, "same") == (out, before, after)


def test_same_padding_matches_the_written_rule_everywhere():
    for n, k, s, d in itertools.product(range(1, 20), range(1, 8), range(1, 4), range(1, 3)):
        out, before, after = keras_same(n, k, s, d)
        assert output_size(n, k, s, d, "same") == (out, before, after)
        assert out == math.ceil(n / s)
        valid = output_size(n, k, s, d, "valid")
        assert valid == ((n - (k - 1) * d - 1) // s + 1, 0, 0)


@pytest.mark.parametrize("k, s, d", [(k, s, 1) for k in (1, 2, 3, 4, 5) for s in (1, 2, 3)] + [(3, 1, 2), (2, 2, 2)])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_module_equals_explicit_pad_then_conv(k, s, d, padding):
    h, w = 11, 8
    built = build_model(layers([{"conv": {"filters": 2, "kernel": k, "stride": s, "dilation": d, "padding": padding,
                                          "activation": "linear"}}, "flatten", {"dense": 3}]), (3, h, w),
                        generator_seed=0)
    conv = built.core_module("conv1")
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(1))
    (oh, top, bottom), (ow, left, right) = (keras_same(h, k, s, d), keras_same(w, k, s, d)) if padding == "same" \
        else (((h - (k - 1) * d - 1) // s + 1, 0, 0), ((w - (k - 1) * d - 1) // s + 1, 0, 0))
    expected = F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, conv.bias, stride=s, dilation=d)
    got = built.module.conv1(x)
    assert got.shape == (2, 2, oh, ow)
    torch.testing.assert_close(got, expected)
    info = built.info("conv1")
    assert info.output_shape == (2, oh, ow) and info.pad == (top, bottom, left, right)
    assert (info.kernel, info.stride, info.dilation) == ((k, k), (s, s), (d, d))


def numpy_pool(x, k, s, pad, reduce):
    """Pool over the real cells of each window only (Keras' 'same' semantics), by loops."""
    top, bottom, left, right = pad
    n, c, h, w = x.shape
    oh = (h + top + bottom - k) // s + 1
    ow = (w + left + right - k) // s + 1
    out = np.zeros((n, c, oh, ow), dtype=np.float64)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - top, j * s - left
            window = x[:, :, max(r0, 0):min(r0 + k, h), max(c0, 0):min(c0 + k, w)]
            out[:, :, i, j] = reduce(window.reshape(n, c, -1), axis=2)
    return out


@pytest.mark.parametrize("kind, reduce", [("maxpool", np.max), ("avgpool", np.mean)])
@pytest.mark.parametrize("k, s", [(2, 2), (3, 2), (2, 1), (3, 1), (4, 3), (3, 3), (5, 2)])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_pooling_uses_only_real_cells(kind, reduce, k, s, padding):
    h, w = 9, 10
    built = build_model(layers([{kind: {"size": k, "stride": s, "padding": padding}}, "flatten", {"dense": 2}]),
                        (2, h, w))
    x = torch.randn(3, 2, h, w, generator=torch.Generator().manual_seed(2)) - 5.0  # all negative: zero pads would show
    info = built.info(f"{kind}1")
    if padding == "same":
        (oh, top, bottom), (ow, left, right) = keras_same(h, k, s), keras_same(w, k, s)
    else:
        (oh, top, bottom), (ow, left, right) = ((h - k) // s + 1, 0, 0), ((w - k) // s + 1, 0, 0)
    assert info.pad == (top, bottom, left, right) and info.output_shape == (2, oh, ow)
    expected = numpy_pool(x.double().numpy(), k, s, info.pad, reduce)
    got = getattr(built.module, f"{kind}1")(x)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    # Gradients flow to real cells only, and nothing is infinite.
    x.requires_grad_(True)
    getattr(built.module, f"{kind}1")(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_pool_stride_defaults_to_size():
    built = build_model(layers([{"maxpool": 3}, "flatten", {"dense": 2}]), (1, 10, 10))
    assert built.info("maxpool1").stride == (3, 3) and built.info("maxpool1").output_shape == (1, 3, 3)


def test_global_average_pooling_records_the_equivalent_window():
    built = build_model(layers([{"conv": 4}, "globalavgpool", {"dense": 2}]), (1, 7, 9))
    info = built.info("globalavgpool1")
    assert info.output_shape == (4,) and info.kernel == (5, 7) and info.stride == (5, 7)
    x = torch.randn(2, 4, 5, 7)
    torch.testing.assert_close(built.module.globalavgpool1(x), x.mean(dim=(2, 3)))
