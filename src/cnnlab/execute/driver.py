"""The driver: the one place that turns run events into store writes and progress.

Every executor (in-process, process pool, Ray) feeds the events its runs emit to one
``Driver``. Each (re)start of a run is an attempt; events of any attempt but the current one
are dropped, so a run retried after a lost worker is never recorded twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from cnnlab.execute.progress import StudyProgress
from cnnlab.records import RunRecord
from cnnlab.spec.plan import RunConfig
from cnnlab.store import Store

FINISHED = ("done",)


@dataclass
class PlanOutcome:
    """How a plan went: counts by final status, and whether the user stopped it."""

    total: int
    skipped: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    retried: int = 0  # attempts restarted after a lost worker

    @property
    def ok(self) -> bool:
        return not self.interrupted and set(self.statuses) <= {"done"}

    def merge(self, other: "PlanOutcome") -> None:
        """Fold in a follow-up execution (the final retrain) that re-listed this plan's runs."""
        self.total += 1
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        if not other.statuses:
            self.skipped += 1
        self.interrupted = self.interrupted or other.interrupted
        self.retried += other.retried

    def describe(self) -> str:
        parts = [f"{count} {status}" for status, count in sorted(self.statuses.items())]
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        if self.retried:
            parts.append(f"{self.retried} retried after a lost worker")
        return ", ".join(parts) or "nothing to do"


class Driver:
    """Writes the store and draws progress from the events of a plan's runs."""

    def __init__(self, store: Store, progress: StudyProgress, configs: list[RunConfig], *, force: bool = False):
        self.store = store
        self.progress = progress
        store.register_runs(configs)
        if force:
            for config in configs:
                store.reset_run(config.run_id)
        self.todo = [c for c in configs if _status(store.run(c.run_id)) not in FINISHED]
        self.outcome = PlanOutcome(total=len(configs), skipped=len(configs) - len(self.todo))
        self.attempts: dict[str, int] = {}
        self.numbers: dict[str, int] = {}  # run id -> its place in the progress display
        self.warned: set[str] = set()
        self.ended: dict[str, str] = {}
        self.started_count = self.outcome.skipped
        progress.study_start(len(configs), self.outcome.skipped)

    # ------------------------------------------------------------ attempts

    def begin(self, config: RunConfig) -> tuple[int, Optional[bytes]]:
        """Start an attempt: its number and the checkpoint bytes to resume from (or None)."""
        run_id = config.run_id
        known = self.store.run(run_id)
        attempt = self.attempts.get(run_id, known.attempts if known is not None else 0) + 1
        if run_id in self.attempts:
            self.outcome.retried += 1
        self.attempts[run_id] = attempt
        resume = self.store.checkpoint_bytes(run_id)
        # Epochs after the checkpoint were lost with the process that trained them.
        kept = 0
        if resume is not None:
            from cnnlab.train.checkpoint import parse_checkpoint

            # Checked here first, so that a damaged or foreign file is refused naming its path.
            kept = int(parse_checkpoint(resume, self.store.artifact_path(run_id, "checkpoint"))["epochs_done"])
        self.store.truncate_epochs(run_id, kept)
        if run_id not in self.numbers:
            self.started_count += 1
            self.numbers[run_id] = self.started_count
        self.progress.run_start(run_id, config.label, config.train.epochs, kept, self.numbers[run_id])
        return attempt, resume

    def current(self, event: dict[str, Any]) -> bool:
        return self.attempts.get(event["run_id"]) == event["attempt"]

    # ------------------------------------------------------------ events

    def handle(self, event: dict[str, Any]) -> None:
        """Apply one event (events of stale attempts are ignored)."""
        if not self.current(event):
            return
        kind, run_id = event["kind"], event["run_id"]
        store, progress = self.store, self.progress
        if kind == "batch":
            progress.run_batch(run_id, event["epoch"], event["batch"], event["batches"], event["logs"])
        elif kind == "started":
            store.start_run(run_id, event["info"])
            if event["info"].get("warning") and event["info"]["warning"] not in self.warned:
                self.warned.add(event["info"]["warning"])
                progress.message(f"warning: {event['info']['warning']}")
        elif kind == "epoch":
            store.record_epoch(run_id, event["epoch"], event["logs"])
            progress.run_epoch(run_id, event["epoch"], event["logs"])
        elif kind == "checkpoint":
            store.save_checkpoint(run_id, event["data"])
        elif kind == "finished":
            store.save_weights(run_id, event["weights"])
            store.save_artifact(run_id, "predictions", "predictions.npz", event["predictions"])
            store.save_artifact(run_id, "examples", "examples.npz", event["examples"])
            store.finish_run(run_id, event["summary"])
            store.drop_checkpoint(run_id)
            self._end(run_id, "done", "")
        elif kind == "ended":
            store.end_run(run_id, event["status"], event["error"], event["diverged_epoch"])
            if event["status"] != "interrupted":
                self._end(run_id, event["status"], event["error"] or "")
        else:
            raise ValueError(f"unknown run event {kind!r}")

    def _end(self, run_id: str, status: str, detail: str) -> None:
        self.ended[run_id] = status
        self.outcome.statuses[status] = self.outcome.statuses.get(status, 0) + 1
        self.progress.run_end(run_id, status, detail)

    def interrupt(self, running: list[str]) -> None:
        """Ctrl-C: runs still in flight are marked interrupted (their checkpoints stay)."""
        self.outcome.interrupted = True
        for run_id in running:
            if run_id not in self.ended:
                self.store.end_run(run_id, "interrupted", "interrupted by the user", None)
                self.attempts.pop(run_id, None)

    def finish(self) -> PlanOutcome:
        self.progress.study_end()
        return self.outcome


def _status(record: Optional[RunRecord]) -> Optional[str]:
    return record.status if record is not None else None
