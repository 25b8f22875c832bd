"""Explain figures drawn as charts: weight/bias histograms (per run, and overlaid across variants)
and the activations of flat layers (dense, flatten) as bar charts, on the figure kit's ``chart``."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from cnnlab.explain.weights import NEAR_ZERO, LayerWeights
from cnnlab.figures import MUTED, PALETTE, Figure, chart

BINS = 60
NEAR_ZERO_TEXT = f"|w| < {NEAR_ZERO:g}"


def _percent(fraction: Optional[float]) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.1f}%"


def draw_histograms(layers: Sequence[LayerWeights], run_label: str, name: str = "histograms") -> Figure:
    """Per conv/dense layer: the histogram of its kernel weights and of its biases, with the
    fraction of near-zero weights printed on each panel."""
    rows = max(1, len(layers))
    width, height = 900, 60 + 170 * rows

    def draw(fig) -> None:
        fig.suptitle(f"Weights and biases of {run_label}", fontsize=11, fontweight="bold", x=0.01, ha="left")
        axes = fig.subplots(rows, 2, squeeze=False, gridspec_kw={"hspace": 0.75, "wspace": 0.18, "top": 1 - 55 / height,
                                                                  "bottom": 45 / height, "left": 0.07, "right": 0.98})
        for row, layer in enumerate(layers):
            _histogram(axes[row][0], layer.weights, f"{layer.name} kernel ({layer.weights.size:,} weights)",
                       f"near zero ({NEAR_ZERO_TEXT}): {_percent(layer.near_zero)}")
            if layer.biases is None:
                axes[row][1].set_axis_off()
                axes[row][1].text(0.5, 0.5, f"{layer.name}: no bias", ha="center", va="center", fontsize=8)
            else:
                _histogram(axes[row][1], layer.biases, f"{layer.name} bias ({layer.biases.size:,})",
                           f"near zero: {_percent(layer.bias_near_zero)}")

    caption = (f"Histograms of the kernel weights (left) and biases (right) of every conv and dense layer of "
               f"{run_label}, {BINS} bins each; near zero means {NEAR_ZERO_TEXT}.")
    return chart(name, f"Weight and bias histograms: {run_label}", caption, width, height, draw)


def _histogram(axes, values: np.ndarray, title: str, note: str) -> None:
    axes.hist(values, bins=BINS, color=PALETTE[0])
    axes.set_title(title, fontsize=8.5, loc="left")
    axes.set_title(note, fontsize=7.5, loc="right", color=MUTED)
    axes.tick_params(labelsize=7)
    axes.set_ylabel("count", fontsize=7)


def draw_histogram_overlay(variants: dict[str, Sequence[LayerWeights]], architecture: str,
                           name: str = "histograms_variants") -> Figure:
    """The kernel (and bias) histograms of one architecture's variants overlaid, layer by layer.

    Shared bins per panel and a log count axis, so that L1's spike at zero and L2's narrower
    spread show side by side; the legend gives each variant's near-zero fraction.
    """
    names: list[str] = []
    for layers in variants.values():
        names += [layer.name for layer in layers if layer.name not in names]
    rows = max(1, len(names))
    width, height = 1000, 70 + 190 * rows

    def draw(fig) -> None:
        fig.suptitle(f"Weights of {architecture} across its variants", fontsize=11, fontweight="bold", x=0.01,
                     ha="left")
        axes = fig.subplots(rows, 2, squeeze=False, gridspec_kw={"hspace": 0.7, "wspace": 0.16, "top": 1 - 60 / height,
                                                                  "bottom": 40 / height, "left": 0.06, "right": 0.98})
        for row, layer_name in enumerate(names):
            for col, part in enumerate(("weights", "biases")):
                ax = axes[row][col]
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
                for i, (variant, values, near) in enumerate(series):
                    ax.hist(values, bins=bins, histtype="step", linewidth=1.3, color=PALETTE[i % len(PALETTE)],
                            label=f"{variant}: {_percent(near)} near 0")
                what = "kernel" if part == "weights" else "bias"
                if part == "weights":  # the spike at zero and the tails on one axis
                    ax.set_yscale("log")
                    ax.set_ylabel("count (log)", fontsize=7)
                else:
                    ax.set_ylabel("count", fontsize=7)
                ax.set_title(f"{layer_name} {what}", fontsize=8.5, loc="left")
                ax.tick_params(labelsize=7)
                ax.legend(fontsize=7, loc="upper right", frameon=False)

    caption = (f"Kernel weights (left) and biases (right) of each layer of {architecture}, one outline per "
               f"variant, shared bins, log counts for kernels; the legend gives the fraction near zero ({NEAR_ZERO_TEXT}).")
    return chart(name, f"Weight histograms across the variants of {architecture}", caption, width, height, draw)


def draw_units(activation, layer: str, source: str, name: Optional[str] = None,
               unit_names: Optional[Sequence[str]] = None) -> Figure:
    """A flat layer's activations (dense, flatten, global pooling) for one input, as a bar chart.

    ``unit_names`` labels the bars (the class names, for the classifier's logits).
    """
    values = np.asarray(activation.detach().cpu() if hasattr(activation, "detach") else activation,
                        dtype=np.float64).reshape(-1)
    width, height = 900, 300
    tiles = {}

    def draw(fig) -> None:
        ax = fig.add_axes((0.07, 0.16, 0.9, 0.66))
        ax.bar(np.arange(len(values)), values, width=1.0 if len(values) > 64 else 0.8, color=PALETTE[0])
        ax.axhline(0, color="#555555", linewidth=0.6)
        ax.set_xlim(-0.5, len(values) - 0.5)
        if unit_names is not None and len(unit_names) == len(values):
            ax.set_xticks(np.arange(len(values)), [str(n) for n in unit_names],
                          rotation=0 if max(len(str(n)) for n in unit_names) <= 3 else 45, ha="center" if
                          max(len(str(n)) for n in unit_names) <= 3 else "right")
            ax.set_xlabel("class (logits, before softmax)", fontsize=8)
        else:
            ax.set_xlabel("unit index", fontsize=8)
        ax.set_ylabel("activation", fontsize=8)
        ax.tick_params(labelsize=7)
        fig.text(0.01, 0.97, f"{layer} ({len(values)},) for {source}", fontsize=11, fontweight="bold", va="top")
        active = int(np.count_nonzero(values))
        fig.text(0.01, 0.89, f"Output of {layer}, {len(values)} units; {active} non-zero; "
                 f"min {values.min():.3g}, max {values.max():.3g}.", fontsize=7.5, va="top", color=MUTED)
        fig.canvas.draw()
        box = ax.get_window_extent()
        tiles["units"] = (int(box.x0), int(height - box.y1), int(box.x1), int(height - box.y0))

    figure = chart(name or f"maps_{layer}", f"{layer} ({len(values)},) for {source}",
                   f"Activations of the {len(values)} units of {layer} for input {source}.", width, height, draw)
    return Figure(figure.name, figure.title, figure.png_bytes, figure.caption, figure.size, tiles)
