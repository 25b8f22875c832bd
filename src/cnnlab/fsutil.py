"""Atomic file writes: every file cnnlab writes goes to a temporary name first, then is renamed.

A crash at any moment leaves either the old file or the new one, never half of one, and no
temporary file that a later run would mistake for data.

A temporary file's name says who writes it (``.tmp-cnnlab-<pid>-<host>-...``), so that cleaning
up after a killed process never deletes the temporary file of a live one: two studies may share
an output folder, and a second ``cnnlab run`` opens the store before it learns that the first
one still runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

TEMP_PREFIX = ".tmp-cnnlab-"
# A temporary file untouched this long is debris even if its writer's pid is alive again
# (pids are reused) or it was written from another machine sharing the folder.
STALE_SECONDS = 3600.0


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temporary_prefix() -> str:
    """The start of this process's temporary file names: ``.tmp-cnnlab-<pid>-<host>-``."""
    return f"{TEMP_PREFIX}{os.getpid()}-{_host()}-"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, recursive=False)
    fd, name = tempfile.mkstemp(prefix=temporary_prefix(), suffix=path.suffix, dir=path.parent)
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
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        writer(handle)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda handle: handle.write(data))


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_together_atomic(files: list[tuple[str | Path, bytes]]) -> None:
    """Write files that belong together (a model and its JSON): every one whole under a temporary
    name before any is renamed into place, in the order given."""
    with contextlib.ExitStack() as stack:
        # Entered in reverse, so the first file's context exits (renames) first.
        temps = [stack.enter_context(atomic_path(path)) for path, _ in reversed(files)][::-1]
        for temp, (_, data) in zip(temps, files):
            with open(temp, "wb") as handle:
                handle.write(data)


def remove_stale_temporaries(folder: str | Path, recursive: bool = True) -> int:
    """Delete temporary files that killed processes left behind; return how many.

    Temporary files of live processes on this machine are kept, so any process may call this
    at any time.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for temp in (folder.rglob if recursive else folder.glob)(TEMP_PREFIX + "*"):
        if _in_use(temp):
            continue
        with contextlib.suppress(OSError):
            temp.unlink()
            removed += 1
    return removed


def _in_use(temp: Path) -> bool:
    """Whether a temporary file may still be written: its writer is alive here, and it is recent."""
    pid_text, _, rest = temp.name[len(TEMP_PREFIX):].partition("-")
    host, _, _ = rest.partition("-")
    try:
        if time.time() - temp.stat().st_mtime > STALE_SECONDS:
            return False
    except OSError:
        return True  # gone already, or not ours to judge
    if not pid_text.isdigit():
        return False  # an older cnnlab's name: its writer is long gone
    if host != _host():
        return True  # written from another machine sharing the folder: only age tells
    pid = int(pid_text)
    if pid == os.getpid() or os.name == "nt":  # (on Windows os.kill would terminate the process)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
