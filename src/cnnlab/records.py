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
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Iterator, Optional, Protocol


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


def _parsed(row: sqlite3.Row, json_columns: tuple[str, ...]) -> dict[str, Any]:
    record = dict(row)
    for key in json_columns:
        value = record.pop(f"{key}_json")
        record[key] = json.loads(value) if value else None
    return record


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
        return cls(**_parsed(row, ("spec", "environment")))

    def setting(self, *path: str, default: Any = None) -> Any:
        """A value of the stored spec by its path (``setting("evaluate", "select")``), or
        ``default`` where the spec does not say."""
        node: Any = self.spec or {}
        for part in path:
            if not isinstance(node, Mapping) or node.get(part) is None:
                return default
            node = node[part]
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
        return cls(**_parsed(row, ("sweep", "config", "split_sizes", "input_shape", "class_names", "environment")))

    @property
    def done(self) -> bool:
        return self.status == "done"


class Results(Protocol):
    """What reads a study's results needs of a store (``cnnlab.store.Store`` is one): the rooms
    below the store take this, so they never import it."""

    def study(self, name: Optional[str] = None) -> StudyRecord: ...

    def runs(self, study: Optional[str] = None, status: Optional[str] = None) -> list[RunRecord]: ...

    def epochs(self, run_id: str) -> list[dict[str, Any]]: ...
