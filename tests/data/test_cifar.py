"""CIFAR batches: read from the archive or its folder; code-running pickles and unsafe members refused."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from cnnlab.data import DATASETS, load_dataset
from cnnlab.data.cifar import CIFAR10, BatchUnpickler, read_archive_members
from cnnlab.errors import DataError
from cnnlab.spec.study import Dataset

from .builders import _dir, add_member, cifar_batches, remote_for, write_cifar_archive


def test_cifar_archive_loads_as_uint8_nchw_with_meta_class_names(cifar_info, cifar_archive):
    source = load_dataset(cifar_info, Dataset(name="cifar10"), cifar_archive.parent, download=False)
    assert source.train.images.shape == (50, 3, 32, 32) and source.train.images.dtype.is_floating_point is False
    assert source.train.images.is_contiguous() and source.train.labels.dtype.is_floating_point is False
    assert source.test is not None and len(source.test) == 10
    assert source.class_names == list("abcdefghij")
    # Rows are channel-major: pixel (0, 0) of channel 0 is the label the fixture wrote there,
    # and batches are concatenated in order 1..5.
    assert source.train.images[:, 0, 0, 0].tolist() == source.train.labels.tolist()
    assert source.train.images[:, 0, 0, 1].tolist() == [i for i in range(5) for _ in range(10)]
    assert source.test.images[:, 0, 0, 1].unique().tolist() == [5]


def test_extracted_cifar_folder_is_recognised_by_member_checksums(tmp_path, cifar_info, cifar_archive):
    data = tmp_path / "data"
    with tarfile.open(cifar_archive) as tar:
        tar.extractall(data / "cifar10", filter="data")
    source = load_dataset(cifar_info, Dataset(name="cifar10"), data, download=False)
    assert len(source.train) == 50 and source.class_names == list("abcdefghij")
    (data / "cifar10" / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"damaged")
    with pytest.raises(DataError, match="data_batch_3 has md5"):
        load_dataset(cifar_info, Dataset(name="cifar10"), data, download=False)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_tries_to_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    batches = cifar_batches()
    batches["data_batch_2"] = pickle.dumps({b"data": RunsCode(marker), b"labels": []}, protocol=2)
    archive = write_cifar_archive(tmp_path / "evil.tar.gz", batches)
    with pytest.raises(DataError, match=r"asks to load '(posix|os|nt)\.system'.*nothing\s+was run") as error:
        read_archive_members(archive, {CIFAR10.member(n) for n in CIFAR10.train})
    assert "data_batch_2" in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["builtins.eval", "subprocess.Popen", "numpy.load", "copyreg._reconstructor"])
def test_unpickler_allows_nothing_but_numpy_reconstruction(name):
    module, attribute = name.rsplit(".", 1)
    with pytest.raises(pickle.UnpicklingError):
        BatchUnpickler.find_class(BatchUnpickler.__new__(BatchUnpickler), module, attribute)


def test_codecs_encode_is_allowed_only_for_latin1():
    evil = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(pickle.UnpicklingError):
        BatchUnpickler(io.BytesIO(evil), encoding="bytes").load()
    good = pickle.dumps(b"abc", protocol=2)
    assert BatchUnpickler(io.BytesIO(good), encoding="bytes").load() == b"abc"


@pytest.mark.parametrize("bad_name", ["../escape", "/etc/passwd", "cifar-10-batches-py/../../x"])
def test_archive_member_with_unsafe_path_is_refused(tmp_path, bad_name):
    archive = write_cifar_archive(tmp_path / "bad.tar.gz", cifar_batches(),
                                  extra=lambda tar: add_member(tar, bad_name, b"x"))
    with pytest.raises(DataError, match="unsafe path"):
        read_archive_members(archive, {CIFAR10.member("data_batch_1")})


def test_archive_with_a_symlink_is_refused(tmp_path):
    def link(tar):
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_6")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)

    archive = write_cifar_archive(tmp_path / "link.tar.gz", cifar_batches(), extra=link)
    with pytest.raises(DataError, match="holds a link"):
        read_archive_members(archive, {CIFAR10.member("data_batch_1")})


def test_truncated_archive_is_a_clear_error(tmp_path, cifar_archive):
    data = cifar_archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match="cut.tar.gz is damaged"):
        read_archive_members(cut, {CIFAR10.member(n) for n in CIFAR10.train})


def test_batch_with_wrong_data_shape_is_refused(tmp_path):
    batches = cifar_batches()
    batches["test_batch"][b"data"] = np.zeros((10, 100), dtype=np.uint8)
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", batches)
    info = dataclasses.replace(DATASETS.get("cifar10"), files=(remote_for(archive),), mirrors=())
    with pytest.raises(DataError, match="test_batch: 'data' must be a uint8 array N x 3072"):
        load_dataset(info, Dataset(name="cifar10"), tmp_path, download=False)


def test_directory_members_are_fine(tmp_path):
    archive = write_cifar_archive(tmp_path / "dirs.tar.gz", cifar_batches(), extra=lambda tar: tar.addfile(_dir("cifar-10-batches-py/sub")))
    found = read_archive_members(archive, {CIFAR10.member("data_batch_1")})
    assert set(found) == {"cifar-10-batches-py/data_batch_1"}


def python2_batch(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as Python 2 wrote the published ones: str opcodes, numpy.core names."""
    import struct

    def string(text: bytes) -> bytes:
        return (b"U" + bytes([len(text)]) if len(text) < 256 else b"T" + struct.pack("<I", len(text))) + text

    def integer(value: int) -> bytes:
        return b"J" + struct.pack("<i", value)

    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + integer(0) + b"\x85" + string(b"b")
             + b"\x87R" + b"(" + integer(1) + integer(images.shape[0]) + integer(images.shape[1]) + b"\x86"
             + b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
             + b"(" + integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb"
             + b"\x89" + string(images.tobytes()) + b"tb")
    label_list = b"](" + b"".join(integer(v) for v in labels) + b"e"
    return b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list + b"u."


def test_python2_pickled_batches_as_published_are_read():
    from cnnlab.data.cifar import load_batch

    images = (np.arange(4 * 3072) % 251).astype(np.uint8).reshape(4, 3072)
    loaded = load_batch(io.BytesIO(python2_batch(images, [3, 1, 4, 1])), "py2 batch")
    assert set(loaded) == {"data", "labels"} and loaded["labels"] == [3, 1, 4, 1]
    np.testing.assert_array_equal(loaded["data"], images)
