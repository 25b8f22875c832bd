"""Explain figures drawn as charts: weight/bias histograms (per run, and overlaid across variants)
and the activations of flat layers (dense, flatten) as bar charts, on the figure kit's ``chart``.

Laid out in pixels (the kit's tile resolution), legends beside the axes rather than over the
bars, every axis labelled; a variant's colour is the kit's ``colour_for`` in the spec's order,
as in the report's learning curves.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from cnnlab.explain.weights import NEAR_ZERO, LayerWeights
from cnnlab.figures import MIN_FONT, MUTED, PALETTE, TILE_DPI, Figure, chart, colour_for, tag

BINS = 60
NEAR_ZERO_TEXT = f"|w| < {NEAR_ZERO:g}"
HEADER = 60  # px above the first row of panels: the title
ROW = 215  # px a row of panels takes: its title, the axes, the tick labels and the axis label
AXES_H = 135


def _percent(fraction: Optional[float]) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.1f}%"


def _axes(fig, width: int, height: int, left: int, top: int, w: int, h: int = AXES_H):
    """Axes at a pixel box (left, top from the top-left corner, w x h)."""
    return fig.add_axes((left / width, 1 - (top + h) / height, w / width, h / height))


def draw_histograms(layers: Sequence[LayerWeights], run_label: str, name: str = "histograms",
                    colour: str = PALETTE[0]) -> Figure:
    """Per conv/dense layer: the histogram of its kernel weights and of its biases, with the
    fraction of near-zero weights printed on each panel; ``colour``: the run's variant's."""
    rows = max(1, len(layers))
    width, height = 960, HEADER + ROW * rows
    axes_w, left, gap = 390, 75, 85

    def draw(fig) -> None:
        fig.text(12 / width, 1 - 12 / height, f"Weights and biases of {run_label}", fontsize=12, fontweight="bold",
                 va="top")
        for row, layer in enumerate(layers):
            top = HEADER + row * ROW + 22
            kernel = _axes(fig, width, height, left, top, axes_w)
            _histogram(kernel, layer.weights, f"{layer.name} kernel ({layer.weights.size:,})", "weight value",
                       f"near 0: {_percent(layer.near_zero)}", colour)
            bias = _axes(fig, width, height, left + axes_w + gap, top, axes_w)
            if layer.biases is None:
                bias.set_axis_off()
                bias.text(0.5, 0.5, f"{layer.name}: no bias", ha="center", va="center", fontsize=10)
            else:
                _histogram(bias, layer.biases, f"{layer.name} bias ({layer.biases.size:,})", "bias value",
                           f"near 0: {_percent(layer.bias_near_zero)}", colour)

    caption = (f"Histograms of the kernel weights (left) and biases (right) of every conv and dense layer of "
               f"{run_label}, {BINS} bins each; near 0 means {NEAR_ZERO_TEXT}.")
    return chart(name, f"Weight and bias histograms: {run_label}", caption, width, height, draw)


def _histogram(axes, values: np.ndarray, title: str, xlabel: str, note: str, colour: str) -> None:
    axes.hist(values, bins=BINS, color=colour)
    axes.set_title(title, loc="left")
    axes.set_title(note, loc="right", color=MUTED, fontsize=MIN_FONT)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    axes.yaxis.get_major_locator().set_params(integer=True)


def draw_histogram_overlay(variants: dict[str, Sequence[LayerWeights]], architecture: str,
                           name: str = "histograms_variants", order: Optional[Sequence[str]] = None) -> Figure:
    """The kernel (and bias) histograms of one architecture's variants overlaid, layer by layer.

    Shared bins per panel and a log count axis, so that L1's spike at zero and L2's narrower
    spread show side by side; each panel's legend, beside it, gives each variant's near-zero
    fraction. ``order`` is the spec's order of variants, which sets their colours.
    """
    order = [*(order or ()), *(v for v in variants if v not in (order or ()))]
    names: list[str] = []
    for layers in variants.values():
        names += [layer.name for layer in layers if layer.name not in names]
    rows = max(1, len(names))
    longest = max((len(v) for v in variants), default=4)
    # The handle and its gaps, then the widest label at 9.5 pt (0.52 em a character of prose).
    legend_w = 50 + int((longest + len(": 100.0% near 0")) * 9.5 * TILE_DPI / 72 * 0.52)
    axes_w, left, gap = 300, 75, 80
    width, height = left + 2 * (axes_w + legend_w) + gap, HEADER + ROW * rows

    def draw(fig) -> None:
        fig.text(12 / width, 1 - 12 / height, f"Weights of {architecture} across its variants", fontsize=12,
                 fontweight="bold", va="top")
        for row, layer_name in enumerate(names):
            for col, part in enumerate(("weights", "biases")):
                ax = _axes(fig, width, height, left + col * (axes_w + legend_w + gap), HEADER + row * ROW + 22, axes_w)
                series = []
                for variant, layers in variants.items():
                    found = next((layer for layer in layers if layer.name == layer_name), None)
                    values = None if found is None else getattr(found, part)
                    if values is not None and values.size:
                        near = found.near_zero if part == "weights" else found.bias_near_zero
                        series.append((variant, values, near))
                if not series:
                    ax.set_axis_off()
                    continue
                low = min(float(v.min()) for _, v, _ in series)
                high = max(float(v.max()) for _, v, _ in series)
                bins = np.linspace(low, high if high > low else low + 1e-6, BINS + 1)
                for variant, values, near in series:
                    _, _, patches = ax.hist(values, bins=bins, histtype="step", linewidth=1.4,
                                            color=colour_for(variant, order), label=f"{variant}: {_percent(near)} near 0")
                    for patch in patches:
                        tag(patch, variant, "")
                what = "kernel" if part == "weights" else "bias"
                if part == "weights":  # the spike at zero and the tails on one axis
                    ax.set_yscale("log")
                    ax.set_ylabel("count (log scale)")
                else:
                    ax.set_ylabel("count")
                    ax.yaxis.get_major_locator().set_params(integer=True)
                ax.set_xlabel("weight value" if part == "weights" else "bias value")
                ax.set_title(f"{layer_name} {what}", loc="left")
                ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, handlelength=1.5)

    caption = (f"Kernel weights (left) and biases (right) of each layer of {architecture}, one outline per "
               f"variant, shared bins, log counts for kernels; each legend gives the fraction near 0 "
               f"({NEAR_ZERO_TEXT}).")
    return chart(name, f"Weight histograms across the variants of {architecture}", caption, width, height, draw)


def draw_units(activation, layer: str, source: str, name: Optional[str] = None,
               unit_names: Optional[Sequence[str]] = None) -> Figure:
    """A flat layer's activations (dense, flatten, global pooling) for one input, as a bar chart.

    ``unit_names`` labels the bars (the class names, for the classifier's logits).
    """
    values = np.asarray(activation.detach().cpu() if hasattr(activation, "detach") else activation,
                        dtype=np.float64).reshape(-1)
    width, height = 900, 330
    tiles = {}

    def draw(fig) -> None:
        ax = fig.add_axes((0.08, 0.2, 0.9, 0.56))
        ax.bar(np.arange(len(values)), values, width=1.0 if len(values) > 64 else 0.8, color=PALETTE[0])
        ax.axhline(0, color="#555555", linewidth=0.6)
        ax.set_xlim(-0.5, len(values) - 0.5)
        if unit_names is not None and len(unit_names) == len(values):
            ax.set_xticks(np.arange(len(values)), [str(n) for n in unit_names],
                          rotation=0 if max(len(str(n)) for n in unit_names) <= 3 else 45, ha="center" if
                          max(len(str(n)) for n in unit_names) <= 3 else "right")
            ax.set_xlabel("class (logits, before softmax)")
        else:
            ax.set_xlabel("unit index")
        ax.set_ylabel("activation value")
        fig.text(0.01, 0.97, f"{layer} ({len(values)},) for {source}", fontsize=12, fontweight="bold", va="top")
        active = int(np.count_nonzero(values))
        fig.text(0.01, 0.89, f"Output of {layer}, {len(values)} units; {active} non-zero; "
                 f"min {values.min():.3g}, max {values.max():.3g}.", fontsize=MIN_FONT, va="top", color=MUTED)
        fig.canvas.draw()
        box = ax.get_window_extent()
        tiles["units"] = (int(box.x0), int(height - box.y1), int(box.x1), int(height - box.y0))

    figure = chart(name or f"maps_{layer}", f"{layer} ({len(values)},) for {source}",
                   f"Activations of the {len(values)} units of {layer} for input {source}.", width, height, draw)
    return Figure(figure.name, figure.title, figure.png_bytes, figure.caption, figure.size, tiles, figure.drawn)
