"""Datasets and splits already loaded in this process, reused across the runs of a plan.

Not to be confused with ``cnnlab.data.cache``, the download cache of dataset files on disk:
this one holds decoded tensors in memory and lives as long as the process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import torch

from cnnlab.data.arrays import ArrayDataset, Source
from cnnlab.data.source import load_source
from cnnlab.data.split import Splits, make_splits

if TYPE_CHECKING:  # only its fields are read: the data stage needs no spec at run time
    from cnnlab.spec.plan import RunConfig


def source_key(config: RunConfig) -> str:
    """Runs with the same key read the same published dataset."""
    spec = config.dataset
    return repr((spec.name, spec.path, spec.image_size, spec.grayscale))


@dataclass
class DataCache:
    """Datasets and splits already loaded in this process, reused across runs.

    Only the latest split is kept (k folds would otherwise hold k copies of the data); plans
    run the runs of one split together, so each split is cut once. ``keep_sources=False``
    also drops a dataset once its split is cut (worker processes, whose memory adds up).
    """

    data_dir: Optional[Path] = None
    log: Optional[Callable[[str], None]] = None
    keep_sources: bool = True
    sources: dict[str, Source] = field(default_factory=dict)
    splits: dict[str, tuple[Splits, ArrayDataset]] = field(default_factory=dict)

    def source(self, config: RunConfig) -> Source:
        key = source_key(config)
        if key not in self.sources:
            self.sources[key] = load_source(config.dataset, self.data_dir, log=self.log)
        return self.sources[key]

    def clear(self) -> None:
        """Forget every loaded dataset (a driver whose workers load their own)."""
        self.sources.clear()
        self.splits.clear()

    def split(self, config: RunConfig) -> tuple[Splits, ArrayDataset]:
        """The run's splits and its training set (``limit_train`` applied)."""
        key = repr((config.dataset.model_dump(), config.split_seed, config.kfold, config.fold, config.limit_train,
                    config.merge_val))
        if key not in self.splits:
            fold = 0 if config.merge_val and config.kfold else config.fold
            splits = make_splits(self.source(config), config.dataset.split, config.split_seed,
                                 kfold=config.kfold, fold=fold)
            train = splits.train
            if config.merge_val and splits.val is not None:
                train = ArrayDataset(torch.cat([train.images, splits.val.images]), torch.cat([train.labels, splits.val.labels]))
                splits = dataclasses.replace(splits, val=None, sizes={**splits.sizes, "val": 0})
            if config.limit_train is not None and config.limit_train < len(train):
                order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.split_seed))
                keep = order[: config.limit_train].sort().values
                train = ArrayDataset(train.images[keep].contiguous(), train.labels[keep].contiguous())
            self.splits.clear()
            self.splits[key] = (splits, train)
            if not self.keep_sources:
                self.sources.clear()
        return self.splits[key]


__all__ = ["DataCache", "source_key"]
