"""One ``cnnlab run`` per study and output folder at a time (other studies may share the folder)."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any, Optional

from cnnlab.errors import StoreError


class StoreLock:
    """An exclusive advisory lock; the OS drops it when the process dies, so it never goes stale."""

    def __init__(self, folder: str | Path, study: str = ""):
        digest = hashlib.sha256(study.encode()).hexdigest()[:12]
        self.path = Path(folder) / f".lock-{digest}"
        self.study = study
        self.handle: Optional[Any] = None

    def __enter__(self) -> "StoreLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Never through a link: a link planted at this predictable name would otherwise have
            # the pid written into (and the file truncated) wherever it points.
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:
            reason = "it is a link; remove it" if self.path.is_symlink() else (error.strerror or str(error))
            raise StoreError(f"{self.path}: cannot use this lock file ({reason}); nothing was changed") from None
        handle = os.fdopen(descriptor, "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreError(
                f"{self.path.parent}: study '{self.study}' is being run by another cnnlab process (pid {holder}); "
                "wait for it to finish, or stop it (its finished runs are kept) and run again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
