"""Atomic file writes: every file cnnlab writes goes to a temporary name first, then is renamed.

A crash at any moment leaves either the old file or the new one, never half of one, and no
temporary file that a later run would mistake for data.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, BinaryIO

TEMP_PREFIX = ".tmp-cnnlab-"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=path.suffix, dir=path.parent)
    os.close(fd)
    temp = Path(name)
    # mkstemp creates 0600; give the file the permissions an ordinary open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)
    try:
        yield temp
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def write_atomic(path: str | Path, writer: Callable[[BinaryIO], None]) -> None:
    """Write a file through ``writer(handle)`` atomically."""
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            writer(handle)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda handle: handle.write(data))


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete temporary files a killed process left behind; return how many."""
    removed = 0
    for temp in Path(folder).rglob(TEMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            temp.unlink()
            removed += 1
    return removed


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
