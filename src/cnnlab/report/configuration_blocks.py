"""Blocks that set the configurations side by side, placed in the report's existing sections: the
selection metric against each swept value (under the sweep's ranking table) and the learning rate
per epoch (under the learning curves).

Intervals are the analysis' (``configuration_intervals``: the t-interval over seeds, the corrected
resampled t over folds, clipped to the metric's range), the numbers the tables show; nothing is
recomputed here.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from cnnlab.analysis.comparisons import configuration_intervals
from cnnlab.figures.plotted import Plot
from cnnlab.metrics import words
from cnnlab.report.configuration_figures import Point, RateLine, draw_learning_rates, draw_sweep, scalar
from cnnlab.report.data import ReportData
from cnnlab.report.document import Block, Figure, Note
from cnnlab.report.known_effects import curve_context


def sweep_points(data: ReportData) -> tuple[str, list[Point]]:
    """The selection metric and, per configuration chosen among, its mean and interval (the analysis')."""
    analysis = data.analysis
    metric = analysis.selection.metric if analysis is not None and analysis.selection else "val_accuracy"
    if analysis is None:
        return metric, []
    intervals = configuration_intervals([r for r in analysis.results if r.phase == "select"], metric)
    return metric, [Point(row.architecture, row.variant, row.sweep, interval.mean, interval.low, interval.high)
                    for row in data.rows if row.phase == "select" and (interval := intervals.get(row.configuration))]


def sweep_plot(data: ReportData, sweep_keys: list[str]) -> Optional[Plot]:
    """The metric against each swept key that takes two or more values; None without one."""
    metric, points = sweep_points(data)
    keys = [key for key in sweep_keys if len({repr(scalar(p.sweep.get(key))) for p in points}) > 1]
    if len(points) < 2 or not keys:
        return None
    context = curve_context(data)
    spec_sweep = data.spec.get("sweep") or {}
    # The spec's order of each key's values: the cross product lists them; listed points give them in turn.
    if isinstance(spec_sweep, dict):
        orders = {key: list(spec_sweep.get(key) or []) for key in keys}
    else:
        orders = {key: _distinct(point[key] for point in spec_sweep if key in point) for key in keys}
    return draw_sweep(points, metric, keys, orders, context.variants, context.architectures)


def _distinct(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def sweep_blocks(data: ReportData, sweep_keys: list[str]) -> list[Block]:
    """The sweep figure (``sweep_plot``) as a report block; none without a sweep."""
    plot = sweep_plot(data, sweep_keys)
    if plot is None:
        return []
    metric, points = sweep_points(data)
    several = any(p.low is not None for p in points)
    return [Figure("sweep-" + metric.replace("_", "-"), plot.png,
                   f"{words(metric).capitalize()} against each swept value, per configuration",
                   f"Mean {words(metric)} of each configuration at each swept value"
                   + (" with its 95% interval (error bars: the t-interval over seeds, or the corrected resampled t "
                      "over folds, clipped to the metric's range), the intervals of the results table."
                      if several else "; one run each, so no interval: set repeats: 3 or more to see the spread."))]


def rate_lines(data: ReportData) -> list[RateLine]:
    """Each configuration's stored rate per epoch (one list per finished run), in plan order."""
    lines: dict[str, RateLine] = {}
    for result in (data.analysis.results if data.analysis else []):
        rates = [e.get("lr") for e in result.history]
        if not any(rate is not None for rate in rates):
            continue
        line = lines.setdefault(result.configuration,
                                RateLine(result.configuration, result.architecture, result.variant, []))
        line.runs.append(rates)
    return list(lines.values())


def rate_plot(data: ReportData) -> Optional[Plot]:
    """The learning rate per epoch; None when no run recorded a rate, or all kept one and the same."""
    lines = rate_lines(data)
    if len({rate for line in lines for run in line.runs for rate in run if rate is not None}) < 2:
        return None
    context = curve_context(data)
    return draw_learning_rates(lines, context.variants, context.architectures)


def rate_blocks(data: ReportData) -> list[Block]:
    """``rate_plot`` as a report block, or one line when every run kept one and the same rate."""
    plot = rate_plot(data)
    if plot is None:
        rates = {rate for line in rate_lines(data) for run in line.runs for rate in run if rate is not None}
        return [Note(f"Every run trained with a constant learning rate of {rates.pop():g}, so there is no "
                     "learning-rate figure.")] if rates else []
    return [Figure("learning-rate", plot.png, "Learning rate per epoch of each configuration",
                   "The learning rate each configuration's optimizer used in each epoch, as the store recorded it "
                   "(a logarithmic axis when the rates span a factor of 10 or more); where a configuration's repeats "
                   "followed different rates (a plateau schedule reacts to each run's validation loss), each is drawn.")]
