"""The report's own figures (learning curves, the confusion matrix) as PNG bytes, and which
example images it shows; style, resolution, rendering and the examples grid are the figure kit's
(``cnnlab.figures``).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cnnlab.figures import PALETTE, ExampleRow, Figure, colors, draw_examples, new_figure, plain, png_bytes, styled
from cnnlab.metrics import axis_label, is_percent
from cnnlab.report.data import Curve, Evaluation, Examples

TRAIN_COLOR, VAL_COLOR = PALETTE[0], PALETTE[1]  # blue and vermillion
EXAMPLES_PER_ROW = 8
EXAMPLE_TILE = 96  # px per example image: an inch on screen, as large as the report showed them before


def _values(curve: Curve, metric: str, split: str, source: dict) -> np.ndarray:
    values = source.get(f"{split}_{metric}") or []
    scale = 100.0 if is_percent(metric) else 1.0
    return np.array([np.nan if v is None else scale * v for v in values], dtype=float)


# ---------------------------------------------------------------- learning curves


def draw_small_multiples(curves: Sequence[Curve], metric: str, columns: int = 4) -> bytes:
    """Train and validation ``metric`` per configuration, one panel each, on shared axes."""
    count = len(curves)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    # Fixed margins in inches instead of constrained layout: every panel is alike, and laying out
    # dozens of axes automatically costs more than drawing them.
    panel_width, panel_height, left, right, top, bottom, gap_x, gap_y = 2.2, 1.45, 0.72, 0.12, 0.62, 0.5, 0.18, 0.52
    width = left + right + columns * panel_width + (columns - 1) * gap_x
    height = top + bottom + rows * panel_height + (rows - 1) * gap_y
    with styled():
        figure = new_figure((width, height))
        figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                               wspace=gap_x / panel_width, hspace=gap_y / panel_height)
        axes = np.atleast_1d(figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)).ravel()
        for index, (ax, curve) in enumerate(zip(axes, curves)):
            for split, color, style in (("train", TRAIN_COLOR, "-"), ("val", VAL_COLOR, "--")):
                mean = _values(curve, metric, split, curve.mean)
                ax.plot(curve.epochs, mean, style, color=color, linewidth=1.4)
                if curve.low:
                    ax.fill_between(curve.epochs, _values(curve, metric, split, curve.low),
                                    _values(curve, metric, split, curve.high), color=color, alpha=0.18, linewidth=0)
            if curve.best_epoch is not None:
                ax.axvline(curve.best_epoch, color="0.45", linewidth=0.8, linestyle=":")
            ax.set_title(plain(curve.configuration, 34), fontsize=8.5)
            if index % columns == 0:
                ax.set_ylabel(axis_label(metric))
            if index >= count - columns:
                ax.set_xlabel("epoch")
                ax.tick_params(labelbottom=True)
        for ax in axes[count:]:
            ax.set_visible(False)
        if metric == "loss":  # train losses near zero and a diverging validation loss, both readable
            _log_axis(axes[0], [_values(c, metric, split, c.mean) for c in curves for split in ("train", "val")])
        axes[0].xaxis.get_major_locator().set_params(integer=True)
        handles = [Line2D([], [], color=TRAIN_COLOR, linestyle="-"), Line2D([], [], color=VAL_COLOR, linestyle="--")]
        labels = ["train", "validation"]
        if any(curve.low for curve in curves):
            labels = ["train (mean; band: 95% t-interval over repeats)", "validation (mean; band: 95% t-interval)"]
        if any(curve.best_epoch is not None for curve in curves):
            handles.append(Line2D([], [], color="0.45", linestyle=":"))
            labels.append("best epoch")
        figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.04 / height), ncols=len(labels))
        return png_bytes(figure, tight=False)


def draw_overlay(architecture: str, curves: Sequence[Curve]) -> bytes:
    """One architecture's configurations on one pair of axes: validation solid, train dashed."""
    palette = colors(len(curves))
    with styled():
        figure = new_figure((9.6, 3.3 + 0.18 * math.ceil(len(curves) / 3)), layout="constrained")
        axes = figure.subplots(1, 2)
        for ax, metric in zip(axes, ("accuracy", "loss")):
            for curve, color in zip(curves, palette):
                ax.plot(curve.epochs, _values(curve, metric, "val", curve.mean), "-", color=color, linewidth=1.6,
                        label=plain(_short_label(curve, architecture), 40))
                ax.plot(curve.epochs, _values(curve, metric, "train", curve.mean), "--", color=color, linewidth=1.0,
                        alpha=0.65)
            ax.set_xlabel("epoch")
            ax.set_ylabel(axis_label(metric))
            if metric == "loss":
                _log_axis(ax, [_values(c, metric, split, c.mean) for c in curves for split in ("train", "val")])
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_title(f"{metric.capitalize()}: validation (solid) and train (dashed)")
        figure.suptitle(plain(f"Architecture {architecture}: its configurations compared"), fontsize=10)
        figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(curves), 4))
        return png_bytes(figure, tight=True)


