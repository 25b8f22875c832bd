"""A run's files in the store's artifacts folder, and the one rule for their paths: a path read
from the database (a run id, an artifact's relative path) is used only when it stays inside the
folder. A study folder may come from anyone, and its database can be edited by hand."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from cnnlab.errors import StoreError
from cnnlab.fsutil import write_bytes_atomic
from cnnlab.store.artifacts import read_weights

ARTIFACTS = "artifacts"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_ID = re.compile(r"[0-9a-f]{16}")  # cnnlab.spec.plan.run_id: 16 hexadecimal digits


def now() -> str:
    """The time stamp every row of the store carries (UTC, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunFiles:
    """The file half of ``Store`` (it provides ``folder``, ``path``, ``db``, ``transaction`` and
    ``_write_error``)."""

    folder: Path
    path: Path
    db: Any

    def run_folder(self, run_id: str) -> Path:
        """``artifacts/<run id>``; a StoreError for an id that is not one (a tampered database)."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise StoreError(f"{self.path}: {str(run_id)[:40]!r} is not a run id (16 hexadecimal digits); the store "
                             "was changed by hand. Nothing was read or written for it; rerun the study into a new folder")
        return self.folder / ARTIFACTS / run_id

    def save_artifact(self, run_id: str, kind: str, filename: str, data: bytes) -> Path:
        """Write a file of a run atomically and record it."""
        path = self.run_folder(run_id) / filename
        try:
            write_bytes_atomic(path, data)
        except OSError as error:
            raise self._write_error(error) from None
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO artifacts (run_id, kind, path, bytes, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, kind, str(path.relative_to(self.folder)), len(data), hashlib.sha256(data).hexdigest(), now()),
            )
        return path

    def artifact_path(self, run_id: str, kind: str) -> Optional[Path]:
        row = self.db.execute("SELECT path FROM artifacts WHERE run_id = ? AND kind = ?", (run_id, kind)).fetchone()
        if row is None:
            return None
        path = self.folder / str(row[0])
        inside = (self.folder / ARTIFACTS).resolve()
        if path.is_symlink() or not path.resolve().is_relative_to(inside):
            raise StoreError(f"{self.path}: the {kind} file of run {run_id} is recorded at {str(row[0])[:80]!r}, "
                             "outside the store's artifacts folder or through a link; the store was changed by hand, "
                             "so it was not read")
        return path if path.exists() else None

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM artifacts WHERE run_id = ? ORDER BY kind", (run_id,)).fetchall()
        return [dict(row) for row in rows]

    def save_checkpoint(self, run_id: str, data: bytes) -> Path:
        """Store a checkpoint's bytes, replacing the previous one atomically. They are opaque here:
        ``cnnlab.train.checkpoint`` writes and parses them."""
        return self.save_artifact(run_id, "checkpoint", CHECKPOINT_FILE, data)

    def checkpoint_bytes(self, run_id: str) -> Optional[bytes]:
        """The run's checkpoint file as it is (unparsed: whoever resumes parses it), or None."""
        path = self.artifact_path(run_id, "checkpoint")
        if path is None:
            return None
        return path.read_bytes()

    def drop_checkpoint(self, run_id: str) -> None:
        path = self.artifact_path(run_id, "checkpoint")
        with self.transaction() as db:
            db.execute("DELETE FROM artifacts WHERE run_id = ? AND kind = 'checkpoint'", (run_id,))
        if path is not None:
            path.unlink(missing_ok=True)

    def save_weights(self, run_id: str, data: bytes) -> Path:
        """Store final weights (safetensors bytes, from ``cnnlab.store.artifacts.serialize_weights``)."""
        return self.save_artifact(run_id, "weights", "weights.safetensors", data)

    def load_weights(self, run_id: str) -> dict[str, torch.Tensor]:
        """A finished run's final weights (a StoreError when it has none or they are damaged)."""
        path = self.artifact_path(run_id, "weights")
        if path is None:
            raise StoreError(f"run {run_id} has no saved weights (is it finished? see 'cnnlab ls {self.folder}')")
        return read_weights(path)
