"""The report's figures, drawn with matplotlib's Agg canvas and returned as PNG bytes.

Figures are made with ``matplotlib.figure.Figure`` directly, never through pyplot: no global
figure list to leak, no backend switch affecting the user's own plots, safe in a thread.
PNG rather than SVG: the grids of images and confusion matrices are raster anyway, a small
multiples figure with dozens of panels stays a fixed size in PNG (SVG grows with every point
and every glyph and renders slowly), and PNG files paste into any lab report (``--format md``).
They are drawn at 1.5x their display size (144 dpi) so they stay sharp on high-density screens.
"""

from __future__ import annotations

import io
import math
import textwrap
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cnnlab.report.data import Curve, Evaluation, Examples

DPI = 144  # 1.5 x the 96 pixels per inch of a CSS pixel
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d95f02"
STYLE = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "image.interpolation": "nearest",
}
METRIC_WORDS = {"accuracy": "accuracy (%)", "loss": "loss (log scale)"}


@contextmanager
def _style() -> Iterator[None]:
    with rc_context(STYLE):
        yield


def plain(text: str, width: Optional[int] = None) -> str:
    """User text shown as itself: matplotlib would read ``$...$`` as mathematics."""
    text = str(text).replace("$", r"\$")
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) if width else text


def png_bytes(figure: MplFigure, tight: bool = True) -> bytes:
    """The figure as PNG; ``tight`` trims the white border (one more layout pass)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight" if tight else None, pad_inches=0.08,
                   metadata={"Software": None})
    return buffer.getvalue()


def _values(curve: Curve, metric: str, split: str, source: dict) -> np.ndarray:
    values = source.get(f"{split}_{metric}") or []
    scale = 100.0 if metric == "accuracy" else 1.0
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
    with _style():
        figure = MplFigure(figsize=(width, height))
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
                ax.set_ylabel(METRIC_WORDS[metric])
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
    colors = _colors(len(curves))
    with _style():
        figure = MplFigure(figsize=(9.6, 3.3 + 0.18 * math.ceil(len(curves) / 3)), layout="constrained")
        axes = figure.subplots(1, 2)
        for ax, metric in zip(axes, ("accuracy", "loss")):
            for curve, color in zip(curves, colors):
                ax.plot(curve.epochs, _values(curve, metric, "val", curve.mean), "-", color=color, linewidth=1.6,
                        label=plain(_short_label(curve, architecture), 40))
                ax.plot(curve.epochs, _values(curve, metric, "train", curve.mean), "--", color=color, linewidth=1.0,
                        alpha=0.65)
            ax.set_xlabel("epoch")
            ax.set_ylabel(METRIC_WORDS[metric])
            if metric == "loss":
                _log_axis(ax, [_values(c, metric, split, c.mean) for c in curves for split in ("train", "val")])
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_title(f"{metric.capitalize()}: validation (solid) and train (dashed)")
        figure.suptitle(plain(f"Architecture {architecture}: its configurations compared"), fontsize=10)
        figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(curves), 4))
        return png_bytes(figure)


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


def _colors(count: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


# ---------------------------------------------------------------- the best configuration


def draw_confusion(confusion: np.ndarray, class_names: Sequence[str], split: str) -> bytes:
    """Counts and row-normalized percentages side by side, true class down, predicted across."""
    classes = len(class_names)
    totals = confusion.sum(axis=1, keepdims=True)
    normalized = 100.0 * confusion / np.maximum(totals, 1)
    annotate, ticks = classes <= 15, classes <= 40
    side = min(max(0.3 * classes + 1.2, 3.2), 8.0)
    longest = max((len(str(name)) for name in class_names), default=1)
    with _style(), rc_context({"axes.grid": False}):
        figure = MplFigure(figsize=(2 * side + 0.8, side + 0.06 * min(longest, 20)), layout="constrained")
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
        return png_bytes(figure)


def draw_examples(examples: Sequence[Examples], titles: Sequence[str], class_names: Sequence[str],
                  per_row: int = 8) -> bytes:
    """Rows of evaluation images, each with its true and predicted class and the confidence."""
    rows = [(group, title) for group, title in zip(examples, titles) if len(group.images)]
    with _style(), rc_context({"axes.grid": False}):
        figure = MplFigure(figsize=(1.12 * per_row, 1.5 * len(rows)), layout="constrained")
        grid = figure.subfigures(len(rows), 1, squeeze=False)[:, 0]
        for sub, (group, title) in zip(grid, rows):
            sub.suptitle(plain(title), x=0.0, ha="left", fontsize=9, fontweight="bold")
            axes = sub.subplots(1, per_row)
            for index, ax in enumerate(np.atleast_1d(axes)):
                ax.set_axis_off()
                if index >= len(group.images):
                    continue
                ax.imshow(_displayable(group.images[index]), cmap="gray", vmin=0, vmax=255)
                true, predicted = int(group.labels[index]), int(group.predicted[index])
                right = true == predicted
                ax.set_title(f"true {plain(_name(class_names, true), 12)}\npred {plain(_name(class_names, predicted), 12)}"
                             f" {100 * float(group.confidence[index]):.0f}%", fontsize=7,
                             color="#1a7f37" if right else "#b42318")
        return png_bytes(figure)


def _name(class_names: Sequence[str], index: int) -> str:
    return str(class_names[index]) if 0 <= index < len(class_names) else str(index)


def _displayable(image: np.ndarray) -> np.ndarray:
    """C x H x W uint8 -> H x W (gray) or H x W x 3 (colour)."""
    if image.ndim == 2:
        return image
    if image.shape[0] == 3:
        return np.transpose(image, (1, 2, 0))
    return image[0]


def evaluation_example_rows(evaluation: Evaluation, per_row: int = 8) -> tuple[list[Examples], list[str]]:
    """Which example rows to show: the first correct ones, then the most confident mistakes."""
    split = {"val": "validation", "test": "test"}.get(evaluation.examples_split or "", "evaluation")
    chosen, titles = [], []
    if "correct" in evaluation.examples:
        chosen.append(evaluation.examples["correct"])
        titles.append(f"Correctly classified {split} images")
    wrong = evaluation.examples.get("confident_wrong") or evaluation.examples.get("wrong")
    if wrong is not None:
        chosen.append(wrong)
        titles.append(f"Misclassified {split} images, most confident first")
    return [_first(group, per_row) for group in chosen], titles


def _first(group: Examples, count: int) -> Examples:
    return Examples(group.kind, group.images[:count], group.labels[:count], group.predicted[:count],
                    group.confidence[:count])