def _log_axis(ax, series: Sequence[np.ndarray]) -> None:
    """A logarithmic y axis labelled with plain numbers (0.01, 0.1, 1; with 2 and 5 between
    when the data spans little), not 10^k and a crowd of minor labels."""
    values = np.concatenate([np.asarray(s, dtype=float) for s in series]) if series else np.array([])
    values = values[np.isfinite(values) & (values > 0)]
    ax.set_yscale("log")
    if not len(values):
        return
    decades = math.log10(values.max() / values.min())
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades > 2.5 else (1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _short_label(curve: Curve, architecture: str) -> str:
    prefix = f"{architecture}/"
    return curve.configuration[len(prefix):] if curve.configuration.startswith(prefix) else curve.configuration


# ---------------------------------------------------------------- the best configuration


def draw_confusion(confusion: np.ndarray, class_names: Sequence[str], split: str) -> bytes:
    """Counts and row-normalized percentages side by side, true class down, predicted across."""
    classes = len(class_names)
    totals = confusion.sum(axis=1, keepdims=True)
    normalized = 100.0 * confusion / np.maximum(totals, 1)
    annotate, ticks = classes <= 15, classes <= 40
    side = min(max(0.3 * classes + 1.2, 3.2), 8.0)
    longest = max((len(str(name)) for name in class_names), default=1)
    with styled({"axes.grid": False}):
        figure = new_figure((2 * side + 0.8, side + 0.06 * min(longest, 20)), layout="constrained")
        axes = figure.subplots(1, 2)
        for ax, values, title, text in (
            (axes[0], confusion, f"Counts ({split} split)", lambda v: f"{int(v)}"),
            (axes[1], normalized, "Row-normalized (% of each true class)", lambda v: f"{v:.0f}"),
        ):
            image = ax.imshow(values, cmap="Blues", vmin=0, aspect="equal")
            ax.set_title(title)
            index = "" if ticks else " (index; names in the per-class table)"
            ax.set_xlabel(f"predicted class{index}")
            ax.set_ylabel(f"true class{index}")
            if ticks:
                labels = [plain(name, 14) for name in class_names]
                ax.set_xticks(range(classes), labels, rotation=45 if longest > 2 else 0,
                              ha="right" if longest > 2 else "center", rotation_mode="anchor")
                ax.set_yticks(range(classes), labels)
            if annotate:
                high = values.max() or 1
                for (row, column), value in np.ndenumerate(values):
                    if value:
                        ax.text(column, row, text(value), ha="center", va="center", fontsize=7,
                                color="white" if value > 0.55 * high else "0.15")
            else:
                figure.colorbar(image, ax=ax, shrink=0.8)
            ax.tick_params(length=0)
        return png_bytes(figure, tight=True)


def evaluation_example_rows(evaluation: Evaluation, per_row: int = EXAMPLES_PER_ROW) -> list[ExampleRow]:
    """Which example rows to show: the first correct ones, then the most confident mistakes."""
    split = {"val": "validation", "test": "test"}.get(evaluation.examples_split or "", "evaluation")
    chosen = []
    if "correct" in evaluation.examples:
        chosen.append((evaluation.examples["correct"], f"Correctly classified {split} images"))
    wrong = evaluation.examples.get("confident_wrong") or evaluation.examples.get("wrong")
    if wrong is not None:
        chosen.append((wrong, f"Misclassified {split} images, most confident first"))
    return [_first(group, title, per_row) for group, title in chosen if len(group.images)]


def draw_evaluation_examples(evaluation: Evaluation) -> Optional[Figure]:
    """The chosen example rows in the kit's examples grid (None when there is nothing to show)."""
    rows = evaluation_example_rows(evaluation)
    if not rows:
        return None
    return draw_examples(rows, evaluation.class_names, per_row=EXAMPLES_PER_ROW, tile=EXAMPLE_TILE)


def _first(group: Examples, title: str, count: int) -> ExampleRow:
    return ExampleRow(title, group.kind, group.images[:count], group.labels[:count], group.predicted[:count],
                      group.confidence[:count])
