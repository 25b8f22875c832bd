"""The tile canvas every image grid is drawn on (explain's figures, the examples grid): labelled
tile mosaics rendered to PNG bytes.

A grid of 64 or 256 small images drawn as 64 or 256 matplotlib axes takes seconds; here each
grid is one pixel-exact image (tiles upscaled by a whole factor, nearest neighbour) with the
labels drawn as text, so a 256-tile figure renders in a fraction of a second and the figure
knows where every tile lies (``Figure.tiles``), which lets tests look at the pixels of each
tile. Matplotlib is used object-oriented with the Agg canvas: no pyplot, no global backend.
Everything is laid out in pixels at ``style.TILE_DPI``; ``chart`` makes the other figures of the
same kind (histograms, bar charts) with ordinary axes. A panel whose colours stand for values
carries a ``Scale``: a colour bar under its grid, with the values at its ends.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure as MplFigure

from cnnlab.figures.drawn import COLORBAR, Drawn, record
from cnnlab.figures.style import MIN_FONT, MUTED, TILE_DPI, new_figure, png_bytes, styled

MARGIN = 12  # px around everything
GAP = 4  # px between tiles
PANEL_GAP = 28  # px between panels side by side
STACK_GAP = 10  # px between panels one under another
LABEL_PT = MIN_FONT  # tile labels, subtitles, row labels, colour bar ticks
LINE = 15  # px per line of label text (9 pt at 100 dpi, with its leading)
TITLE_PT, PANEL_TITLE_PT = 12, 10
TITLE = 24  # px of the figure title line (12 pt bold)
PANEL_TITLE = 20
SCALE_BAR = 12  # px: the height of a colour bar
SCALE_H = SCALE_BAR + 2 * LINE + 10  # the bar, its tick labels and its label
SCALE_MIN_W = 200  # px: a colour bar is at least this wide, whatever its panel's width
NEUTRAL = 0.5  # grey: where a patch's receptive field leaves the image
BACKGROUND = 1.0  # white between tiles


@dataclass(frozen=True)
class Figure:
    """One tile figure: a file name (no extension), a title, the PNG, and a caption for the report.

    ``size`` is (width, height) in pixels; ``tiles`` maps each tile's key to its box in the PNG,
    (left, top, right, bottom), end exclusive; ``drawn`` is what it shows (``figures.drawn``).
    """

    name: str
    title: str
    png_bytes: bytes
    caption: str
    size: tuple[int, int] = (0, 0)
    tiles: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    drawn: Optional[Drawn] = field(default=None, compare=False, repr=False)


def text_px(text: str, size: float = LABEL_PT, bold: bool = False) -> int:
    """About how wide ``text`` is in px at ``size`` pt (DejaVu Sans averages 0.58 em a character)."""
    return int(len(text) * size * TILE_DPI / 72 * (0.64 if bold else 0.58)) + 1


@dataclass(frozen=True)
class Scale:
    """What a panel's colours mean: ``cmap`` from ``low`` to ``high``, and in words (``label``).

    ``ticks`` name the ends (and the middle) in words, for a scale relative to each tile
    ("0", "the tile's max"); by default the values themselves.
    """

    cmap: str
    low: float
    high: float
    label: str
    ticks: Optional[Sequence[str]] = None


@dataclass
class Cell:
    """One tile: an RGB image (h x w x 3, floats in [0, 1]) or None for an empty slot, and its label
    (in ``color`` when given)."""

    rgb: Optional[np.ndarray]
    label: str = ""
    key: Optional[str] = None
    color: Optional[str] = None


@dataclass
class Panel:
    """A grid of cells, ``cols`` wide, each tile about ``tile`` px on its long side.

    ``min_col_gap`` widens the gap between columns, so that panels stacked one under another
    (``compose(stacked=True)``) keep their columns aligned.
    """

    cells: list[Cell]
    cols: int
    tile: int = 64
    title: str = ""
    row_labels: Sequence[str] = ()
    min_col_gap: int = GAP
    scale: Optional[Scale] = None

    def __post_init__(self) -> None:
        self.cols = max(1, min(self.cols, len(self.cells))) if self.cells else 1
        self.rows = max(1, math.ceil(len(self.cells) / self.cols))
        sizes = [cell.rgb.shape[:2] for cell in self.cells if cell.rgb is not None]
        longest = max((max(h, w) for h, w in sizes), default=1)
        # A whole upscaling factor keeps every source pixel the same size on screen.
        self.factor = max(1, round(self.tile / longest))
        self.tile_h = max((h for h, _ in sizes), default=1) * self.factor
        self.tile_w = max((w for _, w in sizes), default=1) * self.factor
        lines = max((cell.label.count("\n") + 1 for cell in self.cells if cell.label), default=0)
        self.label_h = lines * LINE
        longest_line = max((len(line) for cell in self.cells for line in cell.label.split("\n")), default=0)
        # Columns move apart when labels are wider than the tiles.
        self.col_gap = max(GAP, self.min_col_gap, text_px("0" * longest_line) + 6 - self.tile_w)
        self.row_label_w = (max(text_px(text) for text in self.row_labels) + 8) if self.row_labels else 0
        self.title_h = PANEL_TITLE if self.title else 0
        self.scale_h = SCALE_H if self.scale is not None else 0

    @property
    def grid_size(self) -> tuple[int, int]:
        """(width, height) of the tile grid in px."""
        return (self.cols * (self.tile_w + self.col_gap) - self.col_gap,
                self.rows * (self.label_h + self.tile_h + GAP) - GAP)

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.grid_size
        scale_w = max(SCALE_MIN_W, text_px(self.scale.label) + 8) if self.scale is not None else 0
        return (self.row_label_w + max(width, text_px(self.title, PANEL_TITLE_PT, bold=True), scale_w),
                self.title_h + height + self.scale_h)


def compose(name: str, title: str, caption: str, panels: Sequence[Panel], subtitle: str = "",
            min_width: int = 560, stacked: bool = False) -> Figure:
    """Panels side by side (``stacked``: one under another) under a title and a wrapped subtitle,
    rendered to a PNG ``Figure``; an empty title leaves no title line."""
    widths = [panel.size[0] for panel in panels]
    heights = [panel.size[1] for panel in panels]
    if stacked:
        body_w, body_h = max(widths), sum(heights) + STACK_GAP * (len(panels) - 1)
    else:
        body_w, body_h = sum(widths) + PANEL_GAP * (len(panels) - 1), max(heights)
    width = max(body_w + 2 * MARGIN, min_width, text_px(title, TITLE_PT, bold=True) + 2 * MARGIN)
    # Prose averages narrower characters than labels (0.55 em): wrapped to fill the width.
    chars = int((width - 2 * MARGIN) / (LABEL_PT * TILE_DPI / 72 * 0.55))
    lines = textwrap.wrap(subtitle, max(20, chars)) if subtitle else []
    title_h = TITLE if title else 0
    header = title_h + LINE * len(lines) + (6 if lines else 0)
    height = MARGIN + header + body_h + MARGIN
    with styled():
        fig = _figure(width, height)
        if title:
            _text(fig, width, height, MARGIN, MARGIN, title, size=TITLE_PT, weight="bold")
        for i, line in enumerate(lines):
            _text(fig, width, height, MARGIN, MARGIN + title_h + i * LINE, line, size=LABEL_PT, color=MUTED)
        tiles: dict[str, tuple[int, int, int, int]] = {}
        x, y = MARGIN + (width - 2 * MARGIN - body_w) // 2, MARGIN + header
        for panel, panel_w, panel_h in zip(panels, widths, heights):
            tiles.update(_draw_panel(fig, width, height, panel, x, y))
            if stacked:
                y += panel_h + STACK_GAP
            else:
                x += panel_w + PANEL_GAP
        png = png_bytes(fig)
        drawn = record(fig)
    return Figure(name=name, title=title, png_bytes=png, caption=caption, size=(width, height), tiles=tiles,
                  drawn=drawn)


def _draw_panel(fig: MplFigure, width: int, height: int, panel: Panel, left: int, top: int
                ) -> dict[str, tuple[int, int, int, int]]:
    if panel.title:
        _text(fig, width, height, left, top + 2, panel.title, size=PANEL_TITLE_PT, weight="bold")
    grid_left, grid_top = left + panel.row_label_w, top + panel.title_h
    grid_w, grid_h = panel.grid_size
    mosaic = np.full((grid_h, grid_w, 3), BACKGROUND, dtype=np.float32)
    tiles = {}
    for index, cell in enumerate(panel.cells):
        row, col = divmod(index, panel.cols)
        x = col * (panel.tile_w + panel.col_gap)
        y = row * (panel.label_h + panel.tile_h + GAP) + panel.label_h
        if cell.label:
            _text(fig, width, height, grid_left + x + panel.tile_w / 2, grid_top + y - panel.label_h + 1, cell.label,
                  size=LABEL_PT, ha="center", linespacing=1.1, **({"color": cell.color} if cell.color else {}))
        if cell.rgb is None:
            continue
        block = np.repeat(np.repeat(np.clip(cell.rgb, 0, 1), panel.factor, 0), panel.factor, 1)
        h, w = block.shape[:2]
        dy, dx = (panel.tile_h - h) // 2, (panel.tile_w - w) // 2
        mosaic[y + dy:y + dy + h, x + dx:x + dx + w] = block
        if cell.key is not None:
            tiles[cell.key] = (grid_left + x + dx, grid_top + y + dy, grid_left + x + dx + w, grid_top + y + dy + h)
    for row, text in enumerate(panel.row_labels[:panel.rows]):
        y = row * (panel.label_h + panel.tile_h + GAP) + panel.label_h + panel.tile_h / 2
        _text(fig, width, height, left, grid_top + y - 7, text, size=LABEL_PT)
    axes = fig.add_axes((grid_left / width, 1 - (grid_top + grid_h) / height, grid_w / width, grid_h / height))
    axes.imshow(mosaic, interpolation="nearest", aspect="auto")
    axes.set_axis_off()
    if panel.scale is not None:
        bar_w = max(min(grid_w, 320), SCALE_MIN_W)
        _draw_scale(fig, width, height, panel.scale, grid_left, grid_top + grid_h + 6, bar_w)
    return tiles


def _draw_scale(fig: MplFigure, width: int, height: int, scale: Scale, left: int, top: int, bar_w: int) -> None:
    """A horizontal colour bar (a real matplotlib colorbar, so the record reads its values back)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    high = scale.high if scale.high > scale.low else scale.low + 1e-12
    axes = fig.add_axes((left / width, 1 - (top + SCALE_BAR) / height, bar_w / width, SCALE_BAR / height))
    axes.set_gid(COLORBAR)
    bar = fig.colorbar(ScalarMappable(Normalize(scale.low, high), scale.cmap), cax=axes, orientation="horizontal")
    positions = [scale.low, (scale.low + high) / 2, high]
    words = list(scale.ticks) if scale.ticks else [f"{value:.3g}" for value in (scale.low, (scale.low + scale.high) / 2,
                                                                                  scale.high)]
    if len(words) == 2:
        positions = [positions[0], positions[2]]
    bar.set_ticks(positions, labels=words)
    bar.ax.tick_params(labelsize=LABEL_PT, length=3, pad=1)
    labels = bar.ax.get_xticklabels()
    # The end labels stay within the bar, so that two panels' bars side by side do not run together.
    labels[0].set_horizontalalignment("left")
    labels[-1].set_horizontalalignment("right")
    bar.outline.set_linewidth(0.6)
    bar.set_label(scale.label, fontsize=LABEL_PT, labelpad=1)


