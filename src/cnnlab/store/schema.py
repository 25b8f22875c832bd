"""The run store's SQLite schema (version 2), and the migrations that bring older stores to it.

One file, ``cnnlab.sqlite``, per output folder, beside an ``artifacts/`` folder that holds one
sub-folder per run id (weights, resumable checkpoint, predictions). Tables:

- ``meta``: key/value; ``schema_version`` is the version of this schema.
- ``studies``: one row per study name: the verbatim spec, its validated JSON, where it was
  read from, the environment of the latest run of it and the accumulated wall time.
- ``runs``: one row per run; ``id`` is the stable hash of the run's resolved config
  (``cnnlab.spec.plan.run_id``). ``status`` is queued, running, interrupted, done, failed or
  diverged. Holds the config JSON, parameter counts, the hash of the exact split indices,
  the input shape and class names, the code version and environment, timings, the final metrics (of the weights the run ends
  with; best weights when early stopping restored them), the best validation metrics and
  the error of a failed run or the epoch where a run diverged.
- ``epochs``: per-epoch metrics of each run (0-based ``epoch``).
- ``artifacts``: files of a run, by kind, with size and sha256; paths are relative to the store
  folder. Kinds: ``weights`` (safetensors state dict), ``checkpoint`` (resumable state while
  the run is unfinished; loaded with ``weights_only=True``), ``predictions`` (npz: labels and
  softmax outputs of the val and test splits), ``examples`` (npz: a few correctly and wrongly
  classified evaluation images as uint8 with labels, predictions and confidences, so the report
  can show them without the dataset); ``cnnlab.store.artifacts`` writes and reads those two.
- ``plans`` (2): the run ids of each study's latest ``cnnlab run``, in plan order. Tables,
  comparisons, selection, findings and the report count these runs only; runs of an earlier
  version of the study (a quick ``--epochs 1`` trial, an architecture since edited) stay in
  ``runs`` and are listed apart (``cnnlab ls --all``) until ``cnnlab prune`` removes them.
- ``spec_history`` (2): every spec text a study had before it was replaced by an edited one.
- ``epochs.test_loss``/``test_accuracy`` (3): a final's test curve (``evaluate.test_curves``),
  measured after the choice and read by nothing that chooses.

A store written by an older cnnlab is migrated in place when it is opened (``MIGRATIONS``, one
transaction); a store written by a newer cnnlab is refused, never rewritten. So is a file that is
not a healthy cnnlab store (``identify``): another program's database, a damaged one, one missing
a table. Nothing is written to a file before it has been identified.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Optional

from cnnlab.errors import StoreError

SCHEMA_VERSION = 3

STATUSES = ("queued", "running", "interrupted", "done", "failed", "diverged")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    spec_text TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    spec_path TEXT,
    environment_json TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    wall_seconds REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    study TEXT NOT NULL REFERENCES studies(name),
    position INTEGER NOT NULL DEFAULT 0,
    architecture TEXT NOT NULL,
    variant TEXT NOT NULL,
    sweep_json TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    fold INTEGER,
    phase TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN {STATUSES!r}),
    config_json TEXT NOT NULL,
    params_total INTEGER,
    params_trainable INTEGER,
    params_non_trainable INTEGER,
    split_hash TEXT,
    split_sizes_json TEXT,
    input_shape_json TEXT,
    class_names_json TEXT,
    code_version TEXT,
    environment_json TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    train_seconds REAL,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    best_epoch INTEGER,
    stopped_epoch INTEGER,
    train_loss REAL,
    train_accuracy REAL,
    val_loss REAL,
    val_accuracy REAL,
    test_loss REAL,
    test_accuracy REAL,
    best_val_loss REAL,
    best_val_accuracy REAL,
    error TEXT,
    diverged_epoch INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_study ON runs (study, position);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    train_loss REAL,
    train_accuracy REAL,
    val_loss REAL,
    val_accuracy REAL,
    penalty REAL,
    lr REAL,
    seconds REAL,
    images_per_second REAL,
    test_loss REAL,
    test_accuracy REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, kind)
);
CREATE TABLE IF NOT EXISTS plans (
    study TEXT NOT NULL,
    run_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (study, run_id)
);
CREATE TABLE IF NOT EXISTS spec_history (
    study TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    spec_text TEXT NOT NULL,
    spec_path TEXT
);
"""

# version -> the statements that bring a store of that version to the next one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS plans (study TEXT NOT NULL, run_id TEXT NOT NULL, position INTEGER NOT NULL,"
        " PRIMARY KEY (study, run_id))",
        "CREATE TABLE IF NOT EXISTS spec_history (study TEXT NOT NULL, saved_at TEXT NOT NULL,"
        " spec_text TEXT NOT NULL, spec_path TEXT)",
    ),
    2: (
        "ALTER TABLE epochs ADD COLUMN test_loss REAL",
        "ALTER TABLE epochs ADD COLUMN test_accuracy REAL",
    ),
}

EPOCH_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "penalty", "lr", "seconds",
                 "images_per_second", "test_loss", "test_accuracy")
# Measured by a final's test curve only (evaluate.test_curves); an epoch without them reads without the keys.
TEST_CURVE_COLUMNS = ("test_loss", "test_accuracy")
METRIC_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")

# The tables a store of each version has (a table missing means the file was damaged or edited).
TABLES = {1: ("meta", "studies", "runs", "epochs", "artifacts")}
TABLES[2] = (*TABLES[1], "plans", "spec_history")
TABLES[3] = TABLES[2]

RECOVER = ("Restore cnnlab.sqlite from a copy (sqlite3's .recover command may rescue what is readable), "
           "or run the study again into a new folder")


def damaged(path: Path, detail: str) -> StoreError:
    """The error for a store file that cannot be trusted: it says so, and that nothing was changed."""
    return StoreError(f"{path}: the run store is damaged or was changed by another program ({detail}); "
                      f"nothing was changed. {RECOVER}")


def identify(db: sqlite3.Connection, path: Path) -> Optional[int]:
    """The schema version of the cnnlab store open in ``db``; None for a database with no tables
    (a new store). A StoreError for anything else: another program's database, a store of a newer
    cnnlab, one whose version or tables are not a cnnlab schema's, one SQLite finds damaged.
    Reads only: run before anything is written, so that nothing in such a file is overwritten."""
    tables = sorted(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    if not tables:
        return None
    foreign = StoreError(f"{path}: not a cnnlab store but another program's SQLite database (tables: "
                         f"{', '.join(tables)[:120]}); nothing in it was changed. Give cnnlab a folder that "
                         "'cnnlab run' wrote, or another --out folder for a new study")
    if "meta" not in tables:
        raise foreign
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.OperationalError:  # a 'meta' table of another design
        raise foreign from None
    if row is None:
        raise foreign
    value = str(row[0])
    if not value.isdigit() or int(value) < 1:
        raise damaged(path, f"its schema version is {value[:20]!r}, not a number")
    version = int(value)
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: store schema version {version}, this cnnlab reads versions up to "
                         f"{SCHEMA_VERSION}: the store was written by a newer cnnlab; upgrade cnnlab to read it "
                         "(nothing was changed)")
    missing = [table for table in TABLES[version] if table not in tables]
    if missing:
        raise damaged(path, f"its {', '.join(missing)} table{'s are' if len(missing) > 1 else ' is'} missing")
    # Reads every page (milliseconds for a study's store): a damaged page is found here, before
    # a write could spread it, rather than by whichever query meets it.
    problems = [" ".join(str(row[0]).split()) for row in db.execute("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        raise damaged(path, "SQLite's check finds it malformed: " + "; ".join(problems)[:200])
    return version
