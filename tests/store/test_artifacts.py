"""The evaluation files a run leaves: what is written, that it reads back, and that a damaged
or foreign file is a StoreError naming it."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from cnnlab.errors import StoreError
from cnnlab.store.artifacts import (
    EXAMPLES_PER_KIND, ExampleImages, evaluation_files, read_examples, read_predictions,
)


@dataclass
class Split:
    images: object
    labels: object

    def __len__(self) -> int:
        return len(self.labels)


def _split(count: int, classes: int, seed: int, tensors: bool = True) -> tuple[Split, torch.Tensor]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 1, 6, 6), dtype=np.uint8)
    labels = rng.integers(0, classes, size=count)
    logits = rng.normal(size=(count, classes)).astype(np.float32)
    probabilities = torch.from_numpy(logits).softmax(1)
    if tensors:
        return Split(torch.from_numpy(images), torch.from_numpy(labels)), probabilities
    return Split(images, labels), probabilities.numpy()


def _write(tmp_path, data: bytes, name: str):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_round_trip_of_both_files(tmp_path):
    val, val_probabilities = _split(50, 4, 0)
    test, test_probabilities = _split(80, 4, 1)
    predictions_bytes, examples_bytes = evaluation_files({"val": val_probabilities, "test": test_probabilities},
                                                         {"val": val, "test": test})
    predictions = read_predictions(_write(tmp_path, predictions_bytes, "predictions.npz"))
    assert sorted(predictions.splits) == ["test", "val"]
    for name, data, probabilities in (("val", val, val_probabilities), ("test", test, test_probabilities)):
        split = predictions.splits[name]
        assert split.split == name
        assert split.labels.dtype == np.int64 and split.probabilities.dtype == np.float32
        np.testing.assert_array_equal(split.labels, data.labels.numpy())
        np.testing.assert_array_equal(split.probabilities, probabilities.numpy())

    examples = read_examples(_write(tmp_path, examples_bytes, "examples.npz"))
    assert examples.split == "test"  # the last evaluated split
    assert list(examples.kinds) == ["correct", "wrong", "confident_wrong"]
    outputs = test_probabilities.numpy()
    predicted, confidence, labels = outputs.argmax(1), outputs.max(1), test.labels.numpy()
    right, wrong = np.flatnonzero(predicted == labels), np.flatnonzero(predicted != labels)
    np.testing.assert_array_equal(examples.kinds["correct"].index, right[:EXAMPLES_PER_KIND])
    np.testing.assert_array_equal(examples.kinds["wrong"].index, wrong[:EXAMPLES_PER_KIND])
    confident = examples.kinds["confident_wrong"]
    assert len(confident.index) == min(len(wrong), EXAMPLES_PER_KIND)
    assert (np.diff(confident.confidence) <= 0).all()  # most confident first
    assert confident.confidence[0] == confidence[wrong].max()
    for group in examples.kinds.values():
        assert group.images.dtype == np.uint8 and group.images.shape[1:] == (1, 6, 6)
        np.testing.assert_array_equal(group.images, test.images.numpy()[group.index])
        np.testing.assert_array_equal(group.labels, labels[group.index])
        np.testing.assert_array_equal(group.predicted, predicted[group.index])
        np.testing.assert_array_equal(group.confidence, confidence[group.index])
        assert group.labels.dtype == group.predicted.dtype == group.index.dtype == np.int64
        assert group.confidence.dtype == np.float32
    assert (examples.kinds["correct"].labels == examples.kinds["correct"].predicted).all()
    assert (examples.kinds["wrong"].labels != examples.kinds["wrong"].predicted).all()

    # The typed object gives back exactly the file's arrays (what explain's example grid reads).
    with np.load(tmp_path / "examples.npz", allow_pickle=False) as stored:
        again = examples.arrays()
        assert sorted(again) == sorted(stored.files)
        for key in stored.files:
            np.testing.assert_array_equal(again[key], stored[key])


def test_numpy_inputs_write_the_same_files_as_tensors():
    files = []
    for tensors in (True, False):
        data, probabilities = _split(30, 3, 2, tensors=tensors)
        files.append(evaluation_files({"val": probabilities}, {"val": data}))
    for first, second in zip(*files):
        a, b = (np.load(io.BytesIO(data)) for data in (first, second))
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


def test_at_most_examples_per_kind_and_skipped_splits(tmp_path):
    val, probabilities = _split(200, 2, 3)
    empty = Split(torch.zeros((0, 1, 6, 6), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    files = evaluation_files({"val": probabilities, "test": probabilities[:0]}, {"val": val, "test": empty})
    predictions = read_predictions(_write(tmp_path, files[0], "p.npz"))
    assert list(predictions.splits) == ["val"]  # an empty split is not written
    examples = read_examples(_write(tmp_path, files[1], "e.npz"))
    assert examples.split == "val"
    assert all(len(group.images) == EXAMPLES_PER_KIND for group in examples.kinds.values())


def test_a_run_that_evaluated_nothing_writes_files_with_no_arrays(tmp_path):
    val, _ = _split(10, 2, 4)
    files = evaluation_files({}, {"val": val, "test": None})  # no probabilities: nothing evaluated
    assert read_predictions(_write(tmp_path, files[0], "p.npz")).splits == {}
    examples = read_examples(_write(tmp_path, files[1], "e.npz"))
    assert examples == ExampleImages(None) and examples.arrays() == {}


def _savez(path, **arrays):
    np.savez(path, **arrays)
    return path


def _damaged() -> dict[str, tuple[bytes, object]]:
    val, probabilities = _split(40, 3, 5)
    predictions, examples = evaluation_files({"val": probabilities}, {"val": val})
    cases = {"truncated predictions": (predictions[: len(predictions) // 2], read_predictions),
             "truncated examples": (examples[: len(examples) // 2], read_examples),
             "random bytes": (bytes(range(256)) * 4, read_predictions),
             "empty": (b"", read_examples)}
    # One corrupted byte inside a compressed member: the zip is readable, the array is not.
    broken = bytearray(predictions)
    with zipfile.ZipFile(io.BytesIO(predictions)) as archive:
        info = archive.infolist()[0]
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    broken[start + info.compress_size // 2] ^= 0xFF
    cases["corrupted member"] = (bytes(broken), read_predictions)
    return cases


DAMAGED = _damaged()


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_file_is_a_store_error_naming_it(tmp_path, case):
    data, read = DAMAGED[case]
    path = _write(tmp_path, data, "damaged.npz")
    with pytest.raises(StoreError, match=r"damaged\.npz: the (predictions|examples) file is damaged or unreadable"):
        read(path)


def test_foreign_files_are_store_errors_naming_them(tmp_path):
    images = np.zeros((3, 1, 6, 6), dtype=np.uint8)
    dataset = _savez(tmp_path / "dataset.npz", images=images, labels=np.arange(3))
    for read in (read_predictions, read_examples):
        with pytest.raises(StoreError, match=r"dataset\.npz is not a valid cnnlab .* unexpected arrays images, labels"):
            read(dataset)
    lone = tmp_path / "lone.npy"
    np.save(lone, images)
    with pytest.raises(StoreError, match=r"lone\.npy is not a cnnlab predictions file"):
        read_predictions(lone)
    pickled = _savez(tmp_path / "pickled.npz", val_labels=np.array([{"x": 1}], dtype=object),
                     val_probabilities=np.ones((1, 2), dtype=np.float32))
    with pytest.raises(StoreError, match=r"pickled\.npz: the predictions file is damaged"):
        read_predictions(pickled)  # never unpickled


@pytest.mark.parametrize("arrays, problem", [
    ({"val_labels": np.arange(3)}, "needs both val_labels and val_probabilities"),
    ({"val_labels": np.arange(3), "val_probabilities": np.ones((2, 3), dtype=np.float32)}, "one row of class scores"),
    ({"val_labels": np.array([0.5, 1.0]), "val_probabilities": np.ones((2, 3), dtype=np.float32)}, "class numbers"),
    ({"val_labels": np.array([0, -1]), "val_probabilities": np.ones((2, 3), dtype=np.float32)}, "negative class"),
])
def test_predictions_that_break_the_contract(tmp_path, arrays, problem):
    path = _savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(StoreError, match=rf"bad\.npz .*{problem}"):
        read_predictions(path)


def test_examples_that_break_the_contract(tmp_path):
    val, probabilities = _split(40, 3, 6)
    with np.load(io.BytesIO(evaluation_files({"val": probabilities}, {"val": val})[1])) as stored:
        good = {key: stored[key] for key in stored.files}
    cases = [
        ({k: v for k, v in good.items() if k != "split"}, "no 'split'"),
        ({k: v for k, v in good.items() if k != "wrong_index"}, "'wrong' lacks wrong_index"),
        ({**good, "correct_images": good["correct_images"].astype(np.float32)}, "correct_images are not uint8"),
        ({**good, "wrong_labels": good["wrong_labels"][:1]}, "the wrong arrays differ in length"),
        ({**good, "split": np.array(3)}, "'split' is not a split's name"),
    ]
    for arrays, problem in cases:
        path = _savez(tmp_path / "bad.npz", **arrays)
        with pytest.raises(StoreError, match=rf"bad\.npz .*{problem}"):
            read_examples(path)


def test_weights_are_safetensors_of_contiguous_cpu_tensors(tmp_path):
    import torch
    from safetensors.torch import load

    from cnnlab.store.artifacts import read_weights, serialize_weights

    weights = {"dense.weight": torch.randn(3, 4).t(), "count": torch.tensor(3)}  # a transposed view
    loaded = load(serialize_weights(weights))
    assert all(torch.equal(loaded[k], v) and loaded[k].is_contiguous() for k, v in weights.items())
    path = tmp_path / "weights.safetensors"
    path.write_bytes(serialize_weights(weights))
    assert all(torch.equal(read_weights(path)[k], v) for k, v in weights.items())
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(StoreError, match="not a readable safetensors weights file"):
        read_weights(path)
