"""Typed records of the store's rows: a study and a run, with their JSON columns parsed.

The shared vocabulary of the rooms that read results: the store makes them, and analysis,
report, explain and the command line read them (analysis sits below the store, so the type
lives in the kit rather than in ``cnnlab.store``).

Code reads fields by attribute (``run.val_accuracy``); a record is also a read-only mapping
(``run["val_accuracy"]``, ``run.get(...)``, ``dict(run)``), which is what the Python API has
always returned, so notebooks written against it keep working.
"""

from __future__ import annotations

import json
import sqlite3
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Iterator, Optional, Protocol


class RecordError(ValueError):
    """A row whose column does not hold what cnnlab writes there (a damaged or hand-edited store).
    The store turns it into a StoreError naming its file (the kit cannot import ``cnnlab.errors``)."""

    def __init__(self, table: str, key: str, column: str, problem: str):
        super().__init__(f"{table} row {key!r}: column {column} {problem}")
        self.table, self.key, self.column, self.problem = table, key, column, problem


class _Record(Mapping):
    """Mapping access to a dataclass's fields."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON)."""
        return {name: getattr(self, name) for name in self._names()}


def _fits(value: Any, kind: Any) -> bool:
    """Whether a value read from a row is of the field's declared type (one level into lists and dicts)."""
    if kind is Any:
        return True
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union:
        return any(_fits(value, option) for option in arguments)
    if kind is type(None):
        return value is None
    if kind is float:  # SQLite hands back an integer for a REAL that has no fraction
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_fits(item, arguments[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(_fits(k, arguments[0]) and _fits(v, arguments[1])
                                               for k, v in value.items())
    return isinstance(value, kind)


@cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parsed(cls: type, table: str, row: sqlite3.Row, json_columns: tuple[str, ...]) -> dict[str, Any]:
    """The row as the record's fields: JSON columns parsed, every value checked against its field's
    type. A store is a file anyone can edit, so a column that does not hold what cnnlab writes is a
    RecordError naming the row and the column, never a JSON or type error deep in a reader."""
    record = dict(row)
    key = str(record.get("id", record.get("name", "?")))[:40]
    for name in json_columns:
        column = f"{name}_json"
        value = record.pop(column, None)
        try:
            record[name] = json.loads(value) if value else None
        except (TypeError, ValueError) as error:  # ValueError covers JSONDecodeError and UnicodeDecodeError
            raise RecordError(table, key, column, f"is not JSON ({error})") from None
    types = _field_types(cls)
    missing = sorted(set(types) - set(record))
    if missing:
        raise RecordError(table, key, missing[0], "is missing")
    for name, kind in types.items():
        if not _fits(record[name], kind):
            column = f"{name}_json" if name in json_columns else name
            shown = json.dumps(record[name], default=str)
            raise RecordError(table, key, column, f"holds {shown[:60]}, not {_words(kind)}")
    return {name: record[name] for name in types}


def _words(kind: Any) -> str:
    """A field's type as the reader of an error message would say it."""
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union:
        return " or ".join(_words(option) for option in arguments)
    if origin is list:
        return f"a list of {_words(arguments[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict or kind is dict:
        return "a JSON object"
    return {type(None): "null", int: "a whole number", float: "a number", str: "a text"}.get(kind, str(kind))


@dataclass(frozen=True, eq=True)
class StudyRecord(_Record):
    """A study as stored: its spec (verbatim and as validated data) and where it came from."""

    name: str
    spec_text: str
    spec: Optional[dict[str, Any]]
    spec_path: Optional[str]
    environment: Optional[dict[str, Any]]
    created_at: str
    updated_at: str
    wall_seconds: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "StudyRecord":
        return cls(**_parsed(cls, "studies", row, ("spec", "environment")))

    def setting(self, *path: str, default: Any = None) -> Any:
        """A value of the stored spec by its path (``setting("evaluate", "select")``), or
        ``default`` where the spec does not say. ``setting("overrides")`` is a list of texts
        (``key=value``, as the store keeps them) or ``default``: callers join them, and a spec_json
        changed by hand may hold anything there, so whatever is not a text is left out."""
        node: Any = self.spec or {}
        for part in path:
            if not isinstance(node, Mapping) or node.get(part) is None:
                return default
            node = node[part]
        if path == ("overrides",):
            words = [word for word in node if isinstance(word, str)] if isinstance(node, list) else []
            return words or default
        return node


@dataclass(frozen=True, eq=True)
class RunRecord(_Record):
    """One run: identity, status, what it trained on, and its final metrics."""

    id: str
    study: str
    position: int
    architecture: str
    variant: str
    sweep: Optional[dict[str, Any]]
    repeat: int
    fold: Optional[int]
    phase: str
    seed: int
    status: str
    config: Optional[dict[str, Any]]
    params_total: Optional[int]
    params_trainable: Optional[int]
    params_non_trainable: Optional[int]
    split_hash: Optional[str]
    split_sizes: Optional[dict[str, int]]
    input_shape: Optional[list[int]]
    class_names: Optional[list[str]]
    code_version: Optional[str]
    environment: Optional[dict[str, Any]]
    created_at: str
    started_at: Optional[str]
    finished_at: Optional[str]
    train_seconds: Optional[float]
    epochs_done: int
    best_epoch: Optional[int]
    stopped_epoch: Optional[int]
    train_loss: Optional[float]
    train_accuracy: Optional[float]
    val_loss: Optional[float]
    val_accuracy: Optional[float]
    test_loss: Optional[float]
    test_accuracy: Optional[float]
    best_val_loss: Optional[float]
    best_val_accuracy: Optional[float]
    error: Optional[str]
    diverged_epoch: Optional[int]
    attempts: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "RunRecord":
        return cls(**_parsed(cls, "runs", row,
                             ("sweep", "config", "split_sizes", "input_shape", "class_names", "environment")))

    @property
    def done(self) -> bool:
        return self.status == "done"


class Results(Protocol):
    """What reads a study's results needs of a store (``cnnlab.store.Store`` is one): the rooms
    below the store take this, so they never import it."""

    def study(self, name: Optional[str] = None) -> StudyRecord: ...

    def runs(self, study: Optional[str] = None, status: Optional[str] = None) -> list[RunRecord]: ...

    def epochs(self, run_id: str) -> list[dict[str, Any]]: ...
