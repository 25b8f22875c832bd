"""Saliency and guided backpropagation, for classes and for single units of a layer, via Captum.

Captum (``captum.attr``) is the maintained implementation: ``Saliency`` and ``GuidedBackprop``
for a class logit, ``NeuronGradient`` and ``NeuronGuidedBackprop`` for one unit of a layer.
What cnnlab adds is only the choice of unit: a channel at a given spatial position, or at
each input's strongest position (the classic "guided backprop of a neuron's top images").
Guided backpropagation overrides the gradient of ``nn.ReLU`` modules only (other activations
pass their plain gradient), as Captum does.

Inputs are normalized model inputs (N x C x H x W); results have the same shape. The model
runs in eval mode; Captum removes its hooks in ``finally`` and so does ``evaluating``.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Sequence, Union

import torch

from cnnlab.errors import ModelError
from cnnlab.explain.activations import evaluating, model_device, named_layer, plain_module

Targets = Union[int, Sequence[int], torch.Tensor]


def _captum() -> Any:
    try:
        import captum.attr
    except ImportError:  # pragma: no cover - captum is a dependency
        raise ModelError("saliency and guided backpropagation need Captum: pip install captum") from None
    return captum.attr


def _prepare(model: Any, x: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
    module = plain_module(model)
    return module, x.detach().to(model_device(module)).clone().requires_grad_(True)


def _target(targets: Targets, count: int) -> Any:
    if isinstance(targets, int):
        return targets
    targets = torch.as_tensor(targets, dtype=torch.int64).reshape(-1)
    if len(targets) != count:
        raise ModelError(f"one target class per input is needed; got {len(targets)} for {count} inputs")
    return targets


def _quiet_call(function: Callable[..., torch.Tensor], *args: Any, **kwargs: Any) -> torch.Tensor:
    # Captum warns on every guided-backprop call that it sets (and removes) ReLU hooks.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations")
        return function(*args, **kwargs).detach().cpu()


def saliency(model: Any, x: torch.Tensor, target: Targets) -> torch.Tensor:
    """|d logit[target] / d x| (Simonyan et al. 2014), per input pixel and channel."""
    attr = _captum()
    module, inputs = _prepare(model, x)
    with evaluating(module):
        return _quiet_call(attr.Saliency(module).attribute, inputs, target=_target(target, len(inputs)), abs=True)


def guided_backprop(model: Any, x: torch.Tensor, target: Targets) -> torch.Tensor:
    """Guided backpropagation of the class logit ``target`` (Springenberg et al. 2015)."""
    attr = _captum()
    module, inputs = _prepare(model, x)
    with evaluating(module):
        return _quiet_call(attr.GuidedBackprop(module).attribute, inputs, target=_target(target, len(inputs)))


def unit_selector(channel: int, position: Optional[Sequence[Sequence[int]] | Sequence[int]] = None
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Captum neuron selector: one channel at a position, per input.

    ``position`` is one (row, col) for every input, a list of (row, col), one per input, or
    None for each input's strongest position of the channel (its maximum). For a layer with a
    flat output (dense), the channel is the unit and ``position`` must be None.
    """

    def select(output: torch.Tensor) -> torch.Tensor:
        if not 0 <= channel < output.shape[1]:
            raise ModelError(f"the layer has channels 0 to {output.shape[1] - 1}; asked for {channel}")
        maps = output[:, channel]
        if maps.dim() == 1:
            return maps
        if position is None:
            return maps.flatten(1).max(dim=1).values
        rows_cols = torch.as_tensor(position, dtype=torch.int64)
        if rows_cols.dim() == 1:
            rows_cols = rows_cols.expand(len(maps), 2)
        batch = torch.arange(len(maps))
        return maps[batch, rows_cols[:, 0], rows_cols[:, 1]]

    return select


def neuron_guided_backprop(model: Any, x: torch.Tensor, layer: str, channel: int,
                           position: Optional[Sequence] = None) -> torch.Tensor:
    """Guided backpropagation of one unit of ``layer`` (channel at ``position``; see ``unit_selector``)."""
    attr = _captum()
    module, inputs = _prepare(model, x)
    target = named_layer(module, layer)
    with evaluating(module):
        method = attr.NeuronGuidedBackprop(module, target)
        return _quiet_call(method.attribute, inputs, unit_selector(channel, position))


def neuron_saliency(model: Any, x: torch.Tensor, layer: str, channel: int,
                    position: Optional[Sequence] = None) -> torch.Tensor:
    """|d unit / d x| for one unit of ``layer`` (Captum's ``NeuronGradient``, absolute value)."""
    attr = _captum()
    module, inputs = _prepare(model, x)
    target = named_layer(module, layer)
    with evaluating(module):
        method = attr.NeuronGradient(module, target)
        return _quiet_call(method.attribute, inputs, unit_selector(channel, position)).abs()
