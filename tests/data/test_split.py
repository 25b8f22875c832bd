"""Splits: counts, fractions, rest, sources, stratification, disjointness, seeds, k-fold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.data import ArrayDataset, Source, make_splits
from cnnlab.errors import DataError
from cnnlab.spec.study import Split


def fake_source(train: int, test: int | None, classes: int = 10, name: str = "fake", skew: bool = False) -> Source:
    """Images carry their own index in their pixels (int32 bytes), so a split can be traced back."""

    def part(n: int, offset: int) -> ArrayDataset:
        index = torch.arange(n, dtype=torch.int64) + offset
        images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
        images.view(n, 4)[:] = torch.stack([(index >> s) & 255 for s in (0, 8, 16, 24)], 1).to(torch.uint8)
        labels = (index % classes) if not skew else torch.where(index % 10 < 7, 0, 1 + index % (classes - 1))
        return ArrayDataset(images, labels)

    return Source(name, part(train, 0), part(test, 10**6) if test is not None else None, [str(c) for c in range(classes)])


def ids(data: ArrayDataset) -> np.ndarray:
    flat = data.images.view(len(data), 4).to(torch.int64)
    return (flat[:, 0] | flat[:, 1] << 8 | flat[:, 2] << 16 | flat[:, 3] << 24).numpy()


def split(**parts) -> Split:
    return Split.model_validate(parts)


def test_counts_from_train_and_the_official_test_part():
    # Study B: 40,000 / 10,000 from the training set; the official 10,000 test images.
    splits = make_splits(fake_source(50_000, 10_000), split(train=40_000, val=10_000, test="all"), seed=0)
    assert splits.sizes == {"train": 40_000, "val": 10_000, "test": 10_000}
    train, val, test = ids(splits.train), ids(splits.val), ids(splits.test)
    assert len(np.intersect1d(train, val)) == 0 and train.max() < 50_000 and val.max() < 50_000
    np.testing.assert_array_equal(test, np.arange(10_000) + 10**6)  # whole test part, in order
    assert splits.input_shape == (1, 2, 2) and splits.num_classes == 10


def test_study_a_draws_val_and_test_from_the_test_set_split_in_two():
    spec = split(train=25_000, val={"from": "test", "count": 5_000}, test=5_000)
    splits = make_splits(fake_source(50_000, 10_000), spec, seed=3)
    assert splits.sizes == {"train": 25_000, "val": 5_000, "test": 5_000}
    train, val, test = ids(splits.train), ids(splits.val), ids(splits.test)
    assert train.max() < 50_000 and val.min() >= 10**6 and test.min() >= 10**6
    assert len(np.intersect1d(val, test)) == 0
    assert len(np.union1d(val, test)) == 10_000  # together they are the whole test set
    for data in (splits.train, splits.val, splits.test):  # stratified by default
        assert set(data.labels.bincount().tolist()) == {len(data) // 10}


def test_fractions_and_rest():
    splits = make_splits(fake_source(1000, 200), split(train="rest", val=0.15, test=0.5), seed=0)
    assert splits.sizes == {"train": 850, "val": 150, "test": 100}
    assert len(np.intersect1d(ids(splits.train), ids(splits.val))) == 0
    assert len(np.union1d(ids(splits.train), ids(splits.val))) == 1000


def test_default_split_is_rest_tenth_and_all_of_test():
    splits = make_splits(fake_source(1000, 300), Split(), seed=0)
    assert splits.sizes == {"train": 900, "val": 100, "test": 300}


def test_val_zero_gives_none():
    splits = make_splits(fake_source(100, 50), split(val=0), seed=0)
    assert splits.val is None and splits.sizes["val"] == 0 and splits.sizes["train"] == 100


def test_dataset_without_test_part_draws_test_from_train():
    splits = make_splits(fake_source(500, None), split(train="rest", val=0.1, test=0.2), seed=1)
    assert splits.sizes == {"train": 350, "val": 50, "test": 100}
    all_ids = np.concatenate([ids(splits.train), ids(splits.val), ids(splits.test)])
    assert len(np.unique(all_ids)) == 500


def test_default_test_all_on_a_dataset_without_test_part_explains_what_to_write():
    with pytest.raises(DataError, match=r"'all' of the training part of 'fake' \(500 examples\).*test: 0.2"):
        make_splits(fake_source(500, None), Split(), seed=0)


def test_test_from_a_missing_test_part_is_refused():
    with pytest.raises(DataError, match="has no test part"):
        make_splits(fake_source(100, None), split(val=0, test={"from": "test", "count": 10}), seed=0)


def test_counts_exceeding_the_source_say_the_numbers():
    with pytest.raises(DataError, match=r"train 45,000 \+ val 10,000 = 55,000 examples, 5,000 more than it has"):
        make_splits(fake_source(50_000, 10_000), split(train=45_000, val=10_000), seed=0)


def test_two_rests_on_one_source_are_refused():
    with pytest.raises(DataError, match="only one split can take the rest"):
        make_splits(fake_source(100, 10), split(train="rest", val="rest"), seed=0)


def test_stratified_splits_keep_class_proportions():
    source = fake_source(10_000, None, classes=4, skew=True)  # class 0 is 70 %
    splits = make_splits(source, split(train="rest", val=0.2, test=0.1), seed=5)
    overall = source.train.labels.bincount().double() / len(source.train)
    for data in (splits.train, splits.val, splits.test):
        share = data.labels.bincount(minlength=4).double() / len(data)
        assert torch.allclose(share, overall, atol=1.5 / len(data))


def test_unstratified_splits_are_plain_random_draws():
    splits = make_splits(fake_source(1000, 100), split(train=500, val=100, stratify=False), seed=0)
    assert splits.sizes == {"train": 500, "val": 100, "test": 100}
    assert len(np.intersect1d(ids(splits.train), ids(splits.val))) == 0


def test_same_seed_same_split_other_seed_other_fingerprint():
    source = fake_source(2000, 500)
    spec = split(train=1000, val=300, test=200)
    a, b = make_splits(source, spec, seed=7), make_splits(source, spec, seed=7)
    assert a.fingerprint == b.fingerprint and np.array_equal(ids(a.val), ids(b.val))
    c = make_splits(source, spec, seed=8)
    assert c.fingerprint != a.fingerprint and not np.array_equal(ids(a.val), ids(c.val))
    # The spec's own split seed wins over the study seed.
    d = make_splits(source, split(train=1000, val=300, test=200, seed=7), seed=99)
    assert d.fingerprint == a.fingerprint


def test_split_indices_are_sorted_and_recorded():
    splits = make_splits(fake_source(300, 100), split(train=200, val=50, test=40), seed=0)
    for name in ("train", "val", "test"):
        ((origin, index),) = splits.indices[name]
        assert np.all(np.diff(index) > 0)
        assert np.array_equal(ids(getattr(splits, name)), index + (10**6 if origin == "test" else 0))


@pytest.mark.parametrize("spec", [{"train": 40_000, "val": 10_000}, {"train": 25_000, "val": {"from": "test", "count": 5_000}, "test": 5_000}])
def test_kfold_folds_are_disjoint_and_cover_the_pool(spec):
    source = fake_source(50_000, 10_000)
    plain = make_splits(source, split(**spec), seed=0)
    pool = np.union1d(ids(plain.train), ids(plain.val))
    k = 5
    vals = []
    for fold in range(k):
        folded = make_splits(source, split(**spec), seed=0, kfold=k, fold=fold)
        train, val = ids(folded.train), ids(folded.val)
        assert len(np.intersect1d(train, val)) == 0
        assert np.array_equal(np.union1d(train, val), pool)
        assert np.array_equal(ids(folded.test), ids(plain.test))  # test unchanged
        assert abs(len(val) - len(pool) / k) <= 1
        assert set(folded.val.labels.bincount().tolist()) <= {len(val) // 10, len(val) // 10 + 1}  # stratified
        vals.append(val)
    everything = np.concatenate(vals)
    assert len(everything) == len(pool) and np.array_equal(np.sort(everything), pool)


def test_kfold_fold_out_of_range_is_refused():
    with pytest.raises(DataError, match="fold must be 0 to 2"):
        make_splits(fake_source(100, 10), Split(), seed=0, kfold=3, fold=3)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    classes=st.integers(1, 7),
    shares=st.tuples(st.floats(0.01, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    stratify=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_drawn_splits_have_the_asked_sizes_and_never_overlap(n, classes, shares, stratify, seed):
    from cnnlab.data.split import draw

    total = sum(shares)
    counts = dict(zip(("train", "val", "test"), (int(n * s / total) for s in shares)))
    labels = np.random.default_rng(seed).integers(0, classes, n)
    chosen = draw(labels, counts, np.random.default_rng(seed), stratify)
    assert {p: len(i) for p, i in chosen.items()} == counts
    everything = np.concatenate(list(chosen.values()))
    assert len(np.unique(everything)) == len(everything) and (everything < n).all()
