"""Helpers for the hardening tests: real ``cnnlab`` processes, and what a healthy output folder is.

A healthy folder (``check_folder``) is one a crash, a fault or a second process must never spoil:
SQLite says ``integrity_check: ok``, no temporary file is left, every finished run has loadable
weights whose size and sha256 match the ``artifacts`` table, and no finished run keeps a checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import pytest
import yaml

from cnnlab.fsutil import TEMP_PREFIX

ROOT = Path(__file__).resolve().parents[2]
CNNLAB = [sys.executable, "-m", "cnnlab.cli"]
# Timings are not results: a resumed run takes a different time than an uninterrupted one.
TIMING_COLUMNS = {"seconds", "images_per_second", "train_seconds", "wall_seconds"}
# Run columns that describe one attempt rather than the result.
ATTEMPT_COLUMNS = {"attempts", "started_at", "finished_at", "created_at", "environment_json", "code_version",
                   "train_seconds", "position"}


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a cnnlab child process: this checkout's sources, no user cache or data dir."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("CNNLAB_DATA", None)
    env.update(extra)
    return env


def cnnlab(*args: Any, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``cnnlab ARGS`` to the end; stdout and stderr as text."""
    kwargs.setdefault("env", child_env())
    return subprocess.run([*CNNLAB, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)


def start_cnnlab(*args: Any, log: Optional[Path] = None, **kwargs: Any) -> subprocess.Popen:
    """Start ``cnnlab ARGS`` without waiting; output goes to ``log`` (or nowhere)."""
    kwargs.setdefault("env", child_env())
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    try:
        return subprocess.Popen([*CNNLAB, *map(str, args)], stdout=out, stderr=subprocess.STDOUT, **kwargs)
    finally:
        if log is not None:
            out.close()


def write_spec(path: Path, study: dict) -> Path:
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def assert_clean_error(result: subprocess.CompletedProcess, status: int = 2, *fragments: str) -> None:
    """The process failed the way a user should see it: the status, a message, no traceback."""
    assert result.returncode == status, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in stderr:\n{result.stderr}"


def wait_for_lock(folder: Path, process: subprocess.Popen, timeout: float = 60) -> float:
    """Wait until ``process`` holds a study lock in ``folder`` (its pid is in a .lock-*.pid file); the time then."""
    deadline = time.monotonic() + timeout
    pid = str(process.pid)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"cnnlab exited with {process.returncode} before taking the lock")
        for lock in folder.glob(".lock-*.pid"):
            try:
                if lock.read_text().strip() == pid:
                    return time.monotonic()
            except OSError:
                pass
        time.sleep(0.005)
    raise AssertionError(f"cnnlab did not take a lock in {folder} within {timeout} s")


def wait_for_training(folder: Path, process: subprocess.Popen, timeout: float = 120) -> float:
    """Wait until ``process`` has started training its first run (read-only polling); the time then."""
    deadline = time.monotonic() + timeout
    path = folder / "cnnlab.sqlite"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return time.monotonic()
        if path.exists():
            try:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
                try:
                    if db.execute("SELECT 1 FROM runs WHERE status IN ('running', 'done') LIMIT 1").fetchone():
                        return time.monotonic()
                finally:
                    db.close()
            except sqlite3.Error:
                pass  # not created yet
        time.sleep(0.01)
    raise AssertionError(f"cnnlab did not start training in {folder} within {timeout} s")


