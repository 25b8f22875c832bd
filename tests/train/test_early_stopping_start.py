"""Early stopping from a run's first epoch: patience counts from the start when nothing is finite
yet, and plain comparisons (no min_delta given) take any strict gain."""

from __future__ import annotations

import math

import pytest

from cnnlab.spec.training import EarlyStopping
from cnnlab.train.early_stopping import EarlyStopper, is_better


def test_patience_counts_from_the_first_epoch_when_no_value_is_finite_yet():
    """Keras: with patience 3 and no improvement ever, the run stops at its third epoch (0-based 2)."""
    stopper = EarlyStopper(EarlyStopping(monitor="val_loss", patience=3))
    decisions = [stopper.observe(e, {"val_loss": math.nan}) for e in range(3)]
    assert decisions == [False, False, True] and stopper.stopped_epoch == 2
    assert stopper.best is None


@pytest.mark.parametrize("monitor, value, best", [("val_accuracy", 0.501, 0.5), ("val_loss", 0.499, 0.5)])
def test_without_min_delta_any_strict_gain_is_an_improvement(monitor, value, best):
    assert is_better(monitor, value, best)
    assert not is_better(monitor, best, best)
