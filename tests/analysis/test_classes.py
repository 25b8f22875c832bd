"""Per-class scores and top-k accuracy held to scikit-learn and to hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from cnnlab.analysis.classes import class_scores, confusion_matrix, shows_top_k, top_k_accuracy

# Rows true, columns predicted. Class 3 is never predicted (precision 0 by scikit-learn's
# zero_division=0) and class 4 never occurs (recall 0), though it is predicted once.
HAND_MADE = np.array([
    [5, 1, 0, 0, 0],
    [2, 7, 1, 0, 0],
    [0, 0, 4, 0, 1],
    [1, 2, 0, 0, 0],
    [0, 0, 0, 0, 0],
])


def _labels(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true, predicted = [], []
    for (row, column), count in np.ndenumerate(confusion):
        true += [row] * int(count)
        predicted += [column] * int(count)
    return np.array(true), np.array(predicted)


def test_precision_recall_and_f1_equal_scikit_learns_on_a_hand_made_confusion():
    true, predicted = _labels(HAND_MADE)
    labels = list(range(len(HAND_MADE)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        true, predicted, labels=labels, zero_division=0)
    scores = class_scores(HAND_MADE)
    np.testing.assert_allclose(scores.precision, precision)
    np.testing.assert_allclose(scores.recall, recall)
    np.testing.assert_allclose(scores.f1, f1)
    np.testing.assert_array_equal(scores.support, support)
    # By hand too: class 1 is right 7 times of 10 images and of 10 predictions.
    assert scores.precision[1] == pytest.approx(7 / 10) and scores.recall[1] == pytest.approx(7 / 10)
    assert scores.precision[3] == 0.0 and scores.recall[4] == 0.0 and scores.f1[4] == 0.0


def test_macro_averages_equal_scikit_learns_over_the_classes_that_occur():
    true, predicted = _labels(HAND_MADE)
    macro = class_scores(HAND_MADE).macro
    for index, name in enumerate(("precision", "recall", "f1")):
        expected = metrics.precision_recall_fscore_support(true, predicted, average="macro", zero_division=0)[index]
        assert macro[name] == pytest.approx(expected)


def test_the_confusion_matrix_from_softmax_outputs_equals_scikit_learns():
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(6), size=300)
    labels = rng.integers(0, 6, size=300)
    expected = metrics.confusion_matrix(labels, probabilities.argmax(1), labels=list(range(6)))
    np.testing.assert_array_equal(confusion_matrix(labels, probabilities, 6), expected)


def test_top_5_accuracy_equals_a_hand_computation():
    # Six images over 7 classes; the true class ranks 1st, 5th, 6th, 2nd, 7th and 5th.
    probabilities = np.array([
        [0.40, 0.20, 0.10, 0.10, 0.10, 0.05, 0.05],  # true 0: 1st
        [0.30, 0.25, 0.20, 0.12, 0.08, 0.03, 0.02],  # true 4: 5th
        [0.30, 0.25, 0.20, 0.12, 0.08, 0.03, 0.02],  # true 5: 6th
        [0.05, 0.50, 0.30, 0.05, 0.04, 0.03, 0.03],  # true 2: 2nd
        [0.30, 0.25, 0.20, 0.12, 0.08, 0.04, 0.01],  # true 6: 7th
        [0.02, 0.08, 0.12, 0.20, 0.25, 0.30, 0.03],  # true 1: 5th
    ])
    labels = np.array([0, 4, 5, 2, 6, 1])
    assert top_k_accuracy(labels, probabilities, k=5) == pytest.approx(4 / 6)
    assert top_k_accuracy(labels, probabilities, k=1) == pytest.approx(1 / 6)
    assert top_k_accuracy(labels, probabilities, k=2) == pytest.approx(2 / 6)
    assert top_k_accuracy(labels[:0], probabilities[:0]) is None


def test_top_k_equals_scikit_learns_on_random_outputs_and_is_shown_past_10_classes():
    rng = np.random.default_rng(2)
    probabilities = rng.dirichlet(np.ones(100), size=500)
    labels = rng.integers(0, 100, size=500)
    assert top_k_accuracy(labels, probabilities) == pytest.approx(
        metrics.top_k_accuracy_score(labels, probabilities, k=5, labels=list(range(100))))
    assert not shows_top_k(10) and shows_top_k(11) and shows_top_k(100)
