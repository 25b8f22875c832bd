"""The one grid of classified example images, used by the report's examples and by explain's.

Each row is one kind of example (correct, wrong, most confident mistakes) under its title; each
tile is labelled with the true class, the predicted class and its confidence, green when right
and red when wrong. Drawn on the tile canvas, so every image pixel is a whole square of screen
pixels and the figure knows each tile's box (``Figure.tiles``, keyed ``"<kind> <i>"``) and which
images each row shows (``Figure.drawn.images``: split indices, or row positions without them).

A run stores its first mistakes and its most confident ones apart, and with few mistakes they
are the same images: ``excluding`` drops from one row what another already shows, so that no
image is shown twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from cnnlab.figures.canvas import Cell, Figure, Panel, compose, image_rgb
from cnnlab.figures.style import RIGHT, WRONG, plain

COLUMN_GAP = 12  # px at least between example tiles, so that neighbours do not read as one image


@dataclass(frozen=True)
class ExampleRow:
    """One row: uint8 images (N x C x H x W, C = 1 or 3), their true and predicted class indices and
    the confidence (softmax probability) of the prediction; ``indices`` (positions in the split),
    when given, are shown as ``split:index``."""

    title: str
    kind: str
    images: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    indices: Optional[np.ndarray] = None


def first(row: ExampleRow, count: int) -> ExampleRow:
    """The row's first ``count`` images."""
    return replace(row, images=row.images[:count], labels=row.labels[:count], predicted=row.predicted[:count],
                   confidence=row.confidence[:count], indices=None if row.indices is None else row.indices[:count])


def excluding(row: ExampleRow, shown: Sequence[ExampleRow]) -> ExampleRow:
    """The row without the images the ``shown`` rows hold (by split index, else by pixels)."""
    def key(source: ExampleRow, i: int):
        if source.indices is not None and row.indices is not None:
            return int(source.indices[i])
        return source.images[i].tobytes()

    seen = {key(other, i) for other in shown for i in range(len(other.images))}
    keep = np.array([key(row, i) not in seen for i in range(len(row.images))], dtype=bool)
    return replace(row, images=row.images[keep], labels=row.labels[keep], predicted=row.predicted[keep],
                   confidence=row.confidence[keep], indices=None if row.indices is None else row.indices[keep])


def draw_examples(rows: Sequence[ExampleRow], class_names: Sequence[str], *, per_row: Optional[int] = None,
                  split: str = "", tile: int = 72, name: str = "examples", title: str = "", subtitle: str = "",
                  caption: Optional[str] = None) -> Figure:
    """Rows of example images under their titles, ``per_row`` columns (default: the longest row),
    every row cut to that many; ``caption`` defaults to the subtitle."""
    cols = per_row or max([len(row.images) for row in rows] + [1])
    cells = [[_cell(row, i, class_names, split) for i in range(min(cols, len(row.images)))] for row in rows]
    panels = [Panel(row_cells + [Cell(None)] * (cols - len(row_cells)), cols, tile=tile, title=plain(row.title))
              for row, row_cells in zip(rows, cells)]
    if not panels:
        panels = [Panel([Cell(None, "no examples stored")], 1, tile=tile)]
    # Each row is a panel of its own; the widest labels set one column gap, so the columns align.
    gap = max([COLUMN_GAP] + [panel.col_gap for panel in panels])
    panels = [Panel(panel.cells, panel.cols, tile=tile, title=panel.title, min_col_gap=gap) for panel in panels]
    figure = compose(name, title, subtitle if caption is None else caption, panels, subtitle=subtitle, stacked=True)
    if figure.drawn is not None:
        for row in rows:
            shown = min(cols, len(row.images))
            where = row.indices[:shown] if row.indices is not None else range(shown)
            figure.drawn.images[row.kind] = [int(i) for i in where]
    return figure


def _cell(row: ExampleRow, i: int, class_names: Sequence[str], split: str) -> Cell:
    true, predicted = int(row.labels[i]), int(row.predicted[i])
    where = f"{split}:{int(row.indices[i])} " if row.indices is not None else ""
    label = (f"{where}true {plain(_name(class_names, true))}\n"
             f"pred {plain(_name(class_names, predicted))} {100 * float(row.confidence[i]):.0f}%")
    return Cell(image_rgb(row.images[i]), label, f"{row.kind} {i}", RIGHT if true == predicted else WRONG)


def _name(class_names: Sequence[str], index: int) -> str:
    return str(class_names[index]) if 0 <= index < len(class_names) else str(index)
