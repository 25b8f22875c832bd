"""User arrays in .npz: layouts, optional test part, class names; object arrays refused."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.data import known_shape, load_source
from cnnlab.errors import DataError
from cnnlab.spec.study import Dataset


def load(path):
    return load_source(Dataset(name="npz", path=str(path)))


def test_nhwc_arrays_become_nchw(npz_file):
    source = load(npz_file)
    raw = np.load(npz_file)
    assert source.train.images.shape == (30, 3, 6, 6) and source.test.images.shape == (10, 3, 6, 6)
    np.testing.assert_array_equal(source.train.images.numpy(), raw["x_train"].transpose(0, 3, 1, 2))
    assert source.train.images.is_contiguous() and source.class_names == ["0", "1", "2", "3", "4"]
    assert known_shape(Dataset(name="npz", path=str(npz_file))) is None


@pytest.mark.parametrize("shape, expected", [((12, 5, 7), (1, 5, 7)), ((12, 3, 5, 7), (3, 5, 7)), ((12, 5, 7, 1), (1, 5, 7))])
def test_nhw_and_nchw_layouts(tmp_path, shape, expected):
    path = tmp_path / "a.npz"
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.savez(path, x_train=x, y_train=np.arange(12).reshape(12, 1) % 3, class_names=np.array(["a", "b", "c"]))
    source = load(path)
    assert source.train.images.shape[1:] == expected and source.test is None
    assert source.class_names == ["a", "b", "c"] and source.train.labels.tolist()[:4] == [0, 1, 2, 0]


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x_train=np.array([object()] * 3, dtype=object), y_train=np.zeros(3, dtype=int))
    with pytest.raises(DataError, match="object arrays"):
        load(path)


def test_missing_keys_float_images_and_bad_labels_are_explained(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, images=np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(DataError, match="has no x_train or y_train"):
        load(path)
    np.savez(path, x_train=np.zeros((2, 3, 3), np.float32), y_train=np.zeros(2, int))
    with pytest.raises(DataError, match="float32; images must be uint8"):
        load(path)
    np.savez(path, x_train=np.zeros((2, 3, 3), np.uint8), y_train=np.eye(2))
    with pytest.raises(DataError, match="labels must be integers"):
        load(path)
    np.savez(path, x_train=np.zeros((2, 3, 3), np.uint8), y_train=np.zeros(2, int), x_test=np.zeros((1, 3, 3), np.uint8))
    with pytest.raises(DataError, match="only one of x_test and y_test"):
        load(path)


def test_missing_or_damaged_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="bad.npz"):
        load(tmp_path / "bad.npz")


# ---------------------------------------------------------------- labels from an untrusted file


def _write(path, y_train, **more):
    np.savez(path, x_train=np.zeros((len(y_train), 4, 4), np.uint8), y_train=np.asarray(y_train), **more)
    return path


@pytest.mark.parametrize("label", [2**40, 10**12, np.iinfo(np.int64).max])
def test_a_huge_label_without_class_names_is_refused_before_anything_is_allocated(tmp_path, label):
    import tracemalloc

    path = _write(tmp_path / "huge.npz", np.array([0, 1, label], dtype=np.int64))
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as error:
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(error.value)
    assert f"{path}: 'y_train' holds the label {label:,}, which would make {label + 1:,} classes" in message
    assert "at most 100,000" in message and "renumber them" in message
    assert peak < 20 * 1024 * 1024  # one name per label up to 2**40 would be terabytes


def test_the_class_bound_names_the_test_labels_when_they_hold_the_huge_one(tmp_path):
    path = _write(tmp_path / "a.npz", [0, 1, 2], x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.array([1, 100_000]))
    with pytest.raises(DataError, match=r"'y_test' holds the label 100,000, which would make 100,001 classes"):
        load(path)


def test_the_largest_label_within_the_bound_still_numbers_its_classes(tmp_path):
    source = load(_write(tmp_path / "a.npz", [0, 99_999]))
    assert len(source.class_names) == 100_000 and source.class_names[-1] == "99999"


def test_a_huge_label_with_class_names_is_out_of_range_not_a_huge_allocation(tmp_path):
    path = _write(tmp_path / "a.npz", [0, 10**12], class_names=np.array(["a", "b"]))
    with pytest.raises(DataError, match="labels run from 0 to 1000000000000, but there are 2 classes"):
        load(path)


@pytest.mark.parametrize("labels, expected", [
    (np.array([0, -3, 1]), r"'y_train' holds a negative label \(-3\)"),
    (np.array([0, 2**64 - 1], dtype=np.uint64), r"'y_train' holds the label 18,446,744,073,709,551,615"),
    (np.array([0.0, 1.0, 2.0]), "'y_train' is float64 .*labels must be integers"),
    (np.array([0.0, np.nan, 1.0]), "'y_train' is float64 .*labels must be integers"),
    (np.array([True, False]), "'y_train' is bool .*labels must be integers"),
])
def test_negative_non_integer_and_nan_labels_are_refused(tmp_path, labels, expected):
    path = _write(tmp_path / "a.npz", labels)
    with pytest.raises(DataError, match=expected):
        load(path)


def test_idx_and_cifar_number_their_classes_under_the_same_bound():
    import torch

    from cnnlab.data.arrays import ArrayDataset, numbered_class_names

    part = ArrayDataset(torch.zeros((2, 1, 2, 2), dtype=torch.uint8), torch.tensor([3, 2**31 - 1]))
    with pytest.raises(DataError, match=r"dataset 'x' \(f\): the test part holds the label 2,147,483,647"):
        numbered_class_names({"the training part": part.subset(torch.tensor([0])), "the test part": part},
                             "dataset 'x' (f)")
    assert numbered_class_names({"the training part": part.subset(torch.tensor([0])), "none": None}, "") == list("0123")
