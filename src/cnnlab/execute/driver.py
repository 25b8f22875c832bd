"""The driver: the one place that turns run events into store writes and progress.

Every executor (in-process, process pool, Ray) feeds the events its runs emit to one
``Driver``. Each (re)start of a run is an attempt; events of any attempt but the current one
are dropped, so a run retried after a lost worker is never recorded twice. The policies every
executor shares live here too: how often a run whose worker dies is retried (``worker_lost``),
and that bad input met inside a run stops the study as one error (``handle``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from cnnlab.errors import CnnlabError
from cnnlab.execute.progress import StudyProgress
from cnnlab.execute.runner import INPUT_ERRORS
from cnnlab.records import RunRecord
from cnnlab.spec.plan import RunConfig
from cnnlab.store import Store

FINISHED = ("done",)
# A run whose worker process dies (killed, out of memory, a crash in native code) is resumed
# from its checkpoint in a new worker; one that dies this many times in one command is given
# up (marked failed), since something about the run itself kills its worker.
MAX_ATTEMPTS = 4


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
        # A run's name in the progress display: its configuration, and which seed where it has siblings
        # (a stacked group's members print their epochs one after another).
        seeds = Counter((config.config_key, config.fold) for config in configs)
        self.labels = {config.run_id: config.label + (f" #{config.repeat + 1}" if seeds[config.config_key, config.fold] > 1
                                                      else "") for config in configs}
        self.configs = {config.run_id: config for config in configs}
        self.warned: set[str] = set()
        self.ended: dict[str, str] = {}
        self.losses: dict[str, int] = {}  # run id -> workers lost under it in this command
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
        self.progress.run_start(run_id, self.labels[run_id], config.train.epochs, kept, self.numbers[run_id])
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
        elif kind == "checkpoints":  # a stacked group's, together; each an ordinary checkpoint event
            current = [item for item in event["checkpoints"] if self.current(item)]
            store.save_checkpoints([(item["run_id"], item["data"]) for item in current])
            for item in current:
                progress.run_event(item, self.configs[item["run_id"]])
            return
        elif kind == "finished":
            store.save_weights(run_id, event["weights"])
            store.save_artifact(run_id, "predictions", "predictions.npz", event["predictions"])
            store.save_artifact(run_id, "examples", "examples.npz", event["examples"])
            store.finish_run(run_id, event["summary"])
            store.drop_checkpoint(run_id)
            self._end(run_id, "done", "")
        elif kind == "ended" and event.get("input_error"):
            self._stop_on_bad_input(run_id, event["input_error"], event["error"])
        elif kind == "ended":
            store.end_run(run_id, event["status"], event["error"], event["diverged_epoch"])
            if event["status"] != "interrupted":
                self._end(run_id, event["status"], event["error"] or "")
        else:
            raise ValueError(f"unknown run event {kind!r}")
        # After the store has it: an observer (the TensorBoard log) never sees what the store lacks.
        progress.run_event(event, self.configs[run_id])

    def _end(self, run_id: str, status: str, detail: str) -> None:
        self.ended[run_id] = status
        self.outcome.statuses[status] = self.outcome.statuses.get(status, 0) + 1
        self.progress.run_end(run_id, status, detail)

    def _stop_on_bad_input(self, run_id: str, kind: str, error: str) -> None:
        """A run met bad input (its dataset damaged since the pre-flight, say): every run would
        meet it, so the study stops with that error (exit status 2), and the run is left
        interrupted, its checkpoint kept, to resume once the input is fixed."""
        self.store.end_run(run_id, "interrupted", error, None)
        self.ended[run_id] = "interrupted"  # not counted: the study stops before it has an outcome
        self.attempts.pop(run_id, None)
        self.progress.run_end(run_id, "interrupted", "bad input")
        error_type = next((cls for cls in INPUT_ERRORS if cls.__name__ == kind), CnnlabError)
        raise error_type(f"{error} (Met by run {self.labels.get(run_id, run_id)}, which was stopped, not failed: "
                         "once this is fixed, running the study again resumes where it stopped.)")

    def worker_lost(self, config: RunConfig, cause: str) -> bool:
        """The worker training ``config`` died: True to retry the run from its checkpoint, False
        when it was given up (``MAX_ATTEMPTS`` deaths in this command; then it is marked failed)."""
        run_id = config.run_id
        if run_id in self.ended:
            return False  # it had finished before its worker went
        lost = self.losses[run_id] = self.losses.get(run_id, 0) + 1
        if lost < MAX_ATTEMPTS:
            self.progress.message(f"  lost the worker of {self.labels[run_id]} ({cause}); resuming it from its last checkpoint")
            return True
        self.handle({"kind": "ended", "run_id": run_id, "attempt": self.attempts.get(run_id), "status": "failed",
                     "error": f"its worker process died {lost} times (last: {cause}); a worker dies when it is "
                     "killed or runs out of memory, so check the machine's memory and the run's batch size",
                     "diverged_epoch": None})
        return False

    def interrupt(self, running: list[str], reason: str = "interrupted by the user") -> None:
        """Ctrl-C: runs still in flight are marked interrupted (their checkpoints stay)."""
        self.outcome.interrupted = True
        for run_id in running:
            if run_id not in self.ended:
                self.store.end_run(run_id, "interrupted", reason, None)
                self.attempts.pop(run_id, None)

    def finish(self) -> PlanOutcome:
        self.progress.study_end()
        return self.outcome


def _status(record: Optional[RunRecord]) -> Optional[str]:
    return record.status if record is not None else None
