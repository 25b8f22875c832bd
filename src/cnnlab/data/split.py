"""Train / validation / test splits drawn from a dataset's official parts, and k-fold pools.

A split is a set of indices into one official part (``train`` or ``test``); splits drawn from
the same part never overlap. Draws are seeded (numpy PCG64 through a SeedSequence of the seed
and the part), optionally stratified, and every split's indices are kept sorted, so index 0 of
the test split is the earliest test image taken (the first official test image when the whole
test part is used). The fingerprint hashes the exact indices, so a store can tell whether two
runs saw the same data.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from cnnlab.data.arrays import ArrayDataset, Source
from cnnlab.errors import DataError

PARTS = ("train", "val", "test")
ORIGINS = ("train", "test")
Entries = tuple[tuple[str, np.ndarray], ...]  # (official part, sorted int64 indices into it)


@dataclass(frozen=True)
class Splits:
    train: ArrayDataset
    val: Optional[ArrayDataset]  # None when the split asks for 0
    test: Optional[ArrayDataset]
    class_names: list[str]
    fingerprint: str  # sha256 of the exact indices (official part, index array) of every split
    sizes: dict[str, int]
    indices: dict[str, Entries] = field(default_factory=dict, repr=False, compare=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train.shape

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & (2**64 - 1), *stream]))


def _origin(part: str, requested: Optional[str], source: Source) -> str:
    if requested is None:
        return "train" if part in ("train", "val") or source.test is None else "test"
    if requested == "test" and source.test is None:
        raise DataError(f"split '{part}' asks for examples from the test part, but dataset '{source.name}' has "
                        f"no test part; draw it from the training part (remove 'from: test').")
    return requested


def resolve_counts(requests: dict[str, Any], available: int, origin: str, source: Source) -> dict[str, int]:
    """Each part's example count, from counts, fractions, 'rest' and 'all' sharing one source."""
    where = f"the {'training' if origin == 'train' else 'test'} part of '{source.name}' ({available:,} examples)"
    counts: dict[str, int] = {}
    rest = [p for p, c in requests.items() if c == "rest"]
    if len(rest) > 1:
        raise DataError(f"splits {' and '.join(rest)} both ask for 'rest' of {where}; only one split can take the rest.")
    for part, count in requests.items():
        if count == "all":
            others = [p for p, c in requests.items() if p != part and c != 0]
            if others:
                hint = (f" ('{source.name}' has no official test part, so the test split is drawn from its "
                        f"training part; e.g. split: {{test: 0.2}})") if source.test is None else ""
                raise DataError(f"split '{part}' asks for 'all' of {where}, but {' and '.join(others)} also draw "
                                f"from it; give '{part}' a count or a fraction instead{hint}.")
            counts[part] = available
        elif isinstance(count, float):
            counts[part] = math.floor(count * available + 0.5)
        elif isinstance(count, int):
            counts[part] = count
    fractions = {p: c for p, c in requests.items() if isinstance(c, float)}
    excess = sum(counts.values()) - available
    if excess > 0 and fractions and sum(fractions.values()) <= 1 + 1e-9:
        for part in sorted(fractions, key=lambda p: -counts[p])[:excess]:  # rounding overshoot only
            counts[part] -= 1
    taken = sum(counts.values())
    if taken > available:
        asked = " + ".join(f"{p} {counts[p]:,}" for p in counts)
        raise DataError(f"the splits drawn from {where} ask for {asked} = {taken:,} examples, "
                        f"{taken - available:,} more than it has. Lower the counts or draw a split from another part.")
    if rest:
        counts[rest[0]] = available - taken
    return counts


