"""Run a plan in this process, writing every result to the store as it happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from cnnlab.execute.progress import StudyProgress
from cnnlab.execute.runner import DataCache, RunSink, train_run
from cnnlab.spec.plan import RunConfig
from cnnlab.store import Store

FINISHED = ("done",)


class StoreSink(RunSink):
    """Writes a run's progress to the store: epochs as they end, checkpoints, final files."""

    def __init__(self, store: Store):
        self.store = store

    def resume_state(self, run_id: str) -> Optional[dict[str, Any]]:
        state = self.store.load_checkpoint(run_id)
        # Epochs after the checkpoint were lost with the process; they will be trained again.
        self.store.truncate_epochs(run_id, int(state["epochs_done"]) if state else 0)
        return state

    def started(self, run_id: str, info: dict[str, Any], resumed_from: int) -> None:
        self.store.start_run(run_id, info)

    def epoch(self, run_id: str, epoch: int, logs: dict[str, float]) -> None:
        self.store.record_epoch(run_id, epoch, logs)

    def checkpoint(self, run_id: str, epoch: int, state: dict[str, Any]) -> None:
        self.store.save_checkpoint(run_id, state)

    def finished(self, run_id: str, result: dict[str, Any], weights: dict[str, torch.Tensor], predictions: bytes,
                 examples: bytes) -> None:
        self.store.save_weights(run_id, weights)
        self.store.save_artifact(run_id, "predictions", "predictions.npz", predictions)
        self.store.save_artifact(run_id, "examples", "examples.npz", examples)
        self.store.finish_run(run_id, result)
        self.store.drop_checkpoint(run_id)

    def ended(self, run_id: str, status: str, error: Optional[str], diverged_epoch: Optional[int]) -> None:
        self.store.end_run(run_id, status, error, diverged_epoch)


@dataclass
class PlanOutcome:
    """How a plan went: counts by final status, and whether the user stopped it."""

    total: int
    skipped: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and set(self.statuses) <= {"done"}

    def merge(self, other: "PlanOutcome", run_id: str) -> None:
        """Fold in a follow-up execution (the final retrain) that re-listed this plan's runs."""
        self.total += 1
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        if not other.statuses:
            self.skipped += 1
        self.interrupted = self.interrupted or other.interrupted

    def describe(self) -> str:
        parts = [f"{count} {status}" for status, count in sorted(self.statuses.items())]
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        return ", ".join(parts) or "nothing to do"


def execute_local(
    configs: list[RunConfig],
    store: Store,
    cache: DataCache,
    progress: StudyProgress,
    *,
    force: bool = False,
    threads: Optional[int] = None,
) -> PlanOutcome:
    """Train every run of the plan that is not finished, one after another."""
    store.register_runs(configs)
    if force:
        for config in configs:
            store.reset_run(config.run_id)
    todo = [c for c in configs if (store.run(c.run_id) or {}).get("status") not in FINISHED]
    outcome = PlanOutcome(total=len(configs), skipped=len(configs) - len(todo))
    progress.study_start(len(configs), outcome.skipped)
    sink = StoreSink(store)
    try:
        for index, config in enumerate(todo, start=outcome.skipped + 1):
            checkpoint = store.artifact_path(config.run_id, "checkpoint")
            resumed_from = 0
            if checkpoint is not None:
                resumed_from = (store.run(config.run_id) or {}).get("epochs_done") or 0
            progress.run_start(index, config.label, config.run_id, config.train.epochs, resumed_from)
            status = train_run(config, sink, cache, callbacks=[progress], threads=threads)
            record = store.run(config.run_id) or {}
            detail = record.get("error") or ""
            progress.run_end(status, detail)
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        progress.study_end()
    return outcome
