"""What a figure shows, recorded as it is drawn, so that tests look at the figure rather than at
the code that meant to draw it.

``record(figure)`` reads a rendered matplotlib figure back: every axes (its labels, limits,
scale and data area), every line and band (their colour, line style and y-range, and the
series and split each was ``tag``-ged with), every legend (its box and entries), every piece
of text (its size in points) and every colour bar. Boxes are in the figure's pixels, y up.
Report figures come back as ``PNG``: the bytes, with the record as ``.drawn``; tile figures
carry it as ``Figure.drawn``.

Shared kit, the lowest layer: imports only matplotlib, numpy and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure as MplFigure
from matplotlib.legend import Legend
from matplotlib.text import Text

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in figure pixels, y up
SEPARATOR = "\x1f"  # between a series and a split in an artist's gid: no name holds it
NOTE = "note"  # the gid of a note that explains a curve
COLORBAR = "colorbar"  # the gid of a colour bar's axes


def tag(artist: Any, series: str = "", split: str = "") -> Any:
    """Mark a line or band with what it is of (a variant, a configuration) and its split."""
    artist.set_gid(f"{series}{SEPARATOR}{split}")
    return artist


def _tagged(artist: Any) -> tuple[str, str]:
    gid = artist.get_gid() or ""
    series, _, split = gid.partition(SEPARATOR)
    return (series, split) if SEPARATOR in gid else ("", "")


@dataclass(frozen=True)
class DrawnAxes:
    kind: str  # data | colorbar | image (axis off: a tile mosaic)
    title: str
    xlabel: str
    ylabel: str
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    yscale: str
    box: Box


@dataclass(frozen=True)
class DrawnLine:
    axes: int  # index into Drawn.axes
    series: str
    split: str
    label: str
    color: str  # #rrggbb
    linestyle: str  # - -- : -.
    y_range: tuple[float, float]  # of its finite points; (nan, nan) when it has none


@dataclass(frozen=True)
class DrawnBand:
    axes: int
    series: str
    split: str
    color: str
    y_range: tuple[float, float]


@dataclass(frozen=True)
class DrawnLegend:
    box: Box
    entries: tuple[tuple[str, str, str], ...]  # (label, colour, line style; "" for a patch)


@dataclass(frozen=True)
class DrawnText:
    text: str
    size: float  # points at the displayed size
    note: bool = False


@dataclass(frozen=True)
class DrawnScale:
    """A colour bar: the values at its ends, its colormap and its label."""

    label: str
    low: float
    high: float
    cmap: str


@dataclass
class Drawn:
    """Everything one figure shows (see the module doc); ``images`` lists the examples grid's
    split indices per row kind."""

    axes: list[DrawnAxes] = field(default_factory=list)
    lines: list[DrawnLine] = field(default_factory=list)
    bands: list[DrawnBand] = field(default_factory=list)
    legends: list[DrawnLegend] = field(default_factory=list)
    texts: list[DrawnText] = field(default_factory=list)
    scales: list[DrawnScale] = field(default_factory=list)
    images: dict[str, list[int]] = field(default_factory=dict)
    size: tuple[float, float] = (0.0, 0.0)  # the figure's (width, height) in pixels

    @property
    def notes(self) -> list[str]:
        return [text.text for text in self.texts if text.note]

    @property
    def smallest_font(self) -> float:
        return min((text.size for text in self.texts), default=float("inf"))

    def colours(self, split: Optional[str] = None) -> dict[str, set[str]]:
        """The colours each series is drawn in (of one split's lines when ``split`` is given)."""
        found: dict[str, set[str]] = {}
        for line in self.lines:
            if line.series and (split is None or line.split == split):
                found.setdefault(line.series, set()).add(line.color)
        return found

    def styles(self) -> dict[str, set[str]]:
        """The line styles each split is drawn in."""
        found: dict[str, set[str]] = {}
        for line in self.lines:
            if line.split:
                found.setdefault(line.split, set()).add(line.linestyle)
        return found

    def legends_over_data(self) -> list[tuple[int, int]]:
        """(legend, axes) pairs where a legend's box lies over a data area: none, in a good figure."""
        return [(i, j) for i, legend in enumerate(self.legends) for j, axes in enumerate(self.axes)
                if axes.kind == "data" and _overlap(legend.box, axes.box)]

    def cut_off(self) -> list[str]:
        """Legends and texts that stick out of the figure: none, in a good figure."""
        width, height = self.size
        return [", ".join(e[0] for e in legend.entries) for legend in self.legends
                if legend.box[0] < -0.5 or legend.box[1] < -0.5 or legend.box[2] > width + 0.5 or legend.box[3] > height + 0.5]

    def text(self) -> str:
        """Every piece of text, one a line, to look words up in."""
        return "\n".join(text.text for text in self.texts)


def _overlap(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5


def _box(extent: Any) -> Box:
    return (float(extent.x0), float(extent.y0), float(extent.x1), float(extent.y1))


def _range(values: Any) -> tuple[float, float]:
    array = np.asarray(np.ma.filled(np.ma.asarray(values, dtype=float), np.nan), dtype=float).ravel()
    array = array[np.isfinite(array)]
    return (float(array.min()), float(array.max())) if array.size else (float("nan"), float("nan"))


_DASHES = {"solid": "-", "dashed": "--", "dotted": ":", "dashdot": "-."}


def _style(line: Any) -> str:
    style = line.get_linestyle()
    return _DASHES.get(style, style)


def record(figure: MplFigure) -> Drawn:
    """Read back what a figure shows; call it after the figure was rendered (its layout is done)."""
    renderer = figure.canvas.get_renderer()
    drawn = Drawn(size=(float(figure.bbox.width), float(figure.bbox.height)))
    all_axes = [ax for ax in figure.get_axes() if ax.get_visible()]
    for index, ax in enumerate(all_axes):
        kind = COLORBAR if ax.get_gid() == COLORBAR or hasattr(ax, "_colorbar") else (
            "data" if ax.axison else "image")
        drawn.axes.append(DrawnAxes(kind, ax.get_title() or ax.get_title(loc="left"), ax.get_xlabel(), ax.get_ylabel(),
                                    tuple(map(float, ax.get_xlim())), tuple(map(float, ax.get_ylim())),
                                    ax.get_yscale(), _box(ax.get_window_extent(renderer))))
        for line in ax.get_lines():
            if not line.get_visible():
                continue
            series, split = _tagged(line)
            drawn.lines.append(DrawnLine(index, series, split, str(line.get_label()), to_hex(line.get_color()),
                                         _style(line), _range(line.get_ydata())))
        for patch in ax.patches:  # step histograms: outlines, tagged with their series
            series, split = _tagged(patch)
            if series and patch.get_visible():
                drawn.lines.append(DrawnLine(index, series, split, str(patch.get_label()), to_hex(patch.get_edgecolor()),
                                             _style(patch), _range(patch.get_path().vertices[:, 1])))
        for collection in ax.collections:
            if isinstance(collection, PolyCollection) and collection.get_visible():
                series, split = _tagged(collection)
                points = [path.vertices[:, 1] for path in collection.get_paths()]
                colour = collection.get_facecolor()
                drawn.bands.append(DrawnBand(index, series, split, to_hex(colour[0]) if len(colour) else "",
                                             _range(np.concatenate(points)) if points else (np.nan, np.nan)))
        if kind == COLORBAR:
            mappable = getattr(getattr(ax, "_colorbar", None), "mappable", None)
            if mappable is not None:
                label = ax.get_xlabel() or ax.get_ylabel()
                drawn.scales.append(DrawnScale(label, float(mappable.norm.vmin), float(mappable.norm.vmax),
                                               mappable.get_cmap().name))
    for legend in figure.findobj(Legend):
        if legend.get_visible():
            entries = tuple((text.get_text(), *_handle(handle)) for text, handle in
                            zip(legend.get_texts(), legend.legend_handles))
            drawn.legends.append(DrawnLegend(_box(legend.get_window_extent(renderer)), entries))
    for text in figure.findobj(Text):
        words = text.get_text()
        if words.strip() and text.get_visible() and _shown(text, renderer, figure):
            drawn.texts.append(DrawnText(words, float(text.get_fontsize()), text.get_gid() == NOTE))
    return drawn


def _handle(handle: Any) -> tuple[str, str]:
    if hasattr(handle, "get_linestyle") and hasattr(handle, "get_color") and hasattr(handle, "get_xdata"):
        return to_hex(handle.get_color()), _style(handle)
    colour = handle.get_facecolor() if hasattr(handle, "get_facecolor") else None
    return (to_hex(colour) if colour is not None else ""), ""


def _shown(text: Text, renderer: Any, figure: MplFigure) -> bool:
    """Whether a text lands on the figure (tick labels past an axis' limits are made but not drawn)."""
    box = text.get_window_extent(renderer)
    width, height = figure.bbox.width, figure.bbox.height
    return box.x1 >= 0 and box.y1 >= 0 and box.x0 <= width and box.y0 <= height and (
        not hasattr(text, "axes") or text.axes is None or _in_axes_range(text))


def _in_axes_range(text: Text) -> bool:
    # A tick label of a tick outside the view is not drawn; matplotlib keeps it anyway.
    for axis in (text.axes.xaxis, text.axes.yaxis):
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            if text in (tick.label1, tick.label2):
                low, high = sorted(axis.get_view_interval())
                location = tick.get_loc()
                return location is not None and low - 1e-9 * max(1, abs(low)) <= location <= high + 1e-9 * max(1, abs(high))
    return True


class PNG(bytes):
    """PNG bytes that also carry what the figure shows (``drawn``); anything that takes bytes takes it."""

    drawn: Optional[Drawn]

    def __new__(cls, data: bytes, drawn: Optional[Drawn] = None) -> "PNG":
        made = super().__new__(cls, data)
        made.drawn = drawn
        return made
