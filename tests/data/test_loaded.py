"""The in-memory cache of loaded datasets and splits that the runs of a plan share."""

from __future__ import annotations

import torch

from cnnlab.data import DataCache, source_key
from cnnlab.spec.loader import parse_study
from cnnlab.spec.plan import expand


def _plan(tiny_study):
    return expand(parse_study(tiny_study))


def test_runs_of_one_split_share_the_loaded_dataset_and_split(tiny_study):
    first, second = _plan(tiny_study)[:2]
    cache = DataCache()
    splits, train = cache.split(first)
    assert cache.split(second)[0] is splits and cache.split(second)[1] is train  # cut once
    assert list(cache.sources) == [source_key(first)] and source_key(first) == source_key(second)
    assert len(train) == splits.sizes["train"]


def test_only_the_latest_split_is_kept_and_workers_drop_the_dataset(tiny_study):
    config = _plan(tiny_study)[0]
    cache = DataCache(keep_sources=False)
    cache.split(config)
    assert not cache.sources and len(cache.splits) == 1
    other = config.model_copy(update={"split_seed": config.split_seed + 1})
    cache.split(other)
    assert len(cache.splits) == 1  # k folds would otherwise hold k copies
    cache.clear()
    assert not cache.sources and not cache.splits


def test_merge_val_and_limit_train_shape_the_training_set(tiny_study):
    config = _plan(tiny_study)[0]
    splits, train = DataCache().split(config)
    merged_splits, merged = DataCache().split(config.model_copy(update={"merge_val": True}))
    assert merged_splits.val is None and len(merged) == len(train) + len(splits.val)
    assert torch.equal(merged.images[: len(train)], train.images)
    limited = DataCache().split(config.model_copy(update={"limit_train": 10}))[1]
    assert len(limited) == 10