def write_digits_npz(path: Path) -> Path:
    """scikit-learn's digits as an npz dataset (uint8 N x 8 x 8): a child process reads it without
    importing scikit-learn, which keeps each ``cnnlab run`` start short."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    np.savez(path, x_train=images, y_train=bunch.target.astype(np.int64))
    return path


def fast_study(npz: Path, name: str = "fast", **train: Any) -> dict:
    """A study of 2 variants x 2 repeats on the digits npz that trains in about a second."""
    return {
        "name": name,
        "seed": 3,
        "dataset": {"name": "npz", "path": str(npz), "split": {"train": 500, "val": 200, "test": 200},
                    "augment": ["hflip"]},
        "architectures": {
            "small": [{"conv": {"filters": 8, "kernel": 3, "padding": "same"}}, {"maxpool": 2}, "flatten",
                      {"dense": 32}, {"dense": 10}],
        },
        "variants": {"none": {}, "dropout": {"dropout": 0.25}},
        "train": {"optimizer": {"name": "adam", "lr": 0.005}, "batch_size": 16, "epochs": 3, **train},
        "repeats": 2,
    }


# ---------------------------------------------------------------- reading a store without cnnlab


def connect(folder: Path) -> sqlite3.Connection:
    db = sqlite3.connect(folder / "cnnlab.sqlite", timeout=30)
    db.row_factory = sqlite3.Row
    return db


def epochs_table(folder: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Every epoch row, keyed by (run id, epoch), timings left out."""
    with connect(folder) as db:
        rows = db.execute("SELECT * FROM epochs ORDER BY run_id, epoch").fetchall()
    db.close()
    return {(r["run_id"], r["epoch"]): {k: r[k] for k in r.keys() if k not in TIMING_COLUMNS} for r in rows}  # noqa: SIM118 - a Row iterates values


def runs_table(folder: Path) -> dict[str, dict[str, Any]]:
    """Every run row by id: status, final and best metrics, counts; what one attempt was like left out."""
    with connect(folder) as db:
        rows = db.execute("SELECT * FROM runs ORDER BY study, position").fetchall()
    db.close()
    return {r["id"]: {k: r[k] for k in r.keys() if k not in ATTEMPT_COLUMNS} for r in rows}  # noqa: SIM118 - a Row iterates values


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.rglob(TEMP_PREFIX + "*"))


def check_folder(folder: Path) -> dict[str, int]:
    """Assert the folder is healthy (see the module doc); return counts of what was checked."""
    from safetensors.torch import load_file

    db = connect(folder)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        runs = {r["id"]: r["status"] for r in db.execute("SELECT id, status FROM runs")}
        artifacts = db.execute("SELECT * FROM artifacts").fetchall()
    finally:
        db.close()
    assert temporaries(folder) == [], f"temporary files left: {temporaries(folder)}"
    weights = 0
    for row in artifacts:
        path = folder / row["path"]
        assert path.is_file(), f"{row['path']} is recorded but missing"
        data = path.read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (row["bytes"], row["sha256"]), \
            f"{row['path']} does not match its artifacts row"
        if row["kind"] == "weights":
            assert load_file(str(path))
            weights += 1
        if row["kind"] == "checkpoint":
            assert runs[row["run_id"]] != "done", f"finished run {row['run_id']} still has a checkpoint"
    done = [run_id for run_id, status in runs.items() if status == "done"]
    for run_id in done:
        kinds = {row["kind"] for row in artifacts if row["run_id"] == run_id}
        assert {"weights", "predictions", "examples"} <= kinds, f"finished run {run_id} lacks files: {kinds}"
        # checkpoint.pt (stores before checksummed names) or checkpoint-<sha16>.pt
        kept = list((folder / "artifacts" / run_id).glob("checkpoint*.pt"))
        assert not kept, f"finished run {run_id} kept its checkpoint: {kept}"
    report = folder / "report.html"
    if report.exists():  # written last by cnnlab run: whole, or not there
        assert report.read_text(encoding="utf-8").rstrip().endswith("</html>"), "half a report"
    return {"runs": len(runs), "done": len(done), "weights": weights}


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its content (to prove nothing changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def snapshot_outside(root: Path, skip: Sequence[Path] = ()) -> set[str]:
    """Every path under ``root`` (to prove nothing was written outside where it may be)."""
    skipped = [str(p) for p in skip]
    return {str(p) for p in root.rglob("*") if not any(str(p).startswith(s) for s in skipped)}


@pytest.fixture(autouse=True)
def no_user_state(tmp_path_factory, monkeypatch):
    """No test sees or fills the user's dataset cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
