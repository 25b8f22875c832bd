"""The figure kit the report and explain both draw with: one style, two resolutions, one way to
render PNG bytes, the tile canvas and the one examples grid.

    from cnnlab.figures import DPI, new_figure, png_bytes, styled
    with styled():
        figure = new_figure((4, 3))
        figure.subplots().plot([1, 2, 3])
        png = png_bytes(figure, tight=True)

Every figure's look (fonts, the colour of each variant, the line style of each split) is
``style``'s; ``drawn`` records what a figure shows, for tests to look at.

Stage-specific drawing stays in its stage (learning curves and the confusion matrix in
``cnnlab.report.figures``; filters, maps, patches and attributions in ``cnnlab.explain.draw``).
Shared kit, the lowest layer: imports only matplotlib, numpy and the standard library.
"""

from __future__ import annotations

from cnnlab.figures.canvas import (
    NEUTRAL, Cell, Figure, Panel, Scale, chart, colormap_rgb, compose, image_rgb, signed_rgb, text_px,
)
from cnnlab.figures.drawn import PNG, Drawn, record, tag
from cnnlab.figures.examples import ExampleRow, draw_examples, excluding, first
from cnnlab.figures.style import (
    BEST_EPOCH_STYLE, DPI, MIN_FONT, MUTED, NEUTRAL_LINE, PALETTE, RIGHT, SPLIT_LABEL, SPLIT_STYLE, STYLE, TILE_DPI,
    WRONG, colors, colour_for, new_figure, plain, png_bytes, styled,
)

__all__ = ["BEST_EPOCH_STYLE", "DPI", "MIN_FONT", "MUTED", "NEUTRAL", "NEUTRAL_LINE", "PALETTE", "PNG", "RIGHT",
           "SPLIT_LABEL", "SPLIT_STYLE", "STYLE", "TILE_DPI", "WRONG", "Cell", "Drawn", "ExampleRow", "Figure", "Panel",
           "Scale", "chart", "colormap_rgb", "colors", "colour_for", "compose", "draw_examples", "excluding", "first",
           "image_rgb", "new_figure", "plain", "png_bytes", "record", "signed_rgb", "styled", "tag", "text_px"]
