"""The real MNIST files in shared/data/mnist load with the published counts and checksums."""

from __future__ import annotations

import gzip
import hashlib

from cnnlab.data import DATASETS, load_source
from cnnlab.data.cache import check_file
from cnnlab.spec.study import Dataset

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_files_match_the_published_checksums(mnist_dir):
    for remote in DATASETS.get("mnist").files:
        path = mnist_dir / remote.name
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != remote.sha256:
            # The shared copies are re-compressed (gzip header without name or time): the
            # payload must then be the published one, byte for byte.
            assert hashlib.md5(gzip.decompress(data)).hexdigest() == remote.content_md5, path
        assert check_file(path, remote) is None


def test_real_mnist_loads_with_the_known_class_counts(mnist_dir):
    source = load_source(Dataset(name="mnist"), mnist_dir, download=False)
    assert source.train.images.shape == (60_000, 1, 28, 28) and source.test.images.shape == (10_000, 1, 28, 28)
    assert source.train.images.is_contiguous() and source.train.labels.dtype.itemsize == 8
    assert source.train.labels.bincount().tolist() == TRAIN_COUNTS
    assert source.test.labels.bincount().tolist() == TEST_COUNTS
    assert source.class_names == [str(d) for d in range(10)]
    # Found through the parent folder too (<data-dir>/mnist/...).
    assert len(load_source(Dataset(name="mnist"), mnist_dir.parent, download=False).test) == 10_000
