"""Optimizers by name, with Keras' defaults and meanings for their settings."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

import torch

from cnnlab.errors import TrainError
from cnnlab.registry import Registry
from cnnlab.spec.study import Optimizer

# A factory takes the parameters, the spec and keyword options for the torch optimizer (the
# kernel choice: fused, foreach), which the fast path decides (cnnlab.train.fast.policy).
OptimizerFactory = Callable[..., torch.optim.Optimizer]
OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer", TrainError)


@OPTIMIZERS.register("sgd")
def _sgd(params, spec: Optimizer, **options: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov,
                           weight_decay=spec.weight_decay, **options)


@OPTIMIZERS.register("adam")
def _adam(params, spec: Optimizer, **options: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps,
                            weight_decay=spec.weight_decay, **options)


@OPTIMIZERS.register("adamw")
def _adamw(params, spec: Optimizer, **options: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps,
                             weight_decay=spec.weight_decay, **options)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params, spec: Optimizer, **options: Any) -> torch.optim.Optimizer:
    # Keras' rho is PyTorch's alpha.
    return torch.optim.RMSprop(params, lr=spec.lr, alpha=spec.rho, eps=spec.eps, momentum=spec.momentum,
                               weight_decay=spec.weight_decay, **options)


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: Optimizer,
                    options: Optional[Mapping[str, Any]] = None) -> torch.optim.Optimizer:
    """The spec's optimizer over ``params``; ``options`` are passed to the torch optimizer."""
    return OPTIMIZERS.get(spec.name)(params, spec, **(options or {}))
