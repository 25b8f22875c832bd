"""A run's confusion matrix with each class's precision, recall and F1 beside it, and two runs'
matrices side by side (the best configuration and its baseline), from the stored predictions.

The matrix is row-normalized (each true class's images in %, so its diagonal is the recall) and
the scores are a strip of three columns on the same rows, so a class reads across one line. Top-k
accuracy joins the subtitle where the run has more than 10 classes (CIFAR-100).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from cnnlab.analysis.classes import TOP_K, class_scores, confusion_matrix, shows_top_k, top_k_accuracy
from cnnlab.errors import DataError
from cnnlab.figures import Figure
from cnnlab.figures.drawn import COLORBAR, tag
from cnnlab.figures.plotted import Plot, finish
from cnnlab.figures.style import new_figure, plain, styled

SPLIT_WORDS = {"val": "validation", "test": "test"}
ANNOTATE_UP_TO = 15  # classes: beyond, the numbers would not fit their cells
TICKS_UP_TO = 40  # classes: beyond, the names would not fit; the tables name them


@dataclass(frozen=True)
class RunConfusion:
    """One run's predictions on one split, summed up: the counts and, from them, the scores."""

    label: str  # whose they are, in titles: "A/dropout, run 1a2b3c"
    split: str
    class_names: list[str]
    confusion: np.ndarray  # counts, rows true class, columns predicted
    top_k: Optional[float] = None  # top-k accuracy, where the run has enough classes

    @property
    def accuracy(self) -> float:
        total = int(self.confusion.sum())
        return float(np.trace(self.confusion)) / total if total else 0.0


def run_confusion(predictions: Any, class_names: Sequence[str], label: str,
                  splits: Sequence[str] = ("test", "val")) -> RunConfusion:
    """A run's confusion on the first of ``splits`` its predictions file holds (test, else
    validation); a DataError when it holds none of them."""
    found = getattr(predictions, "splits", {}) if predictions is not None else {}
    split = next((s for s in splits if s in found and len(found[s].labels)), None)
    if split is None:
        words = " or ".join(SPLIT_WORDS.get(s, s) for s in splits)
        raise DataError(f"{label} has no stored predictions on the {words} split, so it has no confusion matrix")
    labels, probabilities = found[split].labels, found[split].probabilities
    confusion = confusion_matrix(labels, probabilities, len(class_names))
    names = [str(n) for n in class_names] + [str(i) for i in range(len(class_names), len(confusion))]
    top = top_k_accuracy(labels, probabilities) if shows_top_k(len(names)) else None
    return RunConfusion(label, split, names, confusion, top)


def accuracy_words(run: RunConfusion) -> str:
    """"top-1 accuracy 61.2%, top-5 86.0% (test split, 10,000 images)"."""
    top = f", top-{TOP_K} {100 * run.top_k:.1f}%" if run.top_k is not None else ""
    return (f"top-1 accuracy {100 * run.accuracy:.1f}%{top} ({SPLIT_WORDS.get(run.split, run.split)} split, "
            f"{int(run.confusion.sum()):,} images)")


def _normalized(confusion: np.ndarray) -> np.ndarray:
    totals = confusion.sum(axis=1, keepdims=True)
    return 100.0 * confusion / np.maximum(totals, 1)


def _matrix(ax: Any, values: np.ndarray, names: Sequence[str], series: str, ylabel: bool = True) -> Any:
    classes = len(names)
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=100, aspect="auto")
    tag(image, series)
    index = "" if classes <= TICKS_UP_TO else " (index)"
    ax.set_xlabel(f"predicted class{index}")
    if ylabel:
        ax.set_ylabel(f"true class{index}")
    if classes <= TICKS_UP_TO:
        labels = [plain(name, 14) for name in names]
        wide = max((len(str(n)) for n in names), default=1) > 2
        ax.set_xticks(range(classes), labels, rotation=45 if wide else 0, ha="right" if wide else "center",
                      rotation_mode="anchor")
        ax.set_yticks(range(classes), labels if ylabel else [])
    if classes <= ANNOTATE_UP_TO:
        for (row, column), value in np.ndenumerate(values):
            if value >= 0.5:
                ax.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=9,
                        color="white" if value > 55 else "0.15")
    ax.tick_params(length=0)
    ax.grid(False)
    return image


