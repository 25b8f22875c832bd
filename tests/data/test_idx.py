"""The IDX reader: round trips, and damaged or hostile files give a DataError naming the file."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from cnnlab.data.idx import read_idx, read_idx_pair
from cnnlab.errors import DataError

from .builders import idx_bytes, write_idx


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4"])
def test_idx_round_trip_gzipped_or_not(tmp_path, compress, dtype):
    array = (np.arange(2 * 3 * 4) - 5).astype(np.dtype(dtype).newbyteorder("=")).reshape(2, 3, 4)
    if dtype == "u1":
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "a.idx.gz", array, compress=compress)
    read = read_idx(path)
    assert read.shape == (2, 3, 4)
    np.testing.assert_array_equal(read, array)
    assert read.dtype.isnative


def test_header_claiming_two_billion_items_in_a_small_file_is_refused_before_allocating(tmp_path):
    header = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 2**31, 28, 28)
    for compress in (True, False):
        path = tmp_path / f"huge{compress}.gz"
        data = header + b"\0" * 100
        path.write_bytes(gzip.compress(data) if compress else data)
        with pytest.raises(DataError, match="header claims 2147483648 x 28 x 28") as error:
            read_idx(path)
        assert str(path) in str(error.value)


def test_truncated_gzip_names_the_file(tmp_path):
    full = gzip.compress(idx_bytes(np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_corrupted_gzip_names_the_file(tmp_path):
    full = bytearray(gzip.compress(idx_bytes(np.arange(4000, dtype=np.uint8).reshape(40, 10, 10) % 7)))
    for i in range(20, 40):
        full[i] ^= 0xFF
    path = tmp_path / "labels.gz"
    path.write_bytes(bytes(full))
    with pytest.raises(DataError, match="labels.gz"):
        read_idx(path)


def test_raw_file_shorter_than_its_header_says_is_refused(tmp_path):
    data = idx_bytes(np.zeros((10, 4, 4), dtype=np.uint8))
    path = tmp_path / "short.idx"
    path.write_bytes(data[:-7])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_bad_magic_is_not_an_idx_file(tmp_path):
    path = tmp_path / "nope.idx"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_image_and_label_counts_must_agree(tmp_path):
    images = write_idx(tmp_path / "i.gz", np.zeros((5, 3, 3), dtype=np.uint8))
    labels = write_idx(tmp_path / "l.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        read_idx_pair(images, labels)
    ok = read_idx_pair(images, write_idx(tmp_path / "l5.gz", np.arange(5, dtype=np.uint8)))
    assert ok.images.shape == (5, 1, 3, 3) and ok.labels.tolist() == [0, 1, 2, 3, 4]
