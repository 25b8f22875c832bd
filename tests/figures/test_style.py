"""The kit's rendering: one PNG writer at the figure's own resolution, the style, the palette, one
colour per name in the spec's order and one line style per split."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cnnlab.figures import (
    DPI, MIN_FONT, PALETTE, SPLIT_LABEL, SPLIT_STYLE, TILE_DPI, Cell, Panel, chart, colors, colour_for, compose,
    new_figure, plain, png_bytes, styled,
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
        assert rcParams["font.size"] == 10 and rcParams["axes.grid"] is False
        sizes = [rcParams[key] for key in ("font.size", "axes.titlesize", "axes.labelsize", "legend.fontsize",
                                           "xtick.labelsize", "ytick.labelsize")]
        assert min(sizes) >= MIN_FONT == 9  # readable at 100% on a laptop screen
    with styled():
        assert rcParams["axes.grid"] is True
    assert rcParams["axes.grid"] == before


def test_palette_colours_come_first_and_many_stay_distinct():
    assert colors(2) == list(PALETTE[:2])
    assert len(set(map(str, colors(15)))) == 15
    assert plain("cost $5 and $6") == r"cost \$5 and \$6"
    assert plain("a long configuration name", 10).count("\n") == 2


def test_a_names_colour_is_its_place_in_the_spec_not_in_a_ranking():
    spec = ["none", "l2", "dropout", "batchnorm"]
    ranked = ["batchnorm", "dropout", "none", "l2"]  # however a figure orders what it shows
    assert [colour_for(name, spec) for name in ranked] == [PALETTE[3], PALETTE[2], PALETTE[0], PALETTE[1]]
    assert len({colour_for(name, spec) for name in spec}) == 4
    # Okabe and Ito's colour-blind-safe palette, first.
    assert PALETTE[:4] == ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
    assert colour_for("new", spec) == PALETTE[4]  # a name the spec lacks comes after its names
    many = [f"v{i}" for i in range(12)]
    assert len({colour_for(name, many) for name in many}) == 12
    assert all(isinstance(colour, str) and colour.startswith("#") for colour in colors(12))


def test_one_line_style_per_split_said_in_words():
    assert SPLIT_STYLE == {"train": "-", "val": "--", "test": ":"}
    assert SPLIT_LABEL == {"train": "train (solid)", "val": "validation (dashed)", "test": "test (dotted)"}