def _colour_bar(figure: Any, image: Any, axes: Any, label: str) -> None:
    bar = figure.colorbar(image, ax=axes, shrink=0.85, pad=0.02)
    bar.ax.set_gid(COLORBAR)
    bar.set_label(label)


def _side(classes: int) -> float:
    return min(max(0.32 * classes + 1.4, 3.4), 8.0)


def draw_class_scores(run: RunConfusion) -> Plot:
    """The row-normalized confusion matrix, and beside it each class's precision, recall and F1
    (in %) on the same rows; the images are tagged "confusion" and "scores"."""
    scores = class_scores(run.confusion)
    strip = 100.0 * np.column_stack([scores.precision, scores.recall, scores.f1])
    classes = len(run.class_names)
    side = _side(classes)
    with styled({"axes.grid": False}):
        figure = new_figure((side + 3.4, side + 0.9), layout="constrained")
        # The strip's columns as wide as the matrix's while they are legible; at least a third of it.
        left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, max(3.2 / max(classes, 3), 0.3)]})
        image = _matrix(left, _normalized(run.confusion), run.class_names, "confusion")
        left.set_title("Confusion (% of each true class)")
        _colour_bar(figure, image, left, "% of the true class's images")
        bars = right.imshow(strip, cmap="Greens", vmin=0, vmax=100, aspect="auto")
        tag(bars, "scores")
        right.set_xticks(range(3), ["precision", "recall", "F1"], rotation=45, ha="right", rotation_mode="anchor")
        right.set_yticks(range(classes), [plain(n, 14) for n in run.class_names] if classes <= TICKS_UP_TO else [])
        if classes > TICKS_UP_TO:
            right.set_yticks([])
        if classes <= ANNOTATE_UP_TO:
            for (row, column), value in np.ndenumerate(strip):
                right.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=9,
                           color="white" if value > 55 else "0.15")
        right.set_title("Per class (%)")
        right.tick_params(length=0)
        _colour_bar(figure, bars, right, "precision, recall, F1 (%)")
        figure.suptitle(plain(f"{run.label}: {accuracy_words(run)}", 110), fontsize=10.5)
        return finish(figure)


def draw_confusion_pair(first: RunConfusion, second: RunConfusion) -> Plot:
    """Two runs' row-normalized confusion matrices side by side on one colour scale (tagged with
    their labels), each titled with its accuracy."""
    classes = max(len(first.class_names), len(second.class_names))
    side = _side(classes)
    with styled({"axes.grid": False}):
        figure = new_figure((2 * side + 1.6, side + 1.1), layout="constrained")
        axes = figure.subplots(1, 2)
        image = None
        for index, (ax, run) in enumerate(zip(axes, (first, second))):
            image = _matrix(ax, _normalized(run.confusion), run.class_names, run.label, ylabel=index == 0)
            ax.set_title(plain(run.label, 60) + "\n" + plain(accuracy_words(run), 60))
        _colour_bar(figure, image, list(axes), "% of the true class's images")
        figure.suptitle("Confusion matrices side by side (rows: true class, % of its images)", fontsize=10.5)
        return finish(figure)


def confusion_figure(run: RunConfusion, name: str = "confusion") -> Figure:
    """``draw_class_scores`` as an explain figure (a file name, a title, a caption)."""
    plot = draw_class_scores(run)
    width, height = struct.unpack(">II", plot.png[16:24])
    split = SPLIT_WORDS.get(run.split, run.split)
    caption = (f"Confusion matrix of {run.label} on the {split} split, row-normalized (rows: true class), with "
               f"each class's precision, recall and F1 beside it; {accuracy_words(run)}.")
    return Figure(name=name, title=f"Confusion matrix and per-class scores: {run.label}", png_bytes=plot.png,
                  caption=caption, size=(width, height))
