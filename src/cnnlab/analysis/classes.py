"""Per-class scores of one run's predictions: the confusion matrix, precision, recall and F1 of
every class, and top-k accuracy, computed from the stored labels and softmax outputs.

Conventions are scikit-learn's (``precision_recall_fscore_support`` with ``zero_division=0``,
``top_k_accuracy_score``), and the tests hold them to it: a class never predicted has precision
0, a class absent from the labels has recall 0, and F1 is 0 where precision and recall both are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

TOP_K = 5
TOP_K_FROM = 11  # top-k is shown from this many classes on: with 10 or fewer, top-5 says too little


def confusion_matrix(labels: np.ndarray, probabilities: np.ndarray, classes: Optional[int] = None) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class (the argmax of each softmax row)."""
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities)
    size = max(classes or 0, probabilities.shape[1] if probabilities.ndim == 2 else 0,
               int(labels.max()) + 1 if len(labels) else 0)
    confusion = np.zeros((size, size), dtype=np.int64)
    if len(labels):
        np.add.at(confusion, (labels, probabilities.argmax(1)), 1)
    return confusion


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1, support (true images) and predictions per class, indexed like the
    confusion's rows."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    predicted: np.ndarray

    @property
    def macro(self) -> dict[str, float]:
        """The unweighted mean over the classes that occur, as true or as predicted class
        (scikit-learn's ``average="macro"``, whose labels are those it sees)."""
        present = (self.support > 0) | (self.predicted > 0)
        if not present.any():
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        return {name: float(getattr(self, name)[present].mean()) for name in ("precision", "recall", "f1")}


def class_scores(confusion: np.ndarray) -> ClassScores:
    """Each class's precision (right among those predicted as it), recall (found among its images)
    and their harmonic mean F1, from a confusion matrix (rows true, columns predicted)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    right = np.diag(confusion)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(right, predicted, out=np.zeros_like(right), where=predicted > 0)
    recall = np.divide(right, support, out=np.zeros_like(right), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(right), where=total > 0)
    return ClassScores(precision, recall, f1, support.astype(np.int64), predicted.astype(np.int64))


def top_k_accuracy(labels: np.ndarray, probabilities: np.ndarray, k: int = TOP_K) -> Optional[float]:
    """The share of images whose true class is among the ``k`` most probable; None without images.

    A tie at the k-th place counts the true class in only when its index is lower (a stable sort
    of the negated outputs), so a flat output is never counted as k right guesses.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities)
    if not len(labels):
        return None
    k = min(k, probabilities.shape[1])
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def shows_top_k(classes: int) -> bool:
    """True when a run has enough classes for top-k accuracy to say more than top-1 (CIFAR-100)."""
    return classes >= TOP_K_FROM


__all__ = ["TOP_K", "TOP_K_FROM", "ClassScores", "class_scores", "confusion_matrix", "shows_top_k", "top_k_accuracy"]
