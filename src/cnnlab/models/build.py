"""Build a resolved layer list into a plain ``nn.Sequential`` with one child per named layer.

The model is a standard Sequential of standard modules so any PyTorch tool (Captum, ONNX,
torch.compile) works on it; what cnnlab needs beyond the module (shapes, geometry, penalties)
rides alongside in ``BuiltModel``.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import torch
from torch import nn

from cnnlab.errors import ModelError
from cnnlab.models.check import check_model
from cnnlab.models.init import check_init, initialize
from cnnlab.models.layers import core_module, make_module
from cnnlab.models.shapes import LayerInfo, check_shapes
from cnnlab.models.variants import ResolvedLayer
from cnnlab.registry import did_you_mean
from cnnlab.spec.layers import Layer
from cnnlab.spec.variant import LayerChanges


@dataclass
class BuiltModel:
    """A built model: the module, what each named layer is, and its kernel penalties."""

    module: nn.Sequential
    layers: list[LayerInfo]
    input_shape: tuple[int, int, int]
    resolved: list[ResolvedLayer] = field(default_factory=list)
    # (layer name, l1, l2) for layers with a penalty; the kernel is looked up at call time so
    # the list stays right after ``module.to(device)`` replaces parameters.
    _penalized: list[tuple[str, float, float]] = field(default_factory=list, repr=False)

    def penalty(self) -> torch.Tensor:
        """Keras' kernel_regularizer loss: sum of l1*sum|W| + l2*sum(W**2) over kernels, not biases."""
        total: Optional[torch.Tensor] = None
        for name, l1, l2 in self._penalized:
            weight = core_module(getattr(self.module, name)).weight
            term = None
            if l1:
                term = l1 * weight.abs().sum()
            if l2:
                squares = l2 * weight.square().sum()
                term = squares if term is None else term + squares
            if term is not None:
                total = term if total is None else total + term
        if total is None:
            parameter = next(self.module.parameters(), None)
            device = parameter.device if parameter is not None else None
            return torch.zeros((), device=device)
        return total

    @property
    def penalized(self) -> bool:
        """Whether any layer has a kernel penalty (``penalty()`` is then not always zero)."""
        return bool(self._penalized)

    @property
    def trainable_params(self) -> int:
        """Parameters the optimizer updates (Keras' "Trainable params")."""
        return sum(info.trainable_params for info in self.layers)

    @property
    def non_trainable_params(self) -> int:
        """Batch-norm moving means and variances, as Keras counts them."""
        return sum(info.non_trainable_params for info in self.layers)

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def names(self) -> list[str]:
        """Layer names in order (conv1, maxpool1, ...), as summary, explain and the report use them."""
        return [info.name for info in self.layers]

    def info(self, name: str) -> LayerInfo:
        """The named layer's record; a ModelError with a did-you-mean for an unknown name."""
        for info in self.layers:
            if info.name == name:
                return info
        raise ModelError(
            f"the model has no layer '{name}'{did_you_mean(name, self.names)}; its layers are: "
            f"{', '.join(self.names)}"
        )

    def core_module(self, name: str) -> nn.Module:
        """The named layer's working module (Conv2d, Linear, pool, BatchNorm, activation)."""
        self.info(name)
        return core_module(getattr(self.module, name))

    @property
    def classifier(self) -> LayerInfo:
        """The last dense layer, whose outputs are the logits."""
        return [info for info in self.layers if info.kind == "dense"][-1]


@contextlib.contextmanager
def _seeded(seed: Optional[int]) -> Iterator[None]:
    """Seed the CPU generator for the block only, leaving the caller's RNG state as it was."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        # Only the CPU generator: torch.manual_seed would also reseed every CUDA device.
        torch.random.default_generator.manual_seed(int(seed))
        yield


def build_model(
    layers: Sequence[Layer],
    input_shape: Sequence[int],
    num_classes: Optional[int] = None,
    variant: Optional[LayerChanges] = None,
    init: str = "default",
    generator_seed: Optional[int] = None,
) -> BuiltModel:
    """Resolve the variant over the base layers and build the model for images of ``input_shape``.

    ``input_shape`` is (channels, height, width). When ``num_classes`` is given, the classifier
    (the last dense) must have that many units. With ``generator_seed`` the initialization is
    the same for the same seed and the global RNG is left untouched.
    """
    checked = check_model(layers, variant, input_shape, num_classes)
    return build_resolved(checked.resolved, input_shape, num_classes, init, generator_seed, checked.layers)


def build_resolved(
    resolved: Sequence[ResolvedLayer],
    input_shape: Sequence[int],
    num_classes: Optional[int] = None,
    init: str = "default",
    generator_seed: Optional[int] = None,
    infos: Optional[Sequence[LayerInfo]] = None,
) -> BuiltModel:
    """Build an already resolved layer list (see ``build_model``); ``infos`` are its checked
    shapes when the caller has them already."""
    check_init(init)
    if infos is None:
        infos = check_shapes(resolved, input_shape, num_classes)  # every check, nothing allocated
    infos = list(infos)
    with _seeded(generator_seed):
        children = OrderedDict((item.name, make_module(item, info)) for item, info in zip(resolved, infos))
        module = nn.Sequential(children)
        initialize(module, init)
    penalized = [(item.name, item.l1, item.l2) for item in resolved
                 if item.kind in ("conv", "dense") and (item.l1 or item.l2)]
    return BuiltModel(module=module, layers=infos, input_shape=tuple(input_shape), resolved=list(resolved),
                      _penalized=penalized)
