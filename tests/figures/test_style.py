"""The kit's rendering: one PNG writer at the figure's own resolution, the style, the palette."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cnnlab.figures import (
    DPI, PALETTE, TILE_DPI, Cell, Panel, chart, colors, compose, new_figure, plain, png_bytes, styled,
)


def _info(png: bytes) -> tuple[tuple[int, int], dict]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size, dict(image.info)


def test_png_bytes_writes_the_figure_at_its_own_resolution_without_a_software_stamp():
    with styled():
        figure = new_figure((2.0, 1.0))
        figure.subplots().plot([0, 1], [1, 0])
        png = png_bytes(figure)
    size, info = _info(png)
    assert size == (2 * DPI, DPI)
    assert round(info["dpi"][0]) == DPI and "Software" not in info
    with styled():
        assert png == png_bytes(figure)  # the same figure, the same bytes
        tight = png_bytes(figure, tight=True)
    assert _info(tight)[0] != size  # the border trimmed


def test_tile_figures_and_charts_are_their_pixel_size_at_the_tile_resolution():
    tiles = compose("t", "Title", "caption", [Panel([Cell(np.zeros((4, 4, 3)), "0", "zero")], 1, tile=16)])
    drawn = chart("c", "Chart", "caption", 300, 200, lambda fig: fig.subplots().bar([0, 1], [1, 2], color=PALETTE[0]))
    for figure in (tiles, drawn):
        size, info = _info(figure.png_bytes)
        assert size == figure.size and round(info["dpi"][0]) == TILE_DPI and "Software" not in info
    assert drawn.size == (300, 200)


def test_style_is_applied_inside_and_undone_after():
    from matplotlib import rcParams

    before = rcParams["axes.grid"]
    with styled({"axes.grid": False}):
        assert rcParams["font.size"] == 8.5 and rcParams["axes.grid"] is False
    with styled():
        assert rcParams["axes.grid"] is True
    assert rcParams["axes.grid"] == before


def test_palette_colours_come_first_and_many_stay_distinct():
    assert colors(2) == list(PALETTE[:2])
    assert len(set(map(str, colors(15)))) == 15
    assert plain("cost $5 and $6") == r"cost \$5 and \$6"
    assert plain("a long configuration name", 10).count("\n") == 2
