"""The report's figures that set configurations side by side: the selection metric against each
swept value (with its 95% interval), and the learning rate each configuration trained with, per
epoch. Both return a ``figures.plotted.Plot``: the PNG, how it looks (``png.drawn``) and the
numbers it plotted, read back from the figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cnnlab.figures.drawn import tag
from cnnlab.figures.plotted import Plot, finish
from cnnlab.figures.style import SPLIT_LABEL, SPLIT_STYLE, colour_for, new_figure, plain, styled
from cnnlab.metrics import axis_label, is_percent, words

DECADE = 10.0  # a numeric axis whose positive values span this factor or more is drawn on a log scale


@dataclass(frozen=True)
class Point:
    """One configuration in a sweep: its names, sweep values and the metric's mean with its interval
    (``low``/``high`` None for a single run)."""

    architecture: str
    variant: str
    sweep: dict[str, Any]
    mean: float
    low: Optional[float] = None
    high: Optional[float] = None


@dataclass(frozen=True)
class RateLine:
    """One configuration's learning rate per epoch, one list per finished run."""

    configuration: str
    architecture: str
    variant: str
    runs: list[list[Optional[float]]]


def scalar(value: Any) -> Any:
    """A sweep value as one number where it is one: a square kernel [3, 3] is 3."""
    if isinstance(value, (list, tuple)) and value and len({str(v) for v in value}) == 1:
        return value[0]
    return value


def _numeric(values: Sequence[Any]) -> bool:
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                for v in values)


def spans_decade(values: Sequence[float]) -> bool:
    """True when the positive values span a factor of ``DECADE`` or more (and none is 0 or below)."""
    array = np.asarray([v for v in values if v is not None], dtype=float)
    array = array[np.isfinite(array)]
    return bool(array.size) and bool((array > 0).all()) and float(array.max() / array.min()) >= DECADE