def _allocate(count: int, remaining: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-class counts summing to ``count``, proportional to ``remaining`` (largest remainders)."""
    total = int(remaining.sum())
    if count >= total:
        return remaining.copy()
    base, remainder = np.divmod(count * remaining, total)  # exact integer arithmetic
    extra = count - int(base.sum())
    if extra:
        ties = rng.random(len(remaining))
        order = np.lexsort((ties, -remainder))
        base[order[:extra]] += 1
    return base


def draw(labels: np.ndarray, counts: dict[str, int], rng: np.random.Generator, stratify: bool) -> dict[str, np.ndarray]:
    """Disjoint sorted index sets of the given sizes, stratified by label if asked."""
    n = len(labels)
    if not stratify:
        order = rng.permutation(n)
        out, start = {}, 0
        for part, count in counts.items():
            out[part] = np.sort(order[start:start + count]).astype(np.int64)
            start += count
        return out
    classes, inverse = np.unique(labels, return_inverse=True)
    by_class = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(classes)))[:-1]
    members = [rng.permutation(block) for block in np.split(by_class, bounds)]
    remaining = np.array([len(m) for m in members], dtype=np.int64)
    taken = np.zeros_like(remaining)
    out = {}
    for part, count in counts.items():
        share = _allocate(count, remaining, rng)
        chunks = [members[k][taken[k]:taken[k] + share[k]] for k in range(len(members))]
        out[part] = np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.zeros(0, np.int64)
        taken += share
        remaining -= share
    return out


def _gather(source: Source, entries: Entries) -> Optional[ArrayDataset]:
    parts = [source.part(origin).subset(torch.from_numpy(index)) for origin, index in entries if len(index)]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return ArrayDataset(torch.cat([p.images for p in parts]).contiguous(), torch.cat([p.labels for p in parts]).contiguous())


def fingerprint(indices: dict[str, Entries]) -> str:
    digest = hashlib.sha256()
    for part in PARTS:
        for origin, index in indices.get(part, ()):
            digest.update(f"{part}:{origin}:{len(index)}:".encode())
            digest.update(np.ascontiguousarray(index, dtype="<i8").tobytes())
        digest.update(b";")
    return digest.hexdigest()


def kfold_indices(pool: Entries, labels: np.ndarray, k: int, fold: int, rng: np.random.Generator,
                  stratify: bool) -> tuple[Entries, Entries]:
    """(train, val) entries of fold ``fold`` of a pool cut into ``k`` (stratified) folds."""
    origins = np.concatenate([np.full(len(index), ORIGINS.index(origin)) for origin, index in pool])
    index = np.concatenate([index for _, index in pool])
    order = rng.permutation(len(index))
    if stratify:  # group by class, random within a class, then deal the folds round-robin
        order = order[np.argsort(labels[order], kind="stable")]
    fold_of = np.empty(len(index), dtype=np.int64)
    fold_of[order] = np.arange(len(index)) % k

    def entries(mask: np.ndarray) -> Entries:
        return tuple((origin, np.sort(index[mask & (origins == code)]))
                     for code, origin in enumerate(ORIGINS) if (mask & (origins == code)).any())

    return entries(fold_of != fold), entries(fold_of == fold)


def make_splits(source: Source, split: Any, seed: int, *, kfold: int = 0, fold: Optional[int] = None) -> Splits:
    """Train / val / test of ``source`` as ``split`` (``cnnlab.spec.study.Split``) asks, seeded.

    With ``kfold=k`` the pool is what train and val would have been; it is cut into k
    (stratified) folds with the same seed for every fold, fold ``fold`` is val and the
    others train; test is unchanged.
    """
    seed = split.seed if getattr(split, "seed", None) is not None else seed
    origins = {part: _origin(part, getattr(split, part).source, source) for part in PARTS}
    indices: dict[str, Entries] = dict.fromkeys(PARTS, ())
    for code, origin in enumerate(ORIGINS):
        parts = [p for p in PARTS if origins[p] == origin]
        if not parts:
            continue
        data = source.part(origin)
        counts = resolve_counts({p: getattr(split, p).count for p in parts}, len(data), origin, source)
        counts = dict(sorted(counts.items(), key=lambda item: split_order(getattr(split, item[0]).count)))
        chosen = draw(data.labels.numpy(), counts, _rng(seed, code), split.stratify)
        for part in parts:
            indices[part] = ((origin, chosen[part]),)
    if kfold:
        if kfold < 2:
            raise DataError(f"kfold must be 0 (off) or at least 2; got {kfold}.")
        if fold is None or not 0 <= fold < kfold:
            raise DataError(f"fold must be 0 to {kfold - 1} with kfold={kfold}; got {fold}.")
        pool = indices["train"] + indices["val"]
        labels = np.concatenate([source.part(origin).labels.numpy()[index] for origin, index in pool])
        if len(labels) < kfold:
            raise DataError(f"{kfold}-fold cross-validation needs at least {kfold} examples in train + val; "
                            f"the split gives {len(labels)}.")
        indices["train"], indices["val"] = kfold_indices(pool, labels, kfold, fold, _rng(seed, 2, kfold), split.stratify)
    train = _gather(source, indices["train"])
    if train is None:
        raise DataError(f"the training split of '{source.name}' is empty; the split spec leaves no examples for it.")
    val, test = _gather(source, indices["val"]), _gather(source, indices["test"])
    return Splits(
        train=train, val=val, test=test, class_names=list(source.class_names), fingerprint=fingerprint(indices),
        sizes={"train": len(train), "val": len(val) if val is not None else 0, "test": len(test) if test is not None else 0},
        indices=indices,
    )


def split_order(count: Any) -> int:
    """Draw fixed-size splits first and 'rest' last, so sized splits get the exact proportions."""
    return 1 if count == "rest" else 0
