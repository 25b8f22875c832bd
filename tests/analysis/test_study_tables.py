"""Study B's columns of the results table, on hand-made run records: the number of conv layers of
each configuration's model, and the best train and validation accuracy of any epoch (means over
the finished runs)."""

from __future__ import annotations

import math

import pytest

from cnnlab.analysis.tables import conv_layer_count, result_rows
from tests.analysis.stored_runs import run_record

CONV = {"conv": {"filters": 4, "kernel": [3, 3]}}
TWO_CONVS = {"layers": [CONV, {"maxpool": {"size": [2, 2]}}, CONV, {"flatten": {}}, {"dense": {"units": 10}}]}
HISTORIES = {
    "a": [{"train_accuracy": 0.50}, {"train_accuracy": 0.80}, {"train_accuracy": 0.70}],  # best epoch 2
    "b": [{"train_accuracy": 0.60}, {"train_accuracy": float("nan")}, {"train_accuracy": 0.90}],
    "f": [{"train_accuracy": 0.99}],  # a failed run: not counted
}


def _runs():
    return [run_record(id="a", architecture="deep", config=TWO_CONVS, best_val_accuracy=0.70, val_accuracy=0.65),
            run_record(id="b", architecture="deep", repeat=1, config=TWO_CONVS, best_val_accuracy=0.74,
                       val_accuracy=0.72),
            run_record(id="f", architecture="deep", repeat=2, status="failed", config=TWO_CONVS,
                       best_val_accuracy=0.99)]


def test_conv_layers_are_counted_in_the_configurations_layer_list():
    assert conv_layer_count(TWO_CONVS) == 2
    # A variant that removed a conv layer leaves it out of the run's layer list.
    assert conv_layer_count({"layers": [CONV, {"flatten": {}}, {"dense": {"units": 10}}]}) == 1
    assert conv_layer_count({"layers": [{"flatten": {}}, {"dense": {"units": 10}}]}) == 0
    assert conv_layer_count(None) is None and conv_layer_count({"layers": "damaged"}) is None


def test_a_row_has_the_best_accuracies_of_any_epoch_averaged_over_its_finished_runs():
    (row,) = result_rows(_runs(), epochs=HISTORIES.__getitem__)
    assert row.conv_layers == 2
    assert row.best_train_accuracy == pytest.approx((0.80 + 0.90) / 2)  # NaN epochs and the failed run left out
    assert row.best_val_accuracy == pytest.approx((0.70 + 0.74) / 2)
    assert row.val_accuracy == pytest.approx((0.65 + 0.72) / 2)  # the final weights' accuracy is kept apart
    assert {"conv_layers", "best_train_accuracy", "best_val_accuracy"} <= set(row.to_dict())  # ls --json and csv


def test_without_epoch_rows_the_best_train_accuracy_is_unknown_not_zero():
    (row,) = result_rows(_runs())
    assert row.best_train_accuracy is None and row.best_val_accuracy == pytest.approx(0.72)
    (unfinished,) = result_rows([run_record(id="q", status="queued", config=TWO_CONVS)], epochs=HISTORIES.get)
    assert unfinished.best_train_accuracy is None and unfinished.best_val_accuracy is None
    assert unfinished.conv_layers == 2
    assert not math.isnan(result_rows(_runs(), epochs=HISTORIES.__getitem__)[0].best_train_accuracy)
