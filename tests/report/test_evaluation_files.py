"""The report reads a run's evaluation files through the store's reader; a missing or damaged
file leaves its figure out with a reason instead of stopping the report."""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.report.data import Evaluation, _load_confusion, _load_examples
from cnnlab.store.artifacts import evaluation_files, read_examples, read_predictions


class _Split:
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)


class _Store:
    def __init__(self, paths):
        self.paths = paths

    def _load(self, kind, read):
        path = self.paths.get(kind)
        return read(path) if path is not None else None

    def load_predictions(self, run_id):
        return self._load("predictions", read_predictions)

    def load_examples(self, run_id):
        return self._load("examples", read_examples)


def _evaluation() -> Evaluation:
    return Evaluation("A/none", "val_accuracy", 0.5, 1, "run", 0, 1, class_names=["a", "b"])


def test_confusion_and_examples_come_from_the_files(tmp_path):
    labels = torch.tensor([0, 1, 1, 2])
    probabilities = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.7, 0.3, 0.0], [0.1, 0.1, 0.8]])
    images = torch.zeros((4, 1, 5, 5), dtype=torch.uint8)
    predictions, examples = evaluation_files({"test": probabilities}, {"test": _Split(images, labels)})
    (tmp_path / "p.npz").write_bytes(predictions)
    (tmp_path / "e.npz").write_bytes(examples)
    evaluation = _evaluation()
    store = _Store({"predictions": tmp_path / "p.npz", "examples": tmp_path / "e.npz"})
    _load_confusion(store, evaluation)
    _load_examples(store, evaluation)
    assert evaluation.split == "test" and evaluation.class_names == ["a", "b", "2"]
    np.testing.assert_array_equal(evaluation.confusion, [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert evaluation.examples_split == "test" and sorted(evaluation.examples) == ["confident_wrong", "correct", "wrong"]
    assert evaluation.confusion_reason is None and evaluation.examples_reason is None


def test_missing_or_damaged_files_give_reasons(tmp_path):
    (tmp_path / "damaged.npz").write_bytes(b"PK\x03\x04 not really a zip")
    for paths in ({}, {"predictions": tmp_path / "damaged.npz", "examples": tmp_path / "damaged.npz"}):
        evaluation = _evaluation()
        _load_confusion(_Store(paths), evaluation)
        _load_examples(_Store(paths), evaluation)
        assert evaluation.confusion is None and not evaluation.examples
        if paths:  # the note names the damaged file
            assert evaluation.confusion_reason.startswith(f"{tmp_path / 'damaged.npz'}: the predictions file is damaged")
            assert evaluation.examples_reason.startswith(f"{tmp_path / 'damaged.npz'}: the examples file is damaged")
        else:
            assert evaluation.confusion_reason == "the run has no predictions file"
            assert evaluation.examples_reason == "the run has no example-images file"
