"""The record of what a figure shows: read back from the drawn figure, so that it can catch a
figure that looks wrong (a legend over the data, a small font, a line in the wrong style)."""

from __future__ import annotations

import pickle

import numpy as np

from cnnlab.figures import PNG, Cell, Panel, Scale, chart, compose, new_figure, png_bytes, record, styled, tag


def _figure(legend_inside: bool):
    with styled():
        figure = new_figure((4, 3))
        figure.subplots_adjust(right=0.6)
        ax = figure.subplots()
        tag(ax.plot([1, 2, 3], [10, 50, 90], "--", color="#D55E00", label="l2")[0], "l2", "val")
        tag(ax.fill_between([1, 2, 3], [5, 40, 85], [15, 60, 95], color="#D55E00"), "l2", "val")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        if legend_inside:
            ax.legend(loc="center")
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
        png = png_bytes(figure)
        return PNG(png, record(figure))


def test_lines_bands_labels_and_legends_are_read_back_from_the_figure():
    drawn = _figure(legend_inside=False).drawn
    (line,) = drawn.lines
    assert (line.series, line.split, line.color, line.linestyle, line.y_range) == ("l2", "val", "#d55e00", "--", (10, 90))
    (band,) = drawn.bands
    assert band.series == "l2" and band.y_range == (5, 95)
    (axes,) = drawn.axes
    assert (axes.xlabel, axes.ylabel, axes.kind) == ("epoch", "accuracy (%)", "data")
    assert drawn.legends[0].entries == (("l2", "#d55e00", "--"),)
    assert drawn.legends_over_data() == [] and drawn.cut_off() == []
    assert drawn.colours() == {"l2": {"#d55e00"}} and drawn.styles() == {"val": {"--"}}


def test_a_legend_over_the_axes_is_caught():
    assert _figure(legend_inside=True).drawn.legends_over_data() == [(0, 0)]


def test_png_bytes_carry_their_record_and_stay_bytes():
    png = _figure(legend_inside=False)
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG") and png == bytes(png)
    again = pickle.loads(pickle.dumps(png))
    assert again == png


def test_tile_figures_record_their_colour_bars_and_text_sizes():
    figure = compose("t", "Title", "caption", [Panel([Cell(np.zeros((4, 4, 3)), "0", "zero")], 1, tile=16,
                                                     scale=Scale("viridis", -1.5, 2.0, "activation value"))])
    (scale,) = figure.drawn.scales
    assert (scale.label, scale.low, scale.high, scale.cmap) == ("activation value", -1.5, 2.0, "viridis")
    assert figure.drawn.smallest_font >= 9
    drawn = chart("c", "Chart", "caption", 300, 200, lambda fig: fig.subplots().bar([0, 1], [1, 2])).drawn
    assert drawn.axes[0].kind == "data" and drawn.size == (300, 200)
