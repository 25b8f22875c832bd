"""Loading a dataset named in a study spec into memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from cnnlab.data.arrays import Source
from cnnlab.data.cache import ensure_files
from cnnlab.data.download import DEFAULT_TIMEOUT
from cnnlab.data.registry import DATASETS, DatasetInfo


def load_source(
    spec: Any,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    log: Optional[Callable[[str], None]] = None,
) -> Source:
    """The dataset of a spec (``cnnlab.spec.study.Dataset``), as published, in memory.

    Built-in datasets are found in ``data_dir`` (or ``$CNNLAB_DATA``), then the user cache,
    then downloaded (unless ``download`` is False); npz and folder datasets read ``spec.path``.
    """
    return load_dataset(DATASETS.get(spec.name), spec, data_dir, download=download, log=log)


def load_dataset(
    info: DatasetInfo,
    spec: Any,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    log: Optional[Callable[[str], None]] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Source:
    """``load_source`` for an explicit registry entry (its files, checksums and mirrors)."""
    files = ensure_files(info, data_dir, download=download, log=log, timeout=timeout) if info.files else {}
    return info.reader(spec, files, info)
