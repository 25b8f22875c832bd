"""Parameter counts match the Keras numbers in USER_STUDIES.md (and hand counts where none is given)."""

from __future__ import annotations

import pytest

from cnnlab.errors import ModelError
from cnnlab.models import build_model, check_shapes, infer_layers, resolve_layers

from . import architectures as arch
from .architectures import CIFAR10, MNIST, layers, variant

# (architecture, variant, input, total, trainable, non-trainable)
STUDY_COUNTS = [
    ("A1", None, CIFAR10, 48_970, 48_970, 0),
    ("A2", None, CIFAR10, 1_442_902, 1_442_902, 0),
    ("A3", None, CIFAR10, 1_121_430, 1_121_430, 0),
    ("A1", arch.A_BATCHNORM, CIFAR10, 53_322, 51_146, 2_176),
    ("A2", arch.A_BATCHNORM, CIFAR10, 1_443_558, 1_443_230, 328),
    ("A3", arch.A_BATCHNORM, CIFAR10, 1_122_086, 1_121_758, 328),
    ("D", None, MNIST, 93_322, 93_322, 0),
    ("E", None, CIFAR10, 6_216_114, 6_216_094, 20),
    ("E", arch.E_DROPOUT, CIFAR10, 6_216_114, 6_216_094, 20),
    # Not reported in the studies; counted by hand with Keras' rules:
    # B1: 1792 + 36928 + (6*6*64*100 + 100) + 1010
    ("B1", None, CIFAR10, 270_230, 270_230, 0),
    # B2: 1792 + 2*36928 + (2*2*64*100 + 100) + 10100 + 1010
    ("B2", None, CIFAR10, 112_458, 112_458, 0),
    # C MNIST: 104 + 808 + 3216 + (7*7*16*64 + 64) + 650
    ("C_MNIST", None, MNIST, 55_018, 55_018, 0),
    # C CIFAR-10: 448 + 4640 + 18496 + (8*8*64*64 + 64) + 8320 + 1290
    ("C_CIFAR", None, CIFAR10, 295_402, 295_402, 0),
    # D + batch norm after conv1: 4*32 more, half of them moving statistics.
    ("D", {"batchnorm": {"after": ["conv1"]}}, MNIST, 93_450, 93_386, 64),
    ("D", {"dropout": {"rate": 0.25, "after": ["conv2"]}}, MNIST, 93_322, 93_322, 0),
    ("D", {"l1": {"factor": 0.001, "on": ["dense"]}}, MNIST, 93_322, 93_322, 0),
]


@pytest.mark.parametrize("name, variant_data, input_shape, total, trainable, non_trainable", STUDY_COUNTS,
                         ids=[f"{row[0]}-{'base' if row[1] is None else i}" for i, row in enumerate(STUDY_COUNTS)])
def test_parameter_counts_match_keras(name, variant_data, input_shape, total, trainable, non_trainable):
    chosen = variant(variant_data) if variant_data is not None else None
    built = build_model(layers(getattr(arch, name)), input_shape, num_classes=10, variant=chosen)
    assert (built.total_params, built.trainable_params, built.non_trainable_params) == (total, trainable, non_trainable)
    # The counts are the module's own, and torch buffers hold exactly the moving statistics.
    parameters = sum(p.numel() for p in built.module.parameters())
    buffers = sum(b.numel() for n, b in built.module.named_buffers() if not n.endswith("num_batches_tracked"))
    assert (parameters, buffers) == (trainable, non_trainable)


def test_counts_are_known_before_building():
    infos = infer_layers(resolve_layers(layers(arch.A2), variant(arch.A_BATCHNORM)), CIFAR10)
    assert sum(info.params for info in infos) == 1_443_558


def test_check_shapes_makes_the_build_checks_without_torch_modules():
    resolved = resolve_layers(layers(arch.D))
    assert [info.name for info in check_shapes(resolved, MNIST, 10)][-1] == "dense2"
    with pytest.raises(ModelError, match="100 classes"):
        check_shapes(resolved, MNIST, 100)
    with pytest.raises(ModelError, match="empty output"):
        check_shapes(resolve_layers(layers(arch.A3)), (3, 6, 6))
