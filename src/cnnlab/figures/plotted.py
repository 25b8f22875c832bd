"""The data a chart plotted, read back from its artists: the x and y of every tagged line, the
interval ends of every tagged set of error bars and the values of every tagged image (a heat map).

``figures.drawn`` records how a figure looks (axes, styles, colours, legends, text); tests of
what a chart says need its numbers too: the rates it drew are the stored ones, the points sit at
the swept values, the error bars stay in the metric's range. ``Plot`` carries both: the PNG
(with ``.drawn``) and the series read back here, from the figure after it was drawn, never from
the arrays the code meant to draw.

Shared kit, the lowest layer: imports only matplotlib, numpy and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure as MplFigure

from cnnlab.figures.drawn import PNG, SEPARATOR, record
from cnnlab.figures.style import png_bytes


@dataclass(frozen=True)
class Series:
    """One tagged line of axes ``axes``: its points, and its error bars' ends where it has them."""

    axes: int
    series: str
    split: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()


@dataclass(frozen=True)
class Plot:
    """A rendered chart: its PNG (``png.drawn`` is how it looks) and the data it plotted."""

    png: PNG
    series: list[Series] = field(default_factory=list)
    images: dict[str, np.ndarray] = field(default_factory=dict)  # tag -> the values an image shows
    scales: list[tuple[str, str]] = field(default_factory=list)  # (x, y) scale of each visible axes

    def of(self, series: str, split: str = "") -> list[Series]:
        """The lines tagged ``series`` (and ``split``), in drawing order."""
        return [s for s in self.series if s.series == series and (not split or s.split == split)]


def finish(figure: MplFigure, tight: bool = True) -> Plot:
    """Render ``figure`` to PNG and read back what it shows (call inside ``styled()``)."""
    png = png_bytes(figure, tight=tight)
    scales = [(ax.get_xscale(), ax.get_yscale()) for ax in figure.get_axes() if ax.get_visible()]
    return Plot(PNG(png, record(figure)), read_series(figure), read_images(figure), scales)


def read_images(figure: MplFigure) -> dict[str, np.ndarray]:
    """The values of every image (``imshow``) tagged with ``drawn.tag``, by its series name."""
    found = {}
    for ax in figure.get_axes():
        for image in ax.get_images():
            key = image.get_gid() or ""
            if SEPARATOR in key:
                found[key.partition(SEPARATOR)[0]] = np.ma.filled(np.ma.asarray(image.get_array(), dtype=float), np.nan)
    return found


def read_series(figure: MplFigure) -> list[Series]:
    """Every tagged line's data, with the ends of the error bars tagged like it on the same axes."""
    found: list[Series] = []
    for index, ax in enumerate(a for a in figure.get_axes() if a.get_visible()):
        bars: dict[str, list[tuple[float, float, float]]] = {}
        for collection in ax.collections:
            key = collection.get_gid() or ""
            if isinstance(collection, LineCollection) and SEPARATOR in key:
                bars.setdefault(key, []).extend(_segments(collection))
        for line in ax.get_lines():
            key = line.get_gid() or ""
            if SEPARATOR not in key or not line.get_visible():
                continue
            series, _, split = key.partition(SEPARATOR)
            x, y = _floats(line.get_xdata()), _floats(line.get_ydata())
            ends = {position: (low, high) for position, low, high in bars.get(key, [])}
            low = tuple(ends[p][0] if p in ends else float("nan") for p in x) if ends else ()
            high = tuple(ends[p][1] if p in ends else float("nan") for p in x) if ends else ()
            found.append(Series(index, series, split, x, y, low, high))
    return found


def _segments(collection: LineCollection) -> list[tuple[float, float, float]]:
    """(x, low, high) of each vertical segment of a set of error bars."""
    ends = []
    for segment in collection.get_segments():
        points = np.asarray(segment, dtype=float)
        if len(points) == 2 and points[0, 0] == points[1, 0]:
            ends.append((float(points[0, 0]), float(points[:, 1].min()), float(points[:, 1].max())))
    return ends


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.ma.filled(np.ma.asarray(values, dtype=float), np.nan))
