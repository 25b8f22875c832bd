"""The user studies' architectures (USER_STUDIES.md), written as a spec file would write them."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from cnnlab.spec.layers import Layer, LayerItem, item_layer
from cnnlab.spec.variant import Variant

_ITEMS = TypeAdapter(list[LayerItem])

CIFAR10 = (3, 32, 32)
MNIST = (1, 28, 28)


def layers(items: list[Any]) -> list[Layer]:
    """Parse YAML-like layer items exactly as the study spec does."""
    return [item_layer(item) for item in _ITEMS.validate_python(items)]


def variant(data: dict[str, Any]) -> Variant:
    return Variant.model_validate(data)


SAME3 = {"kernel": 3, "padding": "same"}

A1 = [{"conv": {"filters": 64, **SAME3}}, {"maxpool": 2},
      {"conv": {"filters": 64, "kernel": 3, "stride": 2, "padding": "same"}}, {"maxpool": 2},
      "flatten", {"dense": 10}]
A2 = [{"conv": {"filters": 64, "kernel": 3}}, {"maxpool": 2}, "flatten", {"dense": 100}, {"dense": 10}]
A3 = [{"conv": {"filters": 64, "kernel": 3}}, {"maxpool": 2}, {"conv": {"filters": 64, "kernel": 3}},
      "flatten", {"dense": 100}, {"dense": 10}]
B1 = [{"conv": 64}, {"maxpool": 2}, {"conv": 64}, {"maxpool": 2}, "flatten", {"dense": 100}, {"dense": 10}]
B2 = [{"conv": 64}, {"maxpool": 2}] * 3 + ["flatten", {"dense": 100}, {"dense": 100}, {"dense": 10}]
C_MNIST = [{"conv": {"filters": 4, "kernel": 5, "padding": "same"}}, "maxpool",
           {"conv": {"filters": 8, "kernel": 5, "padding": "same"}}, "maxpool",
           {"conv": {"filters": 16, "kernel": 5, "padding": "same"}}, "flatten",
           {"dense": 64}, {"dense": 10}]
C_CIFAR = [{"conv": {"filters": 16, **SAME3}}, "maxpool", {"conv": {"filters": 32, **SAME3}}, "maxpool",
           {"conv": {"filters": 64, **SAME3}}, "flatten", {"dense": 64}, {"dense": 128}, {"dense": 10}]
D = [{"conv": 32}, {"maxpool": 2}, {"conv": 64}, {"maxpool": 2}, {"conv": 64}, "flatten",
     {"dense": 64}, {"dense": 10}]
E = [{"conv": {"filters": 64, **SAME3}}, {"maxpool": 2}, {"conv": {"filters": 128, **SAME3}}, {"maxpool": 2},
     {"conv": {"filters": 256, **SAME3}}, {"conv": {"filters": 256, **SAME3}}, {"maxpool": 2}, "flatten",
     {"dense": 1024}, {"dense": 1024}, {"dense": 10}, "batchnorm"]

# Study A's batch-normalization variant: after the last conv/pool block and after flatten or
# the hidden dense.
A_BATCHNORM = {"batchnorm": True, "after": ["last_feature", "pre_classifier"]}
A_DROPOUT = {"dropout": 0.1, "after": ["pool", "last_feature", "dense"]}
# Study E: dropout 0.5 after each block.
E_DROPOUT = {"dropout": {"rate": 0.5, "after": ["pool", "dense"]}}
