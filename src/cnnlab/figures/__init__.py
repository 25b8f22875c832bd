"""The figure kit the report and explain both draw with: one style, two resolutions, one way to
render PNG bytes, the tile canvas and the one examples grid.

    from cnnlab.figures import DPI, new_figure, png_bytes, styled
    with styled():
        figure = new_figure((4, 3))
        figure.subplots().plot([1, 2, 3])
        png = png_bytes(figure, tight=True)

Stage-specific drawing stays in its stage (learning curves and the confusion matrix in
``cnnlab.report.figures``; filters, maps, patches and attributions in ``cnnlab.explain.draw``).
Shared kit, the lowest layer: imports only matplotlib, numpy and the standard library.
"""

from __future__ import annotations

from cnnlab.figures.canvas import NEUTRAL, Cell, Figure, Panel, chart, colormap_rgb, compose, image_rgb, signed_rgb
from cnnlab.figures.examples import ExampleRow, draw_examples
from cnnlab.figures.style import (
    DPI, MUTED, PALETTE, RIGHT, STYLE, TILE_DPI, WRONG, colors, new_figure, plain, png_bytes, styled,
)

__all__ = ["DPI", "MUTED", "NEUTRAL", "PALETTE", "RIGHT", "STYLE", "TILE_DPI", "WRONG", "Cell",
           "ExampleRow", "Figure", "Panel", "chart", "colormap_rgb", "colors", "compose", "draw_examples",
           "image_rgb", "new_figure", "plain", "png_bytes", "signed_rgb", "styled"]
