"""Every metric cnnlab records, in one table: its words, whether it is a percent, which way is
better and how its numbers are written.

Accuracies and the train-validation gap are stored as fractions and shown as percents (their
differences in percentage points); losses and everything else are shown as they are. Tables
carry more digits than sentences: a table is for looking numbers up, a sentence for reading.

Shared kit, the lowest layer: imports only the standard library.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Metric:
    """One metric: its name in logs and the store, and how people are shown it."""

    name: str
    words: str  # in sentences and captions: "validation accuracy"
    percent: bool  # a fraction shown times 100
    higher_is_better: Optional[bool]  # None: not a score (the learning rate, the penalty)
    table_format: str  # format spec of the shown number (after x100 for a percent) in tables
    sentence_format: str  # the same in sentences
    axis: str = ""  # a chart's axis label; empty: the words, with "(%)" for a percent

    @property
    def axis_label(self) -> str:
        return self.axis or (f"{self.words} (%)" if self.percent else self.words)


def _accuracy(name: str, words: str) -> Metric:
    return Metric(name, words, percent=True, higher_is_better=True, table_format=".2f", sentence_format=".1f")


def _loss(name: str, words: str) -> Metric:
    return Metric(name, words, percent=False, higher_is_better=False, table_format=".4f", sentence_format=".3f")


METRICS: dict[str, Metric] = {m.name: m for m in (
    # The per-batch logs and the charts' families ("train_" or "val_" prefixed per split).
    Metric("accuracy", "accuracy", True, True, ".2f", ".1f"),
    # The report draws losses on a log axis: train losses near zero and a diverging validation
    # loss are both readable there.
    Metric("loss", "loss", False, False, ".4f", ".3f", axis="loss (log scale)"),
    _accuracy("train_accuracy", "training accuracy"),
    _accuracy("val_accuracy", "validation accuracy"),
    _accuracy("test_accuracy", "test accuracy"),
    _accuracy("best_val_accuracy", "best validation accuracy"),
    _loss("train_loss", "training loss"),
    _loss("val_loss", "validation loss"),
    _loss("test_loss", "test loss"),
    _loss("best_val_loss", "best validation loss"),
    # Train minus validation accuracy at the best epoch: a percent, and smaller is better.
    Metric("gap", "the train-validation gap", True, False, ".2f", ".1f"),
    Metric("penalty", "regularization penalty", False, None, ".4g", ".3g"),
    Metric("lr", "learning rate", False, None, ".3g", ".3g"),
    Metric("seconds", "seconds per epoch", False, False, ".1f", ".1f"),
    Metric("train_seconds", "training seconds", False, False, ".1f", ".1f"),
    Metric("images_per_second", "images per second", False, True, ",.0f", ",.0f"),
)}


class UnknownMetricError(ValueError):
    """A metric name that is not in the table (a programming error: user input is checked earlier)."""


def metric(name: str) -> Metric:
    """The table's entry for ``name``; an UnknownMetricError naming the known metrics otherwise."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), METRICS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UnknownMetricError(f"unknown metric {name!r}{hint}; known metrics: {', '.join(METRICS)}") from None


def words(name: str) -> str:
    """The metric in words, for sentences and captions."""
    return metric(name).words


def axis_label(name: str) -> str:
    """The metric's label on a chart axis."""
    return metric(name).axis_label


def is_percent(name: str) -> bool:
    """True when the metric is a fraction shown as a percent (its differences in points)."""
    return metric(name).percent


def higher_is_better(name: str) -> bool:
    """True for accuracies, False for losses and the gap; an error for a metric that is no score."""
    direction = metric(name).higher_is_better
    if direction is None:
        raise ValueError(f"metric {name!r} is not a score: neither higher nor lower is better")
    return direction


def format_value(name: str, value: float, *, sentence: bool = False, signed: bool = False,
                 percent_sign: bool = False) -> str:
    """``value`` as shown: x100 for a percent, the table's (or ``sentence``'s) digits, a + on
    positive numbers when ``signed``, and a % after a percent when ``percent_sign``."""
    entry = metric(name)
    spec = entry.sentence_format if sentence else entry.table_format
    shown = 100 * value if entry.percent else value
    text = f"{shown:{'+' if signed else ''}{spec}}"
    return text + "%" if percent_sign and entry.percent else text


__all__ = ["METRICS", "Metric", "UnknownMetricError", "metric", "words", "axis_label", "is_percent",
           "higher_is_better", "format_value"]
