"""Optimizers by name, with Keras' defaults and meanings for their settings.

The updates, per parameter ``w`` with gradient ``g`` at step ``t`` (1-based), rate ``lr`` (tests in
``tests/train/test_optimizers.py`` check each against these lines):

- sgd: ``g += wd * w``; ``b = mu * b + g`` (``b = g`` at t=1); ``w -= lr * (g + mu * b)`` with
  nesterov, else ``w -= lr * b``. Keras keeps ``v = mu * v - lr * g`` instead: the same steps
  while the rate is constant; after a schedule changes it, Keras' velocity still carries the old rate.
- adam: ``g += wd * w``; ``m = b1 * m + (1 - b1) * g``; ``v = b2 * v + (1 - b2) * g**2``;
  ``w -= lr / (1 - b1**t) * m / (sqrt(v / (1 - b2**t)) + eps)``. Keras adds ``eps`` to ``sqrt(v)``
  before the bias correction ("epsilon hat"): apart only when ``sqrt(v)`` is near ``eps``.
- adamw: ``w -= lr * wd * w`` first (decoupled, as Keras' AdamW), then adam's step without ``g += wd * w``.
- rmsprop: ``g += wd * w``; ``v = rho * v + (1 - rho) * g**2``; ``s = g / (sqrt(v) + eps)``;
  ``b = mu * b + s`` and ``w -= lr * b`` with momentum, else ``w -= lr * s``. Keras divides by
  ``sqrt(v + eps)``: apart only when ``v`` is near ``eps``.

``weight_decay`` is PyTorch's: added to the gradient (an L2 term) except in adamw; Keras 3
decouples it in every optimizer. A Keras ``kernel_regularizer`` L2 is a variant's ``l2`` penalty.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

import torch

from cnnlab.errors import TrainError
from cnnlab.registry import Registry
from cnnlab.spec.training import Optimizer

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
