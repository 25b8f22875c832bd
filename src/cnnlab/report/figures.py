"""The report's own figures (learning curves, the confusion matrix) as PNG bytes, and which
example images it shows; style, resolution, rendering and the examples grid are the figure kit's
(``cnnlab.figures``).

Each figure follows the kit's rules: a variant's colour from its place in the spec
(``CurveContext``, never the ranking), a line style per split, legends and notes outside the
axes, values only within the metric's range (accuracy 0 to 100%, loss above 0). Each returns
``PNG`` bytes that carry what they show (``.drawn``).
"""

from __future__ import annotations

import math
import textwrap
from typing import Optional, Sequence

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cnnlab.figures import (
    BEST_EPOCH_STYLE, MIN_FONT, MUTED, NEUTRAL_LINE, PNG, SPLIT_LABEL, SPLIT_STYLE, ExampleRow, Figure, colour_for,
    draw_examples, excluding, first, new_figure, plain, png_bytes, record, styled, tag,
)
from cnnlab.figures.drawn import NOTE
from cnnlab.metrics import is_percent
from cnnlab.report.data import Curve, Evaluation, Examples
from cnnlab.report.known_effects import CurveContext, Effect

EXAMPLES_PER_ROW = 8  # without the spec's explain: examples counts
EXAMPLE_TILE = 96  # px per example image: an inch on screen, as large as the report showed them before
SPLITS = ("train", "val")  # the splits a learning curve has (a final's adds the test split: draw_overlay's splits)


def value_range(metric: str) -> tuple[float, float]:
    """The values a metric can take, as drawn: accuracy 0 to 100 (%), a loss from 0 up."""
    return (0.0, 100.0) if is_percent(metric) and "accuracy" in metric else (0.0, math.inf)


def _values(curve: Curve, metric: str, split: str, source: dict) -> np.ndarray:
    values = source.get(f"{split}_{metric}") or []
    scale = 100.0 if is_percent(metric) else 1.0
    drawn = np.array([np.nan if v is None else scale * v for v in values], dtype=float)
    low, high = value_range(metric)
    return np.clip(drawn, low, high)  # NaN stays NaN: an epoch without the metric


def _draw_curve(ax, curve: Curve, metric: str, colour: str, width: float = 1.5,
                splits: Sequence[str] = SPLITS) -> list[np.ndarray]:
    """One configuration's curves of ``splits`` (and bands) in the variant's colour, one line style
    per split; the values drawn, for the axis range."""
    drawn = []
    for split in splits:
        mean = _values(curve, metric, split, curve.mean)
        if not np.isfinite(mean).any():
            continue
        tag(ax.plot(curve.epochs, mean, SPLIT_STYLE[split], color=colour, linewidth=width)[0], curve.variant, split)
        drawn.append(mean)
        if curve.low and curve.high:
            low, high = _values(curve, metric, split, curve.low), _values(curve, metric, split, curve.high)
            tag(ax.fill_between(curve.epochs, low, high, color=colour, alpha=0.16, linewidth=0), curve.variant, split)
            drawn += [low, high]
    return drawn


def _set_range(ax, metric: str, drawn: Sequence[np.ndarray]) -> None:
    """The y axis over what was drawn, never past the metric's range (no 105% accuracy, no negative loss)."""
    if metric == "loss":  # train losses near zero and a diverging validation loss, both readable
        _log_axis(ax, drawn)
        return
    values = np.concatenate([np.asarray(v, dtype=float) for v in drawn]) if drawn else np.array([])
    values = values[np.isfinite(values)]
    if not values.size:
        return
    low, high = value_range(metric)
    pad = max(0.04 * (values.max() - values.min()), 0.5)
    ax.set_ylim(max(low, values.min() - pad), min(high, values.max() + pad))


def _split_handles(splits: Sequence[str] = SPLITS, labels: Optional[dict[str, str]] = None) -> list[tuple[Line2D, str]]:
    labels = labels or SPLIT_LABEL
    return [(Line2D([], [], color=NEUTRAL_LINE, linestyle=SPLIT_STYLE[s], linewidth=1.5), labels.get(s, SPLIT_LABEL[s]))
            for s in splits]


def _variant_handles(curves: Sequence[Curve], context: CurveContext, marks: dict[str, str]) -> list[tuple[Patch, str]]:
    shown = [v for v in context.variants if any(c.variant == v for c in curves)]
    shown += [v for v in dict.fromkeys(c.variant for c in curves) if v not in shown]
    return [(Patch(color=colour_for(v, context.variants)), plain(v + marks.get(v, ""))) for v in shown]


def _footnotes(effects: Sequence[Effect], width_in: float, notes: Sequence[str] = ()) -> list[str]:
    """Each kind of effect explained once, then ``notes``, wrapped to the figure's width."""
    chars = max(40, int(width_in * 72 / (MIN_FONT * 0.55)))
    texts = list(dict.fromkeys([effect.long for effect in effects] + list(notes)))
    return [line for text in texts for line in textwrap.wrap(text, chars)]


