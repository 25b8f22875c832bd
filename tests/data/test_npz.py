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
