"""Every check a model must pass before training, without allocating anything.

``check_model`` is the one model pre-flight: it resolves the variant over the base layers,
infers every shape (sizes, paddings, the classifier's units) and, given a batch size, checks
that training fits in memory. ``build_model``, the runner, the executor's cost estimate and
the study pre-flight all go through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from cnnlab.models.cost import training_flops
from cnnlab.models.memory import check_memory
from cnnlab.models.shapes import LayerInfo, check_shapes
from cnnlab.models.variants import ResolvedLayer, resolve_layers
from cnnlab.spec.layers import Layer
from cnnlab.spec.variant import LayerChanges


@dataclass(frozen=True)
class CheckedModel:
    """A model that passed the pre-flight: its resolved layers and their shapes."""

    resolved: list[ResolvedLayer]
    layers: list[LayerInfo]

    @property
    def step_flops(self) -> float:
        """Floating-point operations of one training step, per image."""
        return training_flops(self.layers)


def check_model(
    layers: Sequence[Layer],
    variant: Optional[LayerChanges],
    input_shape: Sequence[int],
    num_classes: Optional[int] = None,
    *,
    batch_size: Optional[int] = None,
    optimizer: str = "adam",
) -> CheckedModel:
    """Resolve, shape-check and (with ``batch_size``) memory-check a model; a ModelError names
    the first problem."""
    resolved = resolve_layers(layers, variant)
    infos = check_shapes(resolved, input_shape, num_classes)
    if batch_size is not None:
        check_memory(infos, batch_size, optimizer)
    return CheckedModel(resolved, infos)