# ---------------------------------------------------------------- learning curves


def draw_small_multiples(curves: Sequence[Curve], metric: str, columns: int = 4,
                         context: Optional[CurveContext] = None) -> PNG:
    """Train and validation ``metric`` per configuration, one panel each, on shared axes; each
    panel in its variant's colour, with the known effect that explains it above it."""
    context = (context or CurveContext()).covering(curves)
    count = len(curves)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    effects = {curve.configuration: context.effects_of(curve) for curve in curves}
    noted = any(effects.values())
    handles = _split_handles(SPLITS, context.labels)
    if any(curve.low for curve in curves):
        handles.append((Patch(color=NEUTRAL_LINE, alpha=0.16), "band: 95% t-interval of the mean over repeats"))
    if any(curve.best_epoch is not None for curve in curves):
        handles.append((Line2D([], [], **BEST_EPOCH_STYLE), "best epoch"))
    handles += _variant_handles(curves, context, {})
    # Fixed margins in inches instead of constrained layout: every panel is alike, and laying out
    # dozens of axes automatically costs more than drawing them.
    panel_width, panel_height, left, right, gap_x = 2.4, 1.55, 0.8, 0.15, 0.2
    width = left + right + columns * panel_width + (columns - 1) * gap_x
    ncols = max(1, min(len(handles), int(width / 2.3)))
    legend_h = 0.26 * math.ceil(len(handles) / ncols) + 0.1
    note_h = 0.2 if noted else 0.0
    top = legend_h + 0.32 + note_h
    gap_y = 0.62 + note_h
    footnotes = _footnotes([e for found in effects.values() for e in found], width - 0.3)
    bottom = 0.55 + (0.19 * len(footnotes) + 0.1 if footnotes else 0.0)
    height = top + bottom + rows * panel_height + (rows - 1) * gap_y
    with styled():
        figure = new_figure((width, height))
        figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                               wspace=gap_x / panel_width, hspace=gap_y / panel_height)
        axes = np.atleast_1d(figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)).ravel()
        drawn: list[np.ndarray] = []
        for index, (ax, curve) in enumerate(zip(axes, curves)):
            drawn += _draw_curve(ax, curve, metric, colour_for(curve.variant, context.variants))
            if curve.best_epoch is not None:
                ax.axvline(curve.best_epoch, **BEST_EPOCH_STYLE)
            found = effects[curve.configuration]
            ax.set_title(plain(curve.configuration, 34), pad=16 if found else 6)
            if found:
                ax.annotate("; ".join(e.short for e in found), xy=(0.5, 1), xycoords="axes fraction", xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=MIN_FONT, color=MUTED,
                            gid=NOTE)
            if index % columns == 0:
                ax.set_ylabel(context.ylabel(metric))
            if index >= count - columns:
                ax.set_xlabel("epoch")
                ax.tick_params(labelbottom=True)
        for ax in axes[count:]:
            ax.set_visible(False)
        _set_range(axes[0], metric, drawn)
        axes[0].xaxis.get_major_locator().set_params(integer=True)
        figure.legend(*zip(*handles), loc="upper center", bbox_to_anchor=(0.5, 1 - 0.04 / height), ncols=ncols)
        for i, line in enumerate(footnotes):
            figure.text(0.15 / width, (0.1 + 0.19 * (len(footnotes) - 1 - i)) / height, line, fontsize=MIN_FONT,
                        color=MUTED, gid=NOTE)
        png = png_bytes(figure, tight=False)
        return PNG(png, record(figure))