def _plain_log(axis: Any) -> None:
    """Log-scale ticks as plain numbers (0.001, 0.01), not 10^k, and no crowd of minor labels."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def group_colours(groups: Sequence[tuple[str, str, str]], variants: Sequence[str],
                  architectures: Sequence[str]) -> dict[str, str]:
    """A colour per group (label, architecture, variant): the variant's colour when each group is
    one variant, the architecture's when each is one architecture (the report's colours for them
    everywhere), else one per group label in the order given."""
    labels = [label for label, _, _ in groups]
    if len({variant for _, _, variant in groups}) == len(groups):
        return {label: colour_for(variant, variants) for label, _, variant in groups}
    if len({architecture for _, architecture, _ in groups}) == len(groups):
        return {label: colour_for(architecture, architectures) for label, architecture, _ in groups}
    return {label: colour_for(label, labels) for label in labels}


# ---------------------------------------------------------------- the metric against each swept value


def draw_sweep(points: Sequence[Point], metric: str, keys: Sequence[str], orders: dict[str, list[Any]],
               variants: Sequence[str] = (), architectures: Sequence[str] = ()) -> Plot:
    """One panel per sweep key: x the swept value (a log axis when numeric and spanning a decade,
    else the values in the spec's ``orders``), y the mean of ``metric`` per configuration with its
    95% interval as error bars; one line per architecture, variant and other swept values."""
    scale = 100.0 if is_percent(metric) else 1.0
    columns = min(len(keys), 2)
    rows = math.ceil(len(keys) / columns)
    with styled():
        figure = new_figure((5.4 * columns + 0.4, 3.6 * rows + 0.8), layout="constrained")
        axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
        handles: dict[str, Any] = {}
        for ax, key in zip(axes, keys):
            handles.update(_sweep_panel(ax, points, metric, key, orders.get(key, []), scale, variants, architectures))
        for ax in axes[len(keys):]:
            ax.set_visible(False)
        interval = any(p.low is not None for p in points)
        title = f"{SPLIT_LABEL['val']}: mean" + (" with its 95% interval (error bars)" if interval else
                                                  " (one run each: no interval)")
        figure.legend(list(handles.values()), [plain(label, 40) for label in handles], loc="outside lower center",
                      ncols=min(len(handles), 3), title=title)
        return finish(figure)


def _sweep_panel(ax: Any, points: Sequence[Point], metric: str, key: str, order: list[Any], scale: float,
                 variants: Sequence[str], architectures: Sequence[str]) -> dict[str, Any]:
    values = [scalar(p.sweep.get(key)) for p in points]
    numeric = _numeric(values)
    known = [scalar(v) for v in order] + [v for v in values if v not in [scalar(o) for o in order]]
    categories = list(dict.fromkeys(str(v) for v in known))
    log = numeric and spans_decade(values)
    groups: dict[str, list[Point]] = {}
    names: dict[str, tuple[str, str]] = {}
    for point in points:
        others = " ".join(f"{k}={scalar(v)}" for k, v in point.sweep.items() if k != key)
        label = " ".join(part for part in (f"{point.architecture}/{point.variant}", others) if part)
        groups.setdefault(label, []).append(point)
        names[label] = (point.architecture, point.variant)
    colours = group_colours([(label, *names[label]) for label in groups], variants, architectures)
    handles = {}
    for label, members in groups.items():
        def position(point: Point) -> float:
            value = scalar(point.sweep.get(key))
            return float(value) if numeric else float(categories.index(str(value)))

        members = sorted(members, key=position)
        x = [position(p) for p in members]
        y = [scale * p.mean for p in members]
        (line,) = ax.plot(x, y, SPLIT_STYLE["val"] if numeric else "none", marker="o", markersize=4.5,
                          color=colours[label], linewidth=1.4)
        tag(line, label, "val")
        handles[label] = line
        bars = [(px, p) for px, p in zip(x, members) if p.low is not None and p.high is not None]
        if bars:
            collection = ax.vlines([px for px, _ in bars], [scale * p.low for _, p in bars],
                                   [scale * p.high for _, p in bars], color=colours[label], linewidth=1.2)
            tag(collection, label, "val")
    if log:
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
    elif not numeric:
        ax.set_xticks(range(len(categories)), [plain(c, 16) for c in categories])
        ax.set_xlim(-0.5, len(categories) - 0.5)
    ax.set_xlabel(plain(key) + (" (log scale)" if log else ""))
    ax.set_ylabel(axis_label(metric))
    ax.set_title(plain(f"{words(metric).capitalize()} against {key}"))
    return handles


# ---------------------------------------------------------------- learning rate per epoch


def draw_learning_rates(lines: Sequence[RateLine], variants: Sequence[str] = (),
                        architectures: Sequence[str] = ()) -> Plot:
    """Each configuration's learning rate per epoch (1-based), on a log axis when the rates span a
    decade; a configuration whose runs followed different rates (a plateau schedule) shows each.
    Configurations that followed the very same rates (variants of one sweep point) share one line,
    tagged and labelled with all their names: drawn apart, one would hide the other."""
    shared: dict[tuple, list[RateLine]] = {}
    for line in lines:
        paths = tuple(dict.fromkeys(tuple(run) for run in line.runs if run))
        shared.setdefault(paths, []).append(line)
    groups = [("; ".join(m.configuration for m in members), members[0].architecture if len(
        {m.architecture for m in members}) == 1 else "", members[0].variant if len(members) == 1 else "")
        for members in shared.values()]
    colours = group_colours(groups, variants, architectures)
    every = [v for line in lines for run in line.runs for v in run if v is not None]
    log = spans_decade(every)
    with styled():
        figure = new_figure((7.2, 3.4 + 0.22 * math.ceil(len(groups) / 2)), layout="constrained")
        ax = figure.subplots()
        for (label, _, _), paths in zip(groups, shared):
            for number, path in enumerate(paths):
                y = [np.nan if v is None else v for v in path]
                (drawn,) = ax.plot(range(1, len(y) + 1), y, "-", marker="." if len(y) <= 30 else None,
                                   color=colours[label], linewidth=1.5 if len(paths) == 1 else 0.9,
                                   label=plain(label, 60) if number == 0 else "_")
                tag(drawn, label)
        if log:
            ax.set_yscale("log")
            _plain_log(ax.yaxis)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(axis_label("lr") + (" (log scale)" if log else ""))
        ax.set_title("Learning rate per epoch, as each configuration trained")
        figure.legend(loc="outside lower center", ncols=min(len(groups), 2))
        return finish(figure)


# ---------------------------------------------------------------- per fold


def draw_per_fold(points: dict[str, list[tuple[int, float, float]]]) -> Plot:
    """Validation accuracy (left) and loss (right) of each fold, per configuration (study D plotted
    both): a marker per fold, a dashed line at the configuration's mean over its folds."""
    names = list(points)
    with styled():
        figure = new_figure((7.6, 3.2 + 0.22 * math.ceil(len(names) / 2)), layout="constrained")
        axes = figure.subplots(1, 2)
        for ax, metric, column in ((axes[0], "val_accuracy", 1), (axes[1], "val_loss", 2)):
            scale = 100.0 if is_percent(metric) else 1.0
            for name in names:
                colour = colour_for(name, names)
                folds = [p[0] for p in points[name]]
                values = [scale * p[column] for p in points[name]]
                (line,) = ax.plot(folds, values, "none", marker="o", markersize=5, color=colour,
                                  label=plain(name, 60) if ax is axes[0] else "_")
                tag(line, name, "val")
                mean = ax.axhline(sum(values) / len(values), color=colour, linestyle=SPLIT_STYLE["val"], linewidth=1.0)
                tag(mean, name + " mean", "val")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_xlabel("fold")
            ax.set_ylabel(axis_label(metric))
            ax.set_title(plain(f"{words(metric).capitalize()} per fold"))
        figure.legend(loc="outside lower center", ncols=min(len(names), 2))
        return finish(figure)
