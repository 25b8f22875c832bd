"""How every cnnlab figure looks and how it becomes PNG bytes: resolution, fonts, palette, rendering.

Figures are made with ``matplotlib.figure.Figure`` directly, never through pyplot: no global
figure list to leak, no backend switch affecting the user's own plots, safe in a thread.
PNG rather than SVG: the grids of images and confusion matrices are raster anyway, a small
multiples figure with dozens of panels stays a fixed size in PNG (SVG grows with every point
and every glyph and renders slowly), and PNG files paste into any lab report (``--format md``).

Two resolutions, one for each way a figure is laid out:

- charts (learning curves, confusion matrices) are laid out in inches and drawn at 1.5x their
  display size (``DPI``, 144) so they stay sharp on high-density screens;
- tile figures (``canvas``: filters, feature maps, patches, examples) are laid out in pixels,
  one image pixel upscaled by a whole factor, so they are drawn at ``TILE_DPI`` (100): one
  figure pixel per CSS pixel, and a 9 pt label a 15 px line. Drawing them at 1.5x would resample
  the tiles unevenly.

Either way a point of text is a point at the size the figure is shown, so ``MIN_FONT`` (9 pt)
is the smallest text a reader meets at 100% on a laptop screen.

One look for every figure, report and explain alike, so that a figure pasted into a lab report
reads the same as the one beside it:

- a colour per name (variant, architecture) from ``colour_for(name, names)``: the position of
  the name in the spec's order, never in a ranking, so a variant keeps its colour from one
  figure to the next (Okabe and Ito's colour-blind-safe palette);
- a line style per split (``SPLIT_STYLE``: train solid, validation dashed, test dotted), said
  in every legend (``SPLIT_LABEL``); the best epoch is a grey dash-dot line, a fourth style;
- legends outside the axes, every axis labelled with its unit.

Shared kit, the lowest layer: imports only matplotlib, numpy and the standard library.
"""

from __future__ import annotations

import io
import textwrap
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional, Sequence

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

DPI = 144  # charts: 1.5 x the 96 pixels per inch of a CSS pixel
TILE_DPI = 100  # tile figures: laid out in pixels, shown at one pixel per CSS pixel
MIN_FONT = 9.0  # pt at the displayed size: the smallest text a figure may hold
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 9.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "image.interpolation": "nearest",
}

# Okabe & Ito's colour-blind-safe palette (blue, vermillion, bluish green, reddish purple, orange,
# sky blue, yellow, black): told apart with every common colour-vision deficiency.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
MUTED = "#333333"  # subtitles and side notes
RIGHT, WRONG = "#1a7f37", "#b42318"  # a correct and a wrong prediction (always said in words too)


# One line style per split, the same in every figure; the legend says which is which.
SPLIT_STYLE = {"train": "-", "val": "--", "test": ":"}
SPLIT_LABEL = {"train": "train (solid)", "val": "validation (dashed)", "test": "test (dotted)"}
BEST_EPOCH_STYLE = {"color": "0.45", "linestyle": "-.", "linewidth": 0.9}  # not a split's style
NEUTRAL_LINE = "#333333"  # the split-style legend entries: style without a name's colour


def colors(count: int) -> list:
    """``count`` distinct line colours as hex: the palette, or tab20 past its 8 colours (cycled past 20)."""
    if count <= len(PALETTE):
        return list(PALETTE[:count])
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab20"]
    return [to_hex(cmap(i % cmap.N)) for i in range(count)]


def colour_for(name: str, names: Sequence[str]) -> str:
    """The colour of ``name`` (a variant, an architecture) among ``names`` in the spec's order.

    Every figure asks with the spec's whole list, whichever names it shows, so a variant has one
    colour in the whole report and in explain. A name missing from ``names`` comes after them.
    """
    order = list(dict.fromkeys(str(n) for n in names))
    if str(name) not in order:
        order.append(str(name))
    return colors(len(order))[order.index(str(name))]


@contextmanager
def styled(overrides: Optional[Mapping[str, Any]] = None) -> Iterator[None]:
    """Every figure is made and rendered inside this: the kit's fonts, spines, grid and colours."""
    with rc_context(STYLE), rc_context(dict(overrides or {})):
        yield


def new_figure(figsize: tuple[float, float], dpi: float = DPI, **kwargs: Any) -> MplFigure:
    """A figure on its own Agg canvas, ``figsize`` in inches, rendered at ``dpi`` by ``png_bytes``."""
    figure = MplFigure(figsize=figsize, dpi=dpi, **kwargs)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: MplFigure, tight: bool = False) -> bytes:
    """The figure as PNG at its own dpi; ``tight`` trims the white border (one more layout pass).

    No "Software" entry: the same figure gives the same bytes under any matplotlib version.
    """
    from cnnlab.figures.vector import keep

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi, bbox_inches="tight" if tight else None, pad_inches=0.08,
                   facecolor=figure.get_facecolor(), metadata={"Software": None})
    png = buffer.getvalue()
    keep(figure, png, tight)  # --figures svg|pdf: its vector twin too (figures/vector.py); else nothing
    return png


def plain(text: str, width: Optional[int] = None) -> str:
    """User text shown as itself: matplotlib would read ``$...$`` as mathematics."""
    text = str(text).replace("$", r"\$")
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) if width else text
