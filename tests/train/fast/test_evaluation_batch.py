"""Evaluation batches stay within the last-level cache budget, and small nets keep big batches."""

from __future__ import annotations

import math

from cnnlab.models import build_model
from cnnlab.train.fast import EVAL_ACTIVATION_BYTES, evaluation_batch_size

from tests.models import architectures as arch
from tests.models.architectures import CIFAR10, MNIST, layers


def _largest_batch_activation(items, shape):
    built = build_model(layers(items), shape, 10)
    size = evaluation_batch_size(built)
    return size, size * 4 * max(math.prod(info.output_shape) for info in built.layers)


def test_cifar_sized_nets_evaluate_in_batches_whose_activations_fit_the_budget():
    for items in (arch.A2, arch.A3, arch.E):
        size, activation = _largest_batch_activation(items, CIFAR10)
        assert 32 <= size < 128 and activation <= EVAL_ACTIVATION_BYTES


def test_a_small_net_evaluates_1024_images_at_a_time():
    assert _largest_batch_activation(arch.C_MNIST, MNIST)[0] == 1024


def test_a_huge_activation_still_gets_32_images():
    items = [{"conv": {"filters": 512, "kernel": 3, "padding": "same"}}, "flatten", {"dense": 10}]
    assert _largest_batch_activation(items, (3, 64, 64))[0] == 32  # 8 MB per image
