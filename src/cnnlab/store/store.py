"""The run store: a SQLite file (WAL) and an artifacts folder; writes, queries, resume bookkeeping."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from cnnlab.errors import StoreError
from cnnlab.fsutil import remove_stale_temporaries
from cnnlab.records import RecordError, RunRecord, StudyRecord
from cnnlab.store.files import ARTIFACTS, RUN_ID, RunFiles, now
from cnnlab.store.schema import (EPOCH_COLUMNS, METRIC_COLUMNS, MIGRATIONS, RECOVER, SCHEMA, SCHEMA_VERSION,
                                 TEST_CURVE_COLUMNS, damaged, identify)

DB_NAME = "cnnlab.sqlite"

log = logging.getLogger(__name__)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class Store(RunFiles):
    """One output folder's runs. Open with ``Store(folder)``; close (or use ``with``)."""

    def __init__(self, folder: str | Path, *, create: bool = True, read_only: bool = False):
        """``read_only`` (with ``create=False``) opens it as on a read-only disk: nothing is written, not
        even an older store's schema migration (shell completion must not change a folder on TAB)."""
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        if not create and not self.path.exists():
            raise StoreError(f"{self.folder}: no cnnlab store here (no {DB_NAME}); run 'cnnlab run SPEC --out {self.folder}' first")
        writable = not read_only and (os.access(self.folder, os.W_OK) if self.folder.exists() else True)
        self.writable = writable
        self.version = SCHEMA_VERSION
        if create and not writable:
            raise StoreError(f"{self.folder}: cannot write here (the folder is read-only or not yours); whatever it holds "
                             "is kept. Make it writable and run again, or choose another --out")
        if (self.folder / ARTIFACTS).is_symlink():
            raise StoreError(f"{self.folder / ARTIFACTS} is a link; cnnlab reads and writes a run's files only inside "
                             "the output folder, so nothing was read or written. Replace the link by a real folder")
        self.db: Optional[sqlite3.Connection] = None
        try:
            if create:
                (self.folder / ARTIFACTS).mkdir(parents=True, exist_ok=True)
            if writable:
                self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            else:  # results on a read-only disk or share: read them without the lock files SQLite would create
                self.db = sqlite3.connect(_read_only_uri(self.path), uri=True, timeout=30.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            found = identify(self.db, self.path)  # before anything is written to the file
            if writable:
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate(found, create)
            if create:
                self._remove_debris()
        except BaseException as error:
            if self.db is not None:
                self.db.close()
            if isinstance(error, sqlite3.DatabaseError):
                raise self._write_error(error) from None  # it tells a damaged file from a refusing disk
            if isinstance(error, OSError):  # permissions, a read-only file system, a full disk
                raise StoreError(f"{self.folder}: cannot write here ({error.strerror or error}); choose another --out "
                                 "or fix the folder") from None
            raise

    def _remove_debris(self) -> None:
        """What killed processes left: temporary files, and checkpoints of runs that finished."""
        finished = [row[0] for row in self._rows("SELECT id FROM runs WHERE status = 'done'")]
        for run_id in finished:  # every id checked before anything goes: a tampered one refuses the store unchanged
            self.run_folder(run_id)
        remove_stale_temporaries(self.folder, recursive=False)  # e.g. a report being written
        remove_stale_temporaries(self.folder / ARTIFACTS)
        if self._rows("SELECT 1 FROM artifacts WHERE kind = 'checkpoint' AND run_id IN"
                      " (SELECT id FROM runs WHERE status = 'done') LIMIT 1"):
            with self.transaction() as db:
                db.execute("DELETE FROM artifacts WHERE kind = 'checkpoint' AND run_id IN"
                           " (SELECT id FROM runs WHERE status = 'done')")
        for run_id in finished:
            self._remove_checkpoints(run_id)

    def _migrate(self, version: Optional[int], create: bool) -> None:
        if version is not None:
            self.version = version
            if version < SCHEMA_VERSION and self.writable:
                with self.transaction():
                    for step in range(version, SCHEMA_VERSION):
                        for statement in MIGRATIONS[step]:
                            self.db.execute(statement)
                    self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                self.version = SCHEMA_VERSION
            return
        if not create:
            raise StoreError(f"{self.path}: not a cnnlab store (an empty database); nothing was changed. Give cnnlab "
                             "a folder that 'cnnlab run' wrote")
        with self.transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self.version = SCHEMA_VERSION

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All of the block's writes or none. A write the disk refuses (full, read-only, I/O
        error) is a StoreError that says so; what was committed before stays."""
        if self.db.in_transaction:
            # No block is open here (none nests), so this one was left open by a second Ctrl-C
            # that landed inside its rollback: its writes were half done, so they go.
            log.warning("%s: rolling back a transaction an interrupted write left open", self.path)
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.DatabaseError as error:
                raise self._write_error(error) from None
        try:
            # BEGIN inside the try: Ctrl-C can land between any two bytecodes, and one landing just
            # after the BEGIN must still roll it back (CI once saw the next write refused with
            # "cannot start a transaction within a transaction").
            self.db.execute("BEGIN IMMEDIATE")
            yield self.db
        except BaseException as error:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            if isinstance(error, sqlite3.DatabaseError):
                raise self._write_error(error) from None
            raise
        else:
            try:
                self.db.execute("COMMIT")
            except sqlite3.DatabaseError as error:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise self._write_error(error) from None

    def _rows(self, sql: str, args: Any = ()) -> list[sqlite3.Row]:
        """The one way the store reads its database: SQLite's errors (a damaged page, a dropped
        table or column) become a StoreError naming the file, never a traceback."""
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as error:
            raise self._read_error(error) from None

    def _read_error(self, error: sqlite3.DatabaseError) -> StoreError:
        text = str(error)
        if "locked" in text:
            return StoreError(f"{self.path}: another process kept the run store locked for too long ({text}); "
                              "run the same command again")
        if "not a database" in text:
            return StoreError(f"{self.path}: not a cnnlab store: not an SQLite database at all, or its first page is "
                              f"damaged ({text}); nothing was changed. {RECOVER}, or give cnnlab another folder")
        return damaged(self.path, text)

    def _write_error(self, error: BaseException) -> StoreError:
        if isinstance(error, sqlite3.DatabaseError) and (not isinstance(error, sqlite3.OperationalError)
                                                         or any(sign in str(error) for sign in _DAMAGE)):
            return self._read_error(error)  # not the disk's fault: the file is damaged or not cnnlab's
        if isinstance(error, sqlite3.Error) and "locked" in str(error):
            why = "another process kept it locked for too long; run the same command again"
        else:
            why = ("the disk may be full or the folder read-only or failing. Finished runs are kept: "
                   "free some space (or fix the folder) and run the same command again to resume")
        detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return StoreError(f"cannot write to the run store in {self.folder} ({detail}); {why}")

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def _record(self, kind: type, row: sqlite3.Row) -> Any:
        """A row as its typed record; a StoreError naming the file, the row and the column when a
        column does not hold what cnnlab writes there."""
        try:
            record = kind.from_row(row)
        except RecordError as error:
            raise StoreError(f"{self.path}: {error}: the store was damaged or changed by hand; nothing was changed. "
                             f"{RECOVER}") from None
        if kind is RunRecord and not RUN_ID.fullmatch(record.id):
            raise StoreError(f"{self.path}: runs row {record.id[:40]!r}: column id is not a run id (16 hexadecimal "
                             f"digits): the store was changed by hand; nothing was changed. {RECOVER}")
        return record

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ studies

    def save_study(self, name: str, spec_text: str, spec_json: Any, spec_path: Optional[str], environment: dict) -> None:
        """Record a study's spec. Another spec under the same name (the file edited, or another
        file: a study grown from a first subset) becomes the study's next version: the replaced
        text goes to ``spec_history``, never lost, and only the new plan's runs are counted."""
        stamp = now()
        known = next(iter(self._rows("SELECT spec_text, spec_path FROM studies WHERE name = ?", (name,))), None)
        with self.transaction() as db:
            if known is not None and known["spec_text"] != spec_text:
                db.execute("INSERT INTO spec_history (study, saved_at, spec_text, spec_path) VALUES (?, ?, ?, ?)",
                           (name, stamp, known["spec_text"], known["spec_path"]))
            db.execute(
                "INSERT INTO studies (name, spec_text, spec_json, spec_path, environment_json, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET spec_text=excluded.spec_text,"
                " spec_json=excluded.spec_json, spec_path=excluded.spec_path,"
                " environment_json=excluded.environment_json, updated_at=excluded.updated_at",
                (name, spec_text, json.dumps(spec_json, default=str), spec_path, _json(environment), stamp, stamp),
            )

    def add_wall_time(self, name: str, seconds: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE studies SET wall_seconds = wall_seconds + ? WHERE name = ?", (seconds, name))

    def studies(self) -> list[StudyRecord]:
        return [self._record(StudyRecord, row) for row in self._rows("SELECT * FROM studies ORDER BY created_at, name")]

    def study(self, name: Optional[str] = None) -> StudyRecord:
        """One study by name; without a name, the only study (an error when there are several)."""
        studies = self.studies()
        if name is None:
            if len(studies) != 1:
                names = ", ".join(s["name"] for s in studies) or "none"
                raise StoreError(f"{self.folder} holds {len(studies)} studies ({names}); name one with --study")
            return studies[0]
        for study in studies:
            if study["name"] == name:
                return study
        raise StoreError(f"{self.folder}: no study named '{name}' (studies: {', '.join(s['name'] for s in studies) or 'none'})")

    # ------------------------------------------------------------ runs

    def register_runs(self, configs: list[Any]) -> None:
        """Insert plan runs not yet known as queued; keep the state of known ones."""
        stamp = now()
        with self.transaction() as db:
            for position, config in enumerate(configs):
                db.execute(
                    "INSERT INTO runs (id, study, position, architecture, variant, sweep_json, repeat, fold, phase, seed,"
                    " status, config_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET position=excluded.position",
                    (config.run_id, config.study, position, config.architecture, config.variant, _json(config.sweep),
                     config.repeat, config.fold, config.phase, config.seed, _json(config.model_dump(mode="json")), stamp),
                )

    def run(self, run_id: str) -> Optional[RunRecord]:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))
        return self._record(RunRecord, rows[0]) if rows else None

    def runs(self, study: Optional[str] = None, status: Optional[str] = None, *, earlier: bool = False,
             every: bool = False, damaged: Optional[list[StoreError]] = None) -> list[RunRecord]:
        """A study's runs as typed records (JSON fields parsed), in plan order: those of its
        latest plan (what every table counts), or with ``earlier`` those of earlier versions
        only, or with ``every`` all of them. Without ``study``: every run of the folder.
        A row that cannot be read is a StoreError; with a ``damaged`` list, it is left out and
        its error added there instead (to show what can still be read)."""
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if study is not None:
            query += " AND study = ?"
            args.append(study)
            if not every and self.plan(study) is not None:
                query += f" AND id {'NOT IN' if earlier else 'IN'} (SELECT run_id FROM plans WHERE study = ?)"
                args.append(study)
            elif earlier:
                return []
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        records = []
        for row in self._rows(query + " ORDER BY study, position", args):
            try:
                records.append(self._record(RunRecord, row))
            except StoreError as error:
                if damaged is None:
                    raise
                damaged.append(error)
        return records

    def set_plan(self, study: str, run_ids: list[str]) -> None:
        """Make these runs the study's counted plan (those of an earlier plan stay, uncounted)."""
        with self.transaction() as db:
            db.execute("DELETE FROM plans WHERE study = ?", (study,))
            db.executemany("INSERT OR IGNORE INTO plans (study, run_id, position) VALUES (?, ?, ?)",
                           [(study, run_id, position) for position, run_id in enumerate(run_ids)])

    def plan(self, study: str) -> Optional[list[str]]:
        """The run ids of the study's latest plan; None for a study from before plans were kept
        (then every run of it counts)."""
        if self.version < 2:
            return None
        ids = [row[0] for row in self._rows("SELECT run_id FROM plans WHERE study = ? ORDER BY position", (study,))]
        return ids or None

    def remove_runs(self, run_ids: list[str]) -> None:
        """Delete runs, their epochs and their files (``cnnlab prune``)."""
        folders = [self.run_folder(run_id) for run_id in run_ids]  # each id checked before anything goes
        with self.transaction() as db:
            for run_id in run_ids:
                db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def start_run(self, run_id: str, info: dict[str, Any]) -> None:
        """Mark a run running and record what it is about to train with."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status='running', attempts=attempts+1, started_at=COALESCE(started_at, ?),"
                " params_total=?, params_trainable=?, params_non_trainable=?, split_hash=?, split_sizes_json=?,"
                " input_shape_json=?, class_names_json=?, code_version=?, environment_json=?, error=NULL,"
                " diverged_epoch=NULL WHERE id=?",
                (now(), info["params_total"], info["params_trainable"], info["params_non_trainable"],
                 info["split_hash"], _json(info["split_sizes"]), _json(info["input_shape"]), _json(info["class_names"]),
                 info["code_version"], _json(info["environment"]), run_id),
            )

    def record_epoch(self, run_id: str, epoch: int, logs: dict[str, float]) -> None:
        values = [logs.get(column) for column in EPOCH_COLUMNS]
        values[EPOCH_COLUMNS.index("images_per_second")] = logs.get("train_images_per_second")
        with self.transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO epochs (run_id, epoch, {', '.join(EPOCH_COLUMNS)})"
                f" VALUES (?, ?, {', '.join('?' * len(EPOCH_COLUMNS))})",
                (run_id, epoch, *values),
            )
            db.execute("UPDATE runs SET epochs_done = ? WHERE id = ?", (epoch + 1, run_id))

    def truncate_epochs(self, run_id: str, keep: int) -> None:
        """Forget epochs from ``keep`` on (they will be trained again after a resume)."""
        with self.transaction() as db:
            db.execute("DELETE FROM epochs WHERE run_id = ? AND epoch >= ?", (run_id, keep))
            db.execute("UPDATE runs SET epochs_done = ? WHERE id = ?", (keep, run_id))

    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        epochs = [dict(row) for row in self._rows("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))]
        for epoch in epochs:
            wrong = [c for c in EPOCH_COLUMNS if not isinstance(epoch.get(c), (int, float, type(None)))]
            if not isinstance(epoch.get("epoch"), int) or wrong:  # what a hand edit of the table can leave
                column = (wrong or ["epoch"])[0]
                raise StoreError(f"{self.path}: epochs row of run {run_id[:40]!r}: column {column} holds "
                                 f"{str(epoch.get(column))[:40]!r}, not a number: the store was damaged or changed "
                                 f"by hand; nothing was changed. {RECOVER}")
            for column in TEST_CURVE_COLUMNS:
                if epoch.get(column) is None:
                    epoch.pop(column, None)
        return epochs

    def finish_run(self, run_id: str, result: dict[str, Any]) -> None:
        """Mark a run done with its final metrics; its checkpoint goes in the same transaction
        (a crash right after leaves at most the file, which the next open removes)."""
        columns = [*METRIC_COLUMNS, "best_val_loss", "best_val_accuracy", "best_epoch", "stopped_epoch", "train_seconds"]
        with self.transaction() as db:
            db.execute(
                f"UPDATE runs SET status='done', finished_at=?, {', '.join(c + '=?' for c in columns)} WHERE id=?",
                (now(), *[result.get(c) for c in columns], run_id),
            )
            db.execute("DELETE FROM artifacts WHERE run_id = ? AND kind = 'checkpoint'", (run_id,))
        self._remove_checkpoints(run_id)

    def end_run(self, run_id: str, status: str, error: Optional[str] = None, diverged_epoch: Optional[int] = None) -> None:
        """Mark a run failed, diverged or interrupted."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET status=?, error=?, diverged_epoch=?, finished_at=? WHERE id=?",
                       (status, error, diverged_epoch, now(), run_id))

    def reset_run(self, run_id: str) -> None:
        """Forget a run's epochs and files (``--force``)."""
        folder = self.run_folder(run_id)  # checked before anything goes
        with self.transaction() as db:
            db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM artifacts WHERE run_id = ?", (run_id,))
            db.execute("UPDATE runs SET status='queued', epochs_done=0, started_at=NULL, finished_at=NULL,"
                       " error=NULL, diverged_epoch=NULL WHERE id=?", (run_id,))
        shutil.rmtree(folder, ignore_errors=True)


# What SQLite says of a file it cannot make sense of, as against a disk that refuses a write.
_DAMAGE = ("malformed", "not a database", "no such table", "no such column", "has no column", "corrupt")


def _read_only_uri(path: Path) -> str:
    """A URI opening the store read-only; ``immutable`` (no lock files needed) unless a WAL file
    holds commits a killed writer never merged, which only a regular read-only open sees."""
    wal = path.with_name(path.name + "-wal")
    return path.resolve().as_uri() + ("?mode=ro" if wal.exists() and wal.stat().st_size else "?mode=ro&immutable=1")
