"""Progress for a study: runs done/total with ETA, and each running run's epoch, batch, loss,
accuracy and img/s. A live display on a terminal, plain log lines otherwise. Runs are keyed
by id, so runs training at once (worker processes, a cluster) show side by side."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Optional, TextIO

if TYPE_CHECKING:
    from cnnlab.spec.plan import RunConfig


class StudyProgress:
    """Silent base: the driver calls these hooks; subclasses draw them."""

    def study_start(self, total: int, skipped: int) -> None: ...
    def run_start(self, run_id: str, label: str, epochs: int, resumed_from: int, number: int) -> None: ...
    def run_batch(self, run_id: str, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None: ...
    def run_epoch(self, run_id: str, epoch: int, logs: dict[str, float]) -> None: ...
    def run_end(self, run_id: str, status: str, detail: str = "") -> None: ...
    def study_end(self) -> None: ...
    def message(self, text: str) -> None: ...

    def run_event(self, event: dict[str, Any], config: "RunConfig") -> None:
        """Every event of a run's current attempt (``runner.Emit``), once the driver has stored it:
        for observers that need more than the hooks above (``tensorboard_log.TensorBoardLog``)."""


class LogProgress(StudyProgress):
    """One line per run start, epoch and run end (for logs and pipes)."""

    def __init__(self, stream: Optional[TextIO] = None):
        # Looked up now, not when the module was imported: sys.stderr may have been replaced since.
        self.stream = stream if stream is not None else sys.stderr
        self.total = 0
        self.runs: dict[str, tuple[str, int]] = {}

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def message(self, text: str) -> None:
        self._print(text)

    def study_start(self, total: int, skipped: int) -> None:
        self.total = total
        if skipped:
            self._print(f"{skipped} of {total} runs already finished; skipping them")

    def run_start(self, run_id: str, label: str, epochs: int, resumed_from: int, number: int) -> None:
        self.runs[run_id] = (label, epochs)
        resumed = f", resuming after epoch {resumed_from}" if resumed_from else ""
        self._print(f"[run {number}/{self.total}] {label} ({run_id}){resumed}")

    def run_epoch(self, run_id: str, epoch: int, logs: dict[str, float]) -> None:
        label, epochs = self.runs.get(run_id, (run_id, 0))
        prefix = f"  {label} " if len(self.runs) > 1 else "  "
        parts = [f"{prefix}epoch {epoch + 1}/{epochs}", f"loss {logs['train_loss']:.4f}", f"acc {logs['train_accuracy']:.4f}"]
        if "val_accuracy" in logs:
            parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
        parts += [f"{logs['train_images_per_second']:,.0f} img/s", f"{logs['seconds']:.1f}s"]
        self._print("  ".join(parts))

    def run_end(self, run_id: str, status: str, detail: str = "") -> None:
        label, _ = self.runs.pop(run_id, (run_id, 0))
        self._print(f"  -> {label}: {status}{': ' + detail if detail else ''}")


class RichProgress(StudyProgress):
    """A live display: the study bar, then one line per running run."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console,
        )
        self.study_task: Optional[Any] = None
        self.tasks: dict[str, tuple[Any, int]] = {}

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def study_start(self, total: int, skipped: int) -> None:
        self.progress.start()
        self.study_task = self.progress.add_task("study", total=total, completed=skipped, info="")
        if skipped:
            self.message(f"{skipped} of {total} runs already finished; skipping them")

    def run_start(self, run_id: str, label: str, epochs: int, resumed_from: int, number: int) -> None:
        if run_id in self.tasks:
            self.progress.remove_task(self.tasks.pop(run_id)[0])
        resumed = f" (resumed after epoch {resumed_from})" if resumed_from else ""
        task = self.progress.add_task(f"  {label}{resumed}", total=epochs, completed=resumed_from, info="")
        self.tasks[run_id] = (task, epochs)

    def run_batch(self, run_id: str, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
        task, epochs = self.tasks[run_id]
        self.progress.update(task, completed=epoch + batch / batches, info=(
            f"epoch {epoch + 1}/{epochs} batch {batch}/{batches} loss {logs['loss']:.4f} "
            f"acc {logs['accuracy']:.3f} {logs['images_per_second']:,.0f} img/s"))

    def run_epoch(self, run_id: str, epoch: int, logs: dict[str, float]) -> None:
        task, epochs = self.tasks[run_id]
        val = f" val_acc {logs['val_accuracy']:.3f}" if "val_accuracy" in logs else ""
        self.progress.update(task, completed=epoch + 1, info=(
            f"epoch {epoch + 1}/{epochs} loss {logs['train_loss']:.4f} acc {logs['train_accuracy']:.3f}{val}"))

    def run_end(self, run_id: str, status: str, detail: str = "") -> None:
        if run_id in self.tasks:
            self.progress.remove_task(self.tasks.pop(run_id)[0])
        self.progress.advance(self.study_task)
        if status != "done":
            self.message(f"  run {run_id} {status}{': ' + detail if detail else ''}")

    def study_end(self) -> None:
        for task, _ in self.tasks.values():
            self.progress.remove_task(task)
        self.tasks.clear()
        self.progress.stop()


def make_progress(quiet: bool = False, stream: Optional[TextIO] = None) -> StudyProgress:
    """Rich on a terminal, log lines elsewhere, nothing when quiet (``stream``: sys.stderr as it is now)."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return StudyProgress()
    if stream.isatty():
        return RichProgress()
    return LogProgress(stream)
