"""In-memory datasets: uint8 images N x C x H x W and int64 labels, as every reader returns them.

Small-image training is bound by how fast batches are cut, so a dataset is two plain tensors
that a batch is gathered from by index; nothing is decoded or converted per sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from cnnlab.errors import DataError


# Class names "0", "1", ... are made for a dataset that names none, one per label up to the
# largest: a single label of 10**12 would make a trillion names (and a trillion-way classifier),
# exhausting memory before any other check. No image-classification dataset cnnlab is for comes
# near this bound (ImageNet-21k has 21,841 classes); a label above it is a damaged or wrong file.
MAX_CLASSES = 100_000


def memory_budget() -> int:
    """The bytes a dataset may take in memory: half of this machine's RAM (training needs the
    rest). Readers compare what a file claims with it before allocating, so a hostile or
    mistaken file is an error instead of an out-of-memory kill."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return 8 << 30


def check_fits(claimed: int, where: str, advice: str) -> None:
    """A DataError when ``claimed`` bytes are more than ``memory_budget()``."""
    budget = memory_budget()
    if claimed > budget:
        raise DataError(f"{where} would take {_size(claimed)} in memory, more than the {_size(budget)} a dataset may "
                        f"use on this machine (half its memory). {advice}")


def _size(count: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count / 1e3:,.0f} kB"


@dataclass(frozen=True)
class ArrayDataset:
    """Images (uint8, N x C x H x W, contiguous) and their labels (int64, N)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"images must be a uint8 tensor N x C x H x W; got {self.images.dtype} with shape "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise DataError(f"labels must be an int64 vector; got {self.labels.dtype} with shape {tuple(self.labels.shape)}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor) -> "ArrayDataset":
        """The examples at ``index`` (an int64 tensor), copied into contiguous tensors."""
        return ArrayDataset(self.images.index_select(0, index).contiguous(), self.labels.index_select(0, index).contiguous())


@dataclass(frozen=True)
class Source:
    """A dataset as published: its official training part, its test part (if any), class names."""

    name: str
    train: ArrayDataset
    test: Optional[ArrayDataset]
    class_names: list[str]

    def part(self, name: str) -> Optional[ArrayDataset]:
        return self.train if name == "train" else self.test


def dataset_from_numpy(images: np.ndarray, labels: np.ndarray) -> ArrayDataset:
    """Wrap N x C x H x W uint8 and integer label arrays (copied only where needed)."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    y = torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64, copy=False))
    return ArrayDataset(x.contiguous(), y.contiguous())


def make_source(name: str, train: ArrayDataset, test: Optional[ArrayDataset], class_names: Sequence[str], where: str) -> Source:
    """A Source after the checks every reader needs: non-empty, same image shape, labels in range."""
    if len(train) == 0:
        raise DataError(f"{where}: the training part holds no images; a dataset needs at least one training example.")
    if test is not None and test.shape != train.shape:
        raise DataError(
            f"{where}: training images are {train.shape} (C, H, W) but test images are {test.shape}; "
            f"both parts must have one image shape."
        )
    names = [str(n) for n in class_names]
    for part_name, part in (("training", train), ("test", test)):
        if part is None or len(part) == 0:
            continue
        low, high = int(part.labels.min()), int(part.labels.max())
        if low < 0 or high >= len(names):
            raise DataError(
                f"{where}: {part_name} labels run from {low} to {high}, but there are {len(names)} classes "
                f"(labels must be 0 to {len(names) - 1})."
            )
    return Source(name=name, train=train, test=test, class_names=names)


def numbered_class_names(labels: Mapping[str, Optional[ArrayDataset]], where: str) -> list[str]:
    """Class names "0" to the largest label, for a dataset that names no classes.

    ``labels`` maps how each part's labels are called in messages ("'y_train'") to the part.
    A DataError names the part and the label when that would be more than ``MAX_CLASSES`` classes.
    """
    top, named = -1, ""
    for name, part in labels.items():
        if part is not None and len(part) and int(part.labels.max()) > top:
            top, named = int(part.labels.max()), name
    if top >= MAX_CLASSES:
        raise DataError(
            f"{where}: {named} holds the label {top:,}, which would make {top + 1:,} classes; cnnlab takes at most "
            f"{MAX_CLASSES:,}. Labels must be class indices 0, 1, 2, ...: renumber them, or check that the file is "
            f"the one you meant."
        )
    return [str(i) for i in range(top + 1)]
