"""Choosing the best configuration on validation, and the final retrain that is tested once.

Selection reads validation metrics only: test numbers never reach it (a test permutes the
test labels and checks the choice does not move).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from cnnlab.analysis.comparisons import RunResult, configuration_intervals
from cnnlab.analysis.statistics import Interval
from cnnlab.metrics import higher_is_better
from cnnlab.spec.plan import RunConfig


@dataclass
class Selection:
    configuration: str
    metric: str
    interval: Interval
    epochs: int  # the retrain's epoch budget: the mean best epoch over the repeats (1-based)
    runs: list[RunResult]


def select_best(results: Sequence[RunResult], metric: str = "val_accuracy") -> Optional[Selection]:
    """The configuration with the best mean ``metric`` over its repeats (first on ties)."""
    if not metric.startswith("val_"):
        raise ValueError(f"selection must use a validation metric, not {metric!r}")
    candidates = [r for r in results if r.phase == "select"]
    intervals = configuration_intervals(candidates, metric)
    if not intervals:
        return None
    sign = 1.0 if higher_is_better(metric) else -1.0
    order = list(dict.fromkeys(r.configuration for r in candidates))
    best = max((name for name in order if name in intervals), key=lambda name: (sign * intervals[name].mean, -order.index(name)))
    runs = [r for r in candidates if r.configuration == best]
    best_epochs = [_best_epoch(r, metric) + 1 for r in runs]
    return Selection(best, metric, intervals[best], max(1, round(sum(best_epochs) / len(best_epochs))), runs)


def _best_epoch(result: RunResult, metric: str) -> int:
    values = [(e.get(metric), i) for i, e in enumerate(result.history) if e.get(metric) is not None]
    if not values:
        return len(result.history) - 1
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(values, key=lambda v: (sign * v[0], -v[1]))[1]


def final_config(selection: Selection, plan: Sequence[RunConfig]) -> RunConfig:
    """The selected configuration retrained on train+val for the selected number of epochs."""
    first = next(c for c in plan if c.label == selection.configuration and c.repeat == 0 and c.fold in (None, 0))
    train = first.train.model_copy(update={"epochs": selection.epochs, "early_stopping": None})
    return first.model_copy(update={
        "phase": "final", "merge_val": True, "train": train, "evaluate_test": True, "fold": None, "kfold": first.kfold,
    })
