"""Early stopping with Keras' meaning of patience and min_delta, and restore-best that always applies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from cnnlab.metrics import higher_is_better
from cnnlab.spec.training import EarlyStopping


def is_better(monitor: str, value: float, best: Optional[float], min_delta: float = 0.0) -> bool:
    """Accuracies improve upwards, losses downwards."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    if higher_is_better(monitor):
        return value > best + min_delta
    return value < best - min_delta


@dataclass
class EarlyStopper:
    """Counts epochs without improvement; says when to stop.

    Keras restores the best weights only when it actually stops early, so a run that ends by
    reaching its epoch budget keeps its last weights even with restore_best_weights=True;
    cnnlab restores them in both cases (the trainer asks ``best_epoch`` at the end).
    """

    spec: EarlyStopping
    best: Optional[float] = None
    best_epoch: int = -1
    wait: int = 0
    stopped_epoch: Optional[int] = None

    def observe(self, epoch: int, logs: dict[str, float]) -> bool:
        """Record an epoch; True when training should stop."""
        value = logs.get(self.spec.monitor)
        if value is None:
            return False
        self.wait += 1
        if is_better(self.spec.monitor, value, self.best, self.spec.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return False
        if self.wait >= self.spec.patience and epoch > 0:
            self.stopped_epoch = epoch
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
