"""The dataset registry, the checksum table, known shapes, the datasets table and digits."""

from __future__ import annotations

import pytest

from cnnlab.data import DATASETS, dataset_table, known_shape, load_source, make_splits
from cnnlab.spec.study import DATASET_NAMES, Dataset, Split


def test_spec_dataset_names_match_the_registry():
    assert sorted(DATASET_NAMES) == DATASETS.names()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "cifar100"])
def test_every_downloadable_file_has_size_sha256_md5_and_a_mirror(name):
    info = DATASETS.get(name)
    assert info.files and info.mirrors
    for remote in info.files:
        assert remote.size > 0 and len(remote.sha256) == 64 and len(remote.md5) == 32
        assert remote.content_md5 or remote.members


def test_cifar_archives_carry_the_published_md5():
    assert DATASETS.get("cifar10").files[0].md5 == "c58f30108f718f92721af3b95e74349a"
    assert DATASETS.get("cifar100").files[0].md5 == "eb9058c3a382ffc7106e4002c42a8d85"


def test_known_shapes_without_loading():
    assert known_shape(Dataset(name="mnist")) == ((1, 28, 28), 10)
    assert known_shape(Dataset(name="cifar100")) == ((3, 32, 32), 100)
    assert known_shape(Dataset(name="digits")) == ((1, 8, 8), 10)


def test_dataset_table_reports_cache_state(mnist_dir, tmp_path):
    rows = {row["name"]: row for row in dataset_table(mnist_dir.parent)}
    assert set(rows) == set(DATASET_NAMES)
    assert rows["mnist"]["state"] == f"cached at {mnist_dir}"
    assert rows["mnist"]["shape"] == (1, 28, 28) and rows["mnist"]["train"] == 60_000 and rows["mnist"]["classes"] == 10
    assert rows["cifar10"]["state"].startswith("missing: will download 170.5 MB from https://www.cs.toronto.edu/~kriz/")
    assert rows["digits"]["state"].startswith("embedded")
    assert rows["npz"]["shape"] is None


def test_digits_are_embedded_and_scaled_to_0_255():
    source = load_source(Dataset(name="digits"), download=False)
    assert source.train.images.shape == (1797, 1, 8, 8) and source.test is None
    assert int(source.train.images.max()) == 255 and int(source.train.images.min()) == 0
    splits = make_splits(source, Split.model_validate({"train": 400, "val": 200, "test": 200}), seed=0)
    assert splits.sizes == {"train": 400, "val": 200, "test": 200}
