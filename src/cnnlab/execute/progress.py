"""Progress for a study: runs done/total with ETA, and the current run's epoch, batch, loss,
accuracy and img/s. A live display on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys

from typing import Optional, TextIO

from cnnlab.train import TrainCallback


class StudyProgress(TrainCallback):
    """Silent base: the executor calls these hooks; subclasses draw them."""

    def study_start(self, total: int, skipped: int) -> None: ...
    def run_start(self, index: int, label: str, run_id: str, epochs: int, resumed_from: int) -> None: ...
    def run_end(self, status: str, detail: str = "") -> None: ...
    def study_end(self) -> None: ...
    def message(self, text: str) -> None: ...


class LogProgress(StudyProgress):
    """One line per run start, epoch and run end (for logs and pipes)."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.total = 0
        self.label = ""

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def message(self, text: str) -> None:
        self._print(text)

    def study_start(self, total: int, skipped: int) -> None:
        self.total = total
        if skipped:
            self._print(f"{skipped} of {total} runs already finished; skipping them")

    def run_start(self, index: int, label: str, run_id: str, epochs: int, resumed_from: int) -> None:
        self.label, self.epochs = label, epochs
        resumed = f", resuming after epoch {resumed_from}" if resumed_from else ""
        self._print(f"[run {index}/{self.total}] {label} ({run_id}){resumed}")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        parts = [f"  epoch {epoch + 1}/{self.epochs}", f"loss {logs['train_loss']:.4f}", f"acc {logs['train_accuracy']:.4f}"]
        if "val_accuracy" in logs:
            parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
        parts += [f"{logs['train_images_per_second']:,.0f} img/s", f"{logs['seconds']:.1f}s"]
        self._print("  ".join(parts))

    def run_end(self, status: str, detail: str = "") -> None:
        self._print(f"  -> {status}{': ' + detail if detail else ''}")


class RichProgress(StudyProgress):
    """A live two-line display: the study and the current run."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console, transient=False,
        )
        self.study_task: Optional[int] = None
        self.run_task: Optional[int] = None
        self.epoch = 0
        self.epochs = 1

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def study_start(self, total: int, skipped: int) -> None:
        self.progress.start()
        self.study_task = self.progress.add_task("study", total=total, completed=skipped, info="")
        if skipped:
            self.message(f"{skipped} of {total} runs already finished; skipping them")

    def run_start(self, index: int, label: str, run_id: str, epochs: int, resumed_from: int) -> None:
        if self.run_task is not None:
            self.progress.remove_task(self.run_task)
        self.epochs = epochs
        resumed = f" (resumed after epoch {resumed_from})" if resumed_from else ""
        self.progress.update(self.study_task, info=f"{label}{resumed}")
        self.run_task = self.progress.add_task("  run", total=epochs, completed=resumed_from, info="")

    def on_epoch_start(self, epoch: int, lr: float) -> None:
        self.epoch = epoch

    def on_batch_end(self, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
        self.progress.update(self.run_task, completed=epoch + batch / batches, info=(
            f"epoch {epoch + 1}/{self.epochs} batch {batch}/{batches} loss {logs['loss']:.4f} "
            f"acc {logs['accuracy']:.3f} {logs['images_per_second']:,.0f} img/s"))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        val = f" val_acc {logs['val_accuracy']:.3f}" if "val_accuracy" in logs else ""
        self.progress.update(self.run_task, completed=epoch + 1, info=(
            f"epoch {epoch + 1}/{self.epochs} loss {logs['train_loss']:.4f} acc {logs['train_accuracy']:.3f}{val}"))

    def run_end(self, status: str, detail: str = "") -> None:
        self.progress.advance(self.study_task)
        if status != "done":
            self.message(f"  run {status}{': ' + detail if detail else ''}")

    def study_end(self) -> None:
        if self.run_task is not None:
            self.progress.remove_task(self.run_task)
            self.run_task = None
        self.progress.stop()


def make_progress(quiet: bool = False, stream: TextIO = sys.stderr) -> StudyProgress:
    """Rich on a terminal, log lines elsewhere, nothing when quiet."""
    if quiet:
        return StudyProgress()
    if stream.isatty():
        return RichProgress()
    return LogProgress(stream)




__all__ = ["StudyProgress", "LogProgress", "RichProgress", "make_progress"]
