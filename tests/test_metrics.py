"""The metric table: directions, percents, words and number formats, and clear errors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cnnlab.metrics import (
    METRICS, UnknownMetricError, axis_label, format_value, higher_is_better, is_percent, metric, words,
)

ACCURACIES = ("accuracy", "train_accuracy", "val_accuracy", "test_accuracy", "best_val_accuracy")
LOSSES = ("loss", "train_loss", "val_loss", "test_loss", "best_val_loss")


@pytest.mark.parametrize("name", ACCURACIES)
def test_accuracies_are_percents_and_higher_is_better(name):
    assert is_percent(name) and higher_is_better(name)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_are_plain_numbers_and_lower_is_better(name):
    assert not is_percent(name) and not higher_is_better(name)


def test_the_gap_is_a_percent_where_lower_is_better():
    assert is_percent("gap") and not higher_is_better("gap")
    assert words("gap") == "the train-validation gap"


def test_every_metric_the_store_records_is_in_the_table():
    from cnnlab.store.schema import EPOCH_COLUMNS, METRIC_COLUMNS

    recorded = {*EPOCH_COLUMNS, *METRIC_COLUMNS, "best_val_loss", "best_val_accuracy", "train_seconds"}
    assert recorded <= set(METRICS)
    assert all(entry.name == name for name, entry in METRICS.items())


@pytest.mark.parametrize("name", ["lr", "penalty"])
def test_a_metric_that_is_no_score_has_no_direction(name):
    assert metric(name).higher_is_better is None
    with pytest.raises(ValueError, match=f"'{name}' is not a score"):
        higher_is_better(name)


def test_words_for_sentences_and_axes():
    assert words("val_accuracy") == "validation accuracy"
    assert words("train_loss") == "training loss"
    assert words("test_accuracy") == "test accuracy"
    assert axis_label("accuracy") == "accuracy (%)"
    assert axis_label("loss") == "loss (log scale)"


def test_percents_are_shown_times_100_with_table_or_sentence_digits():
    assert format_value("val_accuracy", 0.91234) == "91.23"
    assert format_value("val_accuracy", 0.91234, percent_sign=True) == "91.23%"
    assert format_value("val_accuracy", 0.91234, sentence=True, percent_sign=True) == "91.2%"
    assert format_value("gap", 0.0123, signed=True) == "+1.23"
    assert format_value("gap", -0.0123, signed=True) == "-1.23"
    assert format_value("gap", 0.0123, sentence=True) == "1.2"


def test_losses_are_shown_as_they_are():
    assert format_value("val_loss", 0.123456) == "0.1235"
    assert format_value("val_loss", 0.123456, sentence=True) == "0.123"
    assert format_value("val_loss", 0.123456, signed=True) == "+0.1235"
    assert format_value("val_loss", 0.123456, percent_sign=True) == "0.1235"  # no % on a loss


def test_other_formats():
    assert format_value("images_per_second", 12345.6) == "12,346"
    assert format_value("seconds", 3.14159) == "3.1"
    assert format_value("lr", 0.001) == "0.001"


@pytest.mark.parametrize("call", [metric, words, is_percent, higher_is_better, axis_label,
                                  lambda name: format_value(name, 0.5)])
def test_an_unknown_metric_is_a_clear_error(call):
    with pytest.raises(UnknownMetricError,
                       match=r"unknown metric 'val_acuracy' \(did you mean 'val_accuracy'\?\); known metrics: .*val_loss"):
        call("val_acuracy")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):  # a ValueError, for callers that catch those
        call("f1")


def test_the_table_imports_only_the_standard_library():
    import cnnlab.metrics

    tree = ast.parse(Path(cnnlab.metrics.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    import sys

    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
