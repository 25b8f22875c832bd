"""The rows ``cnnlab datasets`` prints: every registered dataset and where its files are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.data.cache import cache_state
from cnnlab.data.registry import DATASETS


def dataset_table(data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One dict per dataset: name, shape (C, H, W) or None, classes, train, test, size, description, state.

    ``size`` is the download size in bytes (0 when nothing is downloaded); ``state`` is
    "cached at PATH", "embedded ...", "missing: will download ... from URL to PATH" or
    "your files (path: in the spec)". Looks at file names and sizes only, so it is instant.
    """
    rows = []
    for name in DATASETS.names():
        info = DATASETS.get(name)
        rows.append({
            "name": name,
            "shape": info.shape,
            "classes": info.classes,
            "train": info.train_size,
            "test": info.test_size,
            "size": info.download_size,
            "description": info.description,
            "state": cache_state(info, data_dir),
            "files": [f.name for f in info.files],
            "mirrors": list(info.mirrors),
        })
    return rows
