"""Learning-rate schedules: a small stateful object per run whose state goes in checkpoints.

The schedule sets the rate at the start of each epoch (``rate(epoch)``) and may react to the
epoch's metrics (``observe``); warm-up, when asked, ramps linearly over the first epochs
before any schedule applies. ``path`` replays a listed rate per epoch instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cnnlab.errors import TrainError
from cnnlab.metrics import higher_is_better
from cnnlab.registry import Registry
from cnnlab.spec.training import Schedule


@dataclass
class LRSchedule:
    """The base rate, with linear warm-up; subclasses decay it."""

    spec: Schedule
    base_lr: float
    epochs: int
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Subclasses set their initial state here."""

    def rate(self, epoch: int) -> float:
        """The rate for ``epoch`` (0-based)."""
        warmup = self.spec.warmup_epochs
        if epoch < warmup:
            return self.base_lr * (epoch + 1) / (warmup + 1)
        return max(self.decayed(epoch - warmup), self.spec.min_lr) if self.spec.name != "none" else self.base_lr

    def decayed(self, epoch: int) -> float:
        return self.base_lr

    def observe(self, epoch: int, logs: dict[str, float]) -> None:
        """React to an epoch's metrics (only plateau does)."""

    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = dict(state)


SCHEDULES: Registry[type[LRSchedule]] = Registry("schedule", TrainError)
SCHEDULES.register("none")(LRSchedule)


@SCHEDULES.register("step")
class StepSchedule(LRSchedule):
    """Multiply by ``factor`` every ``every`` epochs (study D halves every 5)."""

    def decayed(self, epoch: int) -> float:
        return self.base_lr * self.spec.factor ** (epoch // self.spec.every)


@SCHEDULES.register("cosine")
class CosineSchedule(LRSchedule):
    """Cosine from the base rate down to ``min_lr`` over the epochs after warm-up."""

    def decayed(self, epoch: int) -> float:
        span = max(self.epochs - self.spec.warmup_epochs, 1)
        low = self.spec.min_lr
        return low + (self.base_lr - low) * 0.5 * (1 + math.cos(math.pi * min(epoch, span) / span))


@SCHEDULES.register("plateau")
class PlateauSchedule(LRSchedule):
    """Keras' ReduceLROnPlateau: cut the rate when the monitored metric stops improving."""

    def __post_init__(self) -> None:
        self.state.setdefault("scale", 1.0)
        self.state.setdefault("best", None)
        self.state.setdefault("wait", 0)

    def decayed(self, epoch: int) -> float:
        return self.base_lr * self.state["scale"]

    def observe(self, epoch: int, logs: dict[str, float]) -> None:
        value = logs.get(self.spec.monitor)
        if value is None or not math.isfinite(value):
            return
        best = self.state["best"]
        improved = best is None or (
            value > best + self.spec.min_delta if higher_is_better(self.spec.monitor)
            else value < best - self.spec.min_delta
        )
        if improved:
            self.state["best"], self.state["wait"] = value, 0
            return
        self.state["wait"] += 1
        if self.state["wait"] >= self.spec.patience:
            self.state["scale"] *= self.spec.factor
            self.state["wait"] = 0


@SCHEDULES.register("path")
class PathSchedule(LRSchedule):
    """An explicit rate per epoch (``values``); epochs past the list keep its last rate.

    The final retrain replays this way the per-epoch median rate its selected runs followed: a
    plateau schedule watches validation data, which a train+val retrain does not have.
    """

    def rate(self, epoch: int) -> float:
        values = self.spec.values
        if not values:  # the spec refuses this at load; a hand-built Schedule may not have been through it
            raise TrainError("schedule 'path' has no values: give the rate of each epoch")
        return values[min(epoch, len(values) - 1)]


def build_schedule(spec: Schedule, base_lr: float, epochs: int) -> LRSchedule:
    return SCHEDULES.get(spec.name)(spec=spec, base_lr=base_lr, epochs=epochs)


__all__ = ["LRSchedule", "SCHEDULES", "build_schedule"]