def draw_overlay(architecture: str, curves: Sequence[Curve], context: Optional[CurveContext] = None,
                 splits: Sequence[str] = SPLITS, title: Optional[str] = None, notes: Sequence[str] = ()) -> PNG:
    """One architecture's configurations on one pair of axes: a colour per variant (the spec's
    order), a line style per split; the legend and any note below the axes.

    A final's curves pass ``splits`` with "test", a ``title`` and ``notes`` (said under the axes
    in place of the known effects)."""
    context = (context or CurveContext()).covering(curves)
    effects = [] if notes else [e for curve in curves for e in context.effects_of(curve)]
    marks = {} if notes else {curve.variant: " (" + "; ".join(e.short for e in context.effects_of(curve)) + ")"
                              for curve in curves if context.effects_of(curve)}
    # A test split drawn only where measured per epoch (a final whose study set evaluate.test_curves: false has none).
    drawn_splits = [s for s in splits if s != "test" or any(v is not None for c in curves
                                                             for v in c.mean.get("test_accuracy", []))]
    handles = _variant_handles(curves, context, marks) + _split_handles(drawn_splits, context.labels)
    width, left, right, gap, top, axes_h = 9.6, 0.75, 0.2, 0.9, 0.75, 2.6
    ncols = max(1, min(len(handles), 2 if marks or notes else 4))
    legend_h = 0.26 * math.ceil(len(handles) / ncols) + 0.15
    footnotes = _footnotes(effects, width - 0.3, notes)
    bottom = 0.5 + legend_h + (0.19 * len(footnotes) + 0.05 if footnotes else 0.0)
    height = top + axes_h + bottom
    axes_w = (width - left - right - gap) / 2
    with styled():
        figure = new_figure((width, height))
        axes = [figure.add_axes(((left + i * (axes_w + gap)) / width, bottom / height, axes_w / width, axes_h / height))
                for i in range(2)]
        for ax, metric in zip(axes, ("accuracy", "loss")):
            drawn: list[np.ndarray] = []
            for curve in curves:
                drawn += _draw_curve(ax, curve, metric, colour_for(curve.variant, context.variants), width=1.6,
                                     splits=drawn_splits)
            ax.set_xlabel("epoch")
            ax.set_ylabel(context.ylabel(metric))
            _set_range(ax, metric, drawn)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_title(metric.capitalize())
        figure.suptitle(plain(title or f"Architecture {architecture}: its configurations compared"), fontsize=11,
                        y=1 - 0.1 / height, va="top")
        legend_top = (bottom - 0.5) / height
        figure.legend(*zip(*handles), loc="upper center", bbox_to_anchor=(0.5, legend_top), ncols=ncols)
        for i, line in enumerate(footnotes):
            figure.text(0.15 / width, (0.08 + 0.19 * (len(footnotes) - 1 - i)) / height, line, fontsize=MIN_FONT,
                        color=MUTED, gid=NOTE)
        png = png_bytes(figure, tight=True)
        return PNG(png, record(figure))


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
                        ax.text(column, row, text(value), ha="center", va="center", fontsize=MIN_FONT,
                                color="white" if value > 0.55 * high else "0.15")
            else:
                bar = figure.colorbar(image, ax=ax, shrink=0.8)
                bar.set_label("images" if values is confusion else "% of the true class")
            ax.tick_params(length=0)
        png = png_bytes(figure, tight=True)
        return PNG(png, record(figure))


def example_counts(spec: Optional[dict]) -> tuple[int, int]:
    """How many correct and how many misclassified images to show: the spec's ``explain:
    examples:`` counts (a count it leaves out: the spec's default, as explain reads it), else
    ``EXAMPLES_PER_ROW`` of each."""
    from cnnlab.spec.evaluate import Examples as ExampleCounts

    asked = ((spec or {}).get("explain") or {}).get("examples")
    if asked is None:
        return (EXAMPLES_PER_ROW, EXAMPLES_PER_ROW)
    counts = ExampleCounts.model_validate(asked)
    return (counts.correct, counts.wrong)


def evaluation_example_rows(evaluation: Evaluation, per_row: int = EXAMPLES_PER_ROW,
                            wrong: Optional[int] = None) -> list[ExampleRow]:
    """Which example rows to show: the first ``per_row`` correct ones, then ``wrong`` (default:
    as many) mistakes, the most confident first, then the first mistakes in the split's order
    where fewer confident ones were stored; no image twice."""
    split = {"val": "validation", "test": "test"}.get(evaluation.examples_split or "", "evaluation")
    wrong = per_row if wrong is None else wrong
    rows = []
    if "correct" in evaluation.examples and per_row:
        rows.append(first(_row(evaluation.examples["correct"], f"Correctly classified {split} images"), per_row))
    mistakes = [_row(evaluation.examples[kind], f"Misclassified {split} images, most confident first")
                for kind in ("confident_wrong", "wrong") if kind in evaluation.examples]
    if mistakes and wrong:
        row = mistakes[0]
        for more in mistakes[1:]:
            extra = excluding(more, [row])
            row = ExampleRow(row.title, row.kind, *(np.concatenate([getattr(row, a), getattr(extra, a)]) for a in
                                                   ("images", "labels", "predicted", "confidence")),
                             None if row.indices is None or extra.indices is None
                             else np.concatenate([row.indices, extra.indices]))
        rows.append(first(row, wrong))
    return [row for row in rows if len(row.images)]


def draw_evaluation_examples(evaluation: Evaluation, counts: Optional[tuple[int, int]] = None) -> Optional[Figure]:
    """The chosen example rows in the kit's examples grid (None when there is nothing to show);
    ``counts``: (correct, wrong), as ``example_counts`` reads them from the spec."""
    correct, wrong = counts or (EXAMPLES_PER_ROW, EXAMPLES_PER_ROW)
    rows = evaluation_example_rows(evaluation, correct, wrong)
    if not rows:
        return None
    return draw_examples(rows, evaluation.class_names, per_row=max(correct, wrong, 1), tile=EXAMPLE_TILE,
                         split=evaluation.examples_split or "")


def _row(group: Examples, title: str) -> ExampleRow:
    return ExampleRow(title, group.kind, group.images, group.labels, group.predicted, group.confidence,
                      getattr(group, "index", None))
