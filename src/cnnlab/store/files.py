"""A run's files in the store's artifacts folder, and the one rule for their paths: a path read
from the database (a run id, an artifact's relative path) is used only when it stays inside the
folder and passes through no link. A study folder may come from anyone, and its database can be
edited by hand; so every file is also checked against the size and sha256 the store recorded
when it wrote it, before anything reads it."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

from cnnlab.errors import StoreError
from cnnlab.fsutil import write_bytes_atomic
from cnnlab.store.artifacts import ExampleImages, Predictions, read_examples, read_predictions, read_weights

if TYPE_CHECKING:  # a type only: reading a store (ls, completion) need not load torch, a second of start-up
    import torch

ARTIFACTS = "artifacts"
CHECKPOINT_FILE = "checkpoint.pt"  # the name older cnnlab versions gave every checkpoint of a run
RUN_ID = re.compile(r"[0-9a-f]{16}")  # cnnlab.spec.plan.run_id: 16 hexadecimal digits
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # the names cnnlab gives a run's files

T = TypeVar("T")


def now() -> str:
    """The time stamp every row of the store carries (UTC, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def checkpoint_name(data: bytes) -> str:
    """A checkpoint's file name, from its content. Each checkpoint gets its own name so that the
    ``artifacts`` row always describes a whole file: a process killed between writing a new
    checkpoint and recording it leaves the row on the previous file, which still matches it."""
    return f"checkpoint-{hashlib.sha256(data).hexdigest()[:16]}.pt"


def _is_checkpoint(name: str) -> bool:
    return name == CHECKPOINT_FILE or (name.startswith("checkpoint-") and name.endswith(".pt"))


class RunFiles:
    """The file half of ``Store`` (it provides ``folder``, ``path``, ``db``, ``transaction``,
    ``_rows`` and ``_write_error``)."""

    folder: Path
    path: Path
    db: Any
    _rows: Callable[..., list]
    _write_error: Callable[[BaseException], StoreError]

    def run_folder(self, run_id: str) -> Path:
        """``artifacts/<run id>``; a StoreError for an id that is not one (a tampered database) or
        a folder that is a link (it could lead anywhere)."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise StoreError(f"{self.path}: {str(run_id)[:40]!r} is not a run id (16 hexadecimal digits); the store "
                             "was changed by hand. Nothing was read or written for it; rerun the study into a new folder")
        folder = self.folder / ARTIFACTS / run_id
        for step in (folder.parent, folder):
            if step.is_symlink():
                raise StoreError(f"{step} is a link; cnnlab reads and writes a run's files only inside the output "
                                 "folder, so nothing was read or written through it. Replace the link by a real folder")
        return folder

    def save_artifact(self, run_id: str, kind: str, filename: str, data: bytes) -> Path:
        """Write a file of a run atomically and record it (with its size and sha256)."""
        return self._save_together([(run_id, kind, filename, data)])[0]

    def _save_together(self, files: list[tuple[str, str, str, bytes]]) -> list[Path]:
        """Write each (run id, kind, file name, bytes) atomically, then record them all in one
        transaction: a kill leaves every row on its old file or every row on its new one."""
        paths = [self.run_folder(run_id) / filename for run_id, _, filename, _ in files]
        try:
            for path, (_, _, _, data) in zip(paths, files):
                write_bytes_atomic(path, data)
        except OSError as error:
            raise self._write_error(error) from None
        with self.transaction() as db:
            for run_id, kind, filename, data in files:
                db.execute(
                    "INSERT OR REPLACE INTO artifacts (run_id, kind, path, bytes, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, kind, f"{ARTIFACTS}/{run_id}/{filename}", len(data), hashlib.sha256(data).hexdigest(), now()),
                )
        return paths

    def _recorded(self, run_id: str, kind: str) -> Optional[tuple[Path, Any, Any]]:
        """The file recorded for a run's kind (checked to be ``artifacts/<run id>/<name>`` with no
        link on the way) and its recorded size and sha256; None when there is no row."""
        rows = self._rows("SELECT path, bytes, sha256 FROM artifacts WHERE run_id = ? AND kind = ?", (run_id, kind))
        if not rows:
            return None
        recorded = str(rows[0][0])
        parts = recorded.replace("\\", "/").split("/")  # a folder written on Windows reads the same
        # cnnlab records exactly this shape; anything else ('..', an absolute path, another run's
        # folder) was written by someone else and is never followed.
        if len(parts) != 3 or parts[0] != ARTIFACTS or parts[1] != run_id or not FILE_NAME.fullmatch(parts[2]):
            path = None
        else:
            path = self.run_folder(run_id) / parts[2]
        if path is None or path.is_symlink():
            raise StoreError(f"{self.path}: the {kind} file of run {str(run_id)[:40]} is recorded at {recorded[:80]!r}, "
                             "outside the store's artifacts folder or through a link; the store was changed by hand, "
                             "so it was not read. Rerun the study into a new folder")
        return path, rows[0][1], rows[0][2]

    def artifact_path(self, run_id: str, kind: str) -> Optional[Path]:
        """Where a run's file of this kind is (None when there is none); unverified, for messages
        and for removing it: read it through ``artifact_bytes``."""
        found = self._recorded(run_id, kind)
        return found[0] if found is not None and found[0].exists() else None

    def _read_recorded(self, run_id: str, kind: str) -> Optional[tuple[Path, bytes, bool]]:
        """The file's bytes and whether they are the ones the store recorded; None when there is none."""
        found = self._recorded(run_id, kind)
        if found is None or not found[0].exists():
            return None
        path, size, digest = found
        try:
            data = path.read_bytes()
        except OSError as error:
            raise StoreError(f"{path}: cannot read the run's {kind} file ({error.strerror or error}); "
                             "check the folder's permissions and run again") from None
        return path, data, len(data) == size and hashlib.sha256(data).hexdigest() == digest

    def artifact_bytes(self, run_id: str, kind: str) -> Optional[bytes]:
        """A run's file as cnnlab wrote it (None when it has none); a StoreError naming the file when
        its size or sha256 differ from those recorded: it was damaged or changed since."""
        found = self._read_recorded(run_id, kind)
        if found is None:
            return None
        path, data, intact = found
        if not intact:
            raise StoreError(_changed(path, kind))
        return data

    def _load(self, run_id: str, kind: str, read: Callable[[bytes, Path], T]) -> Optional[T]:
        found = self._read_recorded(run_id, kind)
        if found is None:
            return None
        path, data, intact = found
        if not intact:
            # Reading is safe (no reader runs code); it tells a damaged file from an altered one.
            try:
                read(data, path)
                unreadable = ""
            except StoreError as error:
                unreadable = str(error).removeprefix(str(path)).lstrip(": ").removeprefix("is ")
            raise StoreError(_changed(path, kind, unreadable))
        return read(data, path)

    def load_predictions(self, run_id: str) -> Optional[Predictions]:
        """A finished run's predictions file, verified and checked (None when it has none)."""
        return self._load(run_id, "predictions", read_predictions)

    def load_examples(self, run_id: str) -> Optional[ExampleImages]:
        """A finished run's example images, verified and checked (None when it has none)."""
        return self._load(run_id, "examples", read_examples)

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        return [dict(row) for row in self._rows("SELECT * FROM artifacts WHERE run_id = ? ORDER BY kind", (run_id,))]

    def save_checkpoint(self, run_id: str, data: bytes) -> Path:
        """Store a checkpoint's bytes beside the previous one, record it, then remove the previous
        one. They are opaque here: ``cnnlab.train.checkpoint`` writes and parses them."""
        path = self.save_artifact(run_id, "checkpoint", checkpoint_name(data), data)
        self._remove_checkpoints(run_id, keep=path.name)
        return path

    def save_checkpoints(self, checkpoints: list[tuple[str, bytes]]) -> None:
        """The checkpoints of a stacked group's members at one epoch, recorded in one transaction:
        killed at any moment, the members resume from the same epoch, so they stack again."""
        paths = self._save_together([(run_id, "checkpoint", checkpoint_name(data), data) for run_id, data in checkpoints])
        for (run_id, _), path in zip(checkpoints, paths):
            self._remove_checkpoints(run_id, keep=path.name)

    def checkpoint_bytes(self, run_id: str) -> Optional[bytes]:
        """The run's checkpoint file as cnnlab wrote it (unparsed: whoever resumes parses it), or None.

        A checkpoint that differs from what was recorded is refused, not discarded: refusing loses
        nothing (the file and the run's epochs stay for the user to look at or restore), while
        discarding would delete them on the strength of a guess. cnnlab's own crashes never cause
        a mismatch (see ``checkpoint_name``), so the refusal is never a false alarm."""
        found = self._read_recorded(run_id, "checkpoint")
        if found is None:
            return None
        path, data, intact = found
        if not intact:
            raise StoreError(f"{path}: changed since cnnlab wrote it (checksum mismatch), so run {run_id} was not "
                             "resumed from it and nothing was changed. Delete the file to train that run again from "
                             "scratch (the other runs are kept), or rerun with --force to train every run again")
        return data

    def drop_checkpoint(self, run_id: str) -> None:
        self._recorded(run_id, "checkpoint")  # a tampered row: refused before anything is removed
        with self.transaction() as db:
            db.execute("DELETE FROM artifacts WHERE run_id = ? AND kind = 'checkpoint'", (run_id,))
        self._remove_checkpoints(run_id)

    def _remove_checkpoints(self, run_id: str, keep: Optional[str] = None) -> None:
        """Delete the run's checkpoint files but ``keep`` (earlier ones, or what a killed process left)."""
        folder = self.run_folder(run_id)
        if not folder.is_dir():
            return
        for path in folder.iterdir():
            if _is_checkpoint(path.name) and path.name != keep and (path.is_symlink() or path.is_file()):
                path.unlink(missing_ok=True)  # a link planted here is removed, never what it points to

    def save_weights(self, run_id: str, data: bytes) -> Path:
        """Store final weights (safetensors bytes, from ``cnnlab.store.artifacts.serialize_weights``)."""
        return self.save_artifact(run_id, "weights", "weights.safetensors", data)

    def load_weights(self, run_id: str) -> dict[str, torch.Tensor]:
        """A finished run's final weights, verified (a StoreError when it has none or they are
        damaged or changed)."""
        weights = self._load(run_id, "weights", read_weights)
        if weights is None:
            raise StoreError(f"run {run_id} has no saved weights (is it finished? see 'cnnlab ls {self.folder}')")
        return weights


def _changed(path: Path, kind: str, unreadable: str = "") -> str:
    return (f"{path}: changed since cnnlab wrote it (checksum mismatch)"
            + (f", and reading it fails ({unreadable})" if unreadable else "")
            + f"; the run's {kind} file was not used and nothing was changed. Restore the file from a copy, or train "
            "the study again into a new folder (or in place with --force)")
