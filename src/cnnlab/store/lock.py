"""One ``cnnlab run`` per study and output folder at a time (other studies may share the folder).

The lock is the operating system's own, taken through filelock's ``lock_descriptor``: ``flock``
on Linux and macOS, ``LockFileEx`` on Windows. The OS drops it when the process dies, so it never
goes stale. This module opens the descriptor itself rather than letting ``filelock.FileLock``
open the path, so that the open refuses a link planted at the lock's predictable name on every
filelock version (older ones opened the path with ``O_TRUNC`` and followed links), and so that
no soft-lock fallback (a marker file that outlives a killed process) can ever be chosen.

The holder's pid lives in a sibling file, ``.lock-<digest>.pid``, not in the lock file: Windows
locks byte zero of the lock file for reading too, so a second process could not read a pid
there; and a lock file that is never written cannot damage whatever a hard link planted at its
name points to. The pid file is replaced atomically (a link at its name is replaced, not
followed) after the lock is taken and removed before it is dropped, so a pid in it names the
holder; only a holder killed between the two leaves a stale one, which the next holder replaces.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path
from typing import Any, Optional

from filelock import lock_descriptor, unlock_descriptor

from cnnlab.errors import StoreError
from cnnlab.fsutil import write_text_atomic

# Where the platform has them: never open through a link (the open fails instead), and never wait
# on a fifo planted at the name. Windows has neither; the identity check after the open covers it.
_OPEN_FLAGS = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_BINARY", 0))
# A pid is a handful of digits; more than this is not a pid file cnnlab wrote.
_PID_BYTES = 32


class StoreLock:
    """An exclusive lock on ``folder`` for ``study``; the OS drops it when the process dies."""

    def __init__(self, folder: str | Path, study: str = ""):
        digest = hashlib.sha256(study.encode()).hexdigest()[:12]
        self.path = Path(folder) / f".lock-{digest}"
        self.pid_path = self.path.with_name(f"{self.path.name}.pid")
        self.study = study
        self.descriptor: Optional[int] = None

    def __enter__(self) -> "StoreLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = self._open()
        try:
            locked = lock_descriptor(descriptor, blocking=False)
        except OSError as error:
            os.close(descriptor)
            raise StoreError(
                f"{self.path}: cannot lock this file ({error.strerror or error}); the file system of "
                f"{self.path.parent} may not support locks: use a local folder for the results"
            ) from None
        if not locked:
            os.close(descriptor)
            raise StoreError(
                f"{self.path.parent}: study '{self.study}' is being run by another cnnlab process "
                f"(pid {self._holder()}); wait for it to finish, or stop it (its finished runs are kept) and run again"
            )
        self.descriptor = descriptor
        # The pid only makes the message above more helpful: a folder that takes the lock but not
        # this small file still runs (its results are written by the store, which says so if it fails).
        with contextlib.suppress(OSError):
            write_text_atomic(self.pid_path, str(os.getpid()))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.descriptor is None:
            return
        # Removed while still held, so it can never be the next holder's file that goes.
        with contextlib.suppress(OSError):
            self.pid_path.unlink()
        try:
            unlock_descriptor(self.descriptor)
        finally:
            os.close(self.descriptor)
            self.descriptor = None

    def _refuse(self, reason: str) -> StoreError:
        return StoreError(f"{self.path}: cannot use this lock file ({reason}); nothing was changed")

    def _open(self) -> int:
        """The lock file's descriptor, opened without following a link and without changing its bytes."""
        if self.path.is_symlink():
            raise self._refuse("it is a link; remove it")
        try:
            descriptor = os.open(self.path, _OPEN_FLAGS, 0o644)
        except OSError as error:
            reason = "it is a link; remove it" if self.path.is_symlink() else (error.strerror or str(error))
            raise self._refuse(reason) from None
        try:
            opened = os.fstat(descriptor)
            # Without O_NOFOLLOW a link could appear between the check and the open: the file
            # opened must be the very one at the name, and a plain file.
            if not os.path.samestat(opened, os.lstat(self.path)):
                raise self._refuse("it is a link; remove it")
            if not stat.S_ISREG(opened.st_mode):
                raise self._refuse("it is not a plain file; remove it")
        except OSError as error:
            os.close(descriptor)
            raise self._refuse(error.strerror or str(error)) from None
        except StoreError:
            os.close(descriptor)
            raise
        return descriptor

    def _holder(self) -> str:
        """The holder's pid from the pid file, or 'unknown'; reads a few bytes, never through a link."""
        try:
            if self.pid_path.is_symlink():
                return "unknown"
            descriptor = os.open(self.pid_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                                 | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except OSError:
            return "unknown"
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return "unknown"
            text = os.read(descriptor, _PID_BYTES).decode("ascii", "replace").strip()
        except OSError:
            return "unknown"
        finally:
            os.close(descriptor)
        return text if text.isdigit() else "unknown"