def _figure(width: int, height: int) -> MplFigure:
    return new_figure((width / TILE_DPI, height / TILE_DPI), dpi=TILE_DPI, facecolor="white")


def _text(fig: MplFigure, width: int, height: int, x: float, y: float, text: str, size: float = LABEL_PT,
          ha: str = "left", **kwargs) -> None:
    """Text with its top at pixel (x, y) from the top-left corner."""
    fig.text(x / width, 1 - y / height, text, fontsize=size, ha=ha, va="top", **kwargs)


def chart(name: str, title: str, caption: str, width: int, height: int,
          draw: Callable[[MplFigure], None]) -> Figure:
    """A figure drawn with ordinary matplotlib axes (histograms, bar charts, small panels), ``width``
    x ``height`` pixels in the kit's style."""
    with styled():
        fig = _figure(width, height)
        draw(fig)
        png = png_bytes(fig)  # its exact pixel size: no tight bounding box
        drawn = record(fig)
    return Figure(name=name, title=title, png_bytes=png, caption=caption, size=(width, height), drawn=drawn)


# ---------------------------------------------------------------- pixels to colours


def image_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 image, C x H x W with C = 1 or 3, as H x W x 3 floats in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[None]
    if array.shape[0] == 1:
        return np.repeat(array[0][..., None], 3, axis=2)
    if array.shape[0] == 3:
        return array.transpose(1, 2, 0)
    return np.repeat(array.mean(0)[..., None], 3, axis=2)


def colormap_rgb(values: np.ndarray, low: float, high: float, cmap: str = "viridis") -> np.ndarray:
    """A 2-D array through a colormap, ``low`` and ``high`` at its ends (a flat range: the low end)."""
    from matplotlib import colormaps

    span = high - low
    scaled = (np.asarray(values, dtype=np.float64) - low) / span if span > 0 else np.zeros(np.shape(values))
    return colormaps[cmap](np.clip(scaled, 0, 1))[..., :3].astype(np.float32)


def signed_rgb(values: np.ndarray, peak: Optional[float] = None) -> np.ndarray:
    """Signed values (C x H x W, C = 1 or 3) as grey-centred colours: 0 -> mid grey, +-``peak`` (default
    max|v|) -> the ends."""
    values = np.asarray(values, dtype=np.float64)
    peak = float(np.abs(values).max()) if peak is None else float(peak)
    scaled = np.clip(0.5 + 0.5 * values / peak, 0, 1) if peak > 0 else np.full(values.shape, 0.5)
    if scaled.shape[0] == 3:
        return scaled.transpose(1, 2, 0).astype(np.float32)
    return np.repeat(scaled.mean(0)[..., None], 3, axis=2).astype(np.float32)
