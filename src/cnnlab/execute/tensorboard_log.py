"""TensorBoard files of a study, written while it trains: one TensorBoard run per cnnlab run.

Workers may train on a cluster without a shared filesystem, so the files are written here, in
the driver's process, from the events the driver receives anyway (``runner.Emit``): an epoch
event gives the scalars (and, with ``train.log: [tensorboard, histograms]``, the weights for
histograms), a finished event the final metrics beside the run's hyperparameters (TensorBoard's
HPARAMS tab). ``cnnlab export-logs`` writes the same files from a store (``RunLog`` is the one
writer of both), and its MLflow export names runs, parameters and metrics the same way.

Steps are epoch numbers as the progress shows them (1 for the first epoch).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

from cnnlab.errors import CnnlabError
from cnnlab.execute.progress import StudyProgress
from cnnlab.spec.plan import RunConfig, configuration_label


class LogError(CnnlabError):
    """TensorBoard (or MLflow) is missing, or the logs cannot be written where asked."""


# Epoch logs (the runner's names, and the store's epochs columns) -> TensorBoard tags, grouped so
# that TensorBoard puts the splits of a metric side by side.
EPOCH_TAGS = {
    "train_loss": "loss/train", "val_loss": "loss/val", "test_loss": "loss/test",
    "train_accuracy": "accuracy/train", "val_accuracy": "accuracy/val", "test_accuracy": "accuracy/test",
    "penalty": "train/penalty", "lr": "train/lr", "seconds": "train/seconds_per_epoch",
    "train_images_per_second": "train/images_per_second",  # the runner's name
    "images_per_second": "train/images_per_second",  # the store's
}
# A finished run's summary values shown with its hyperparameters, as "final/<name>".
FINAL_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
                 "best_val_loss", "best_val_accuracy", "train_seconds")
FINAL_PREFIX = "final/"
EVENT_FILES = "events.out.tfevents.*"  # what TensorBoard's writers name their files
INSTALL_HINT = "pip install 'cnnlab[logs]'"


def summary_writer() -> Any:
    """TensorBoard's writer class (from PyTorch); a LogError naming the extra when it is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise LogError(f"TensorBoard logs need the tensorboard package, which is not installed: {INSTALL_HINT} "
                       "(or pip install tensorboard); nothing was trained or written") from None
    return SummaryWriter


def check_writable(folder: Path, what: str) -> None:
    """A LogError when ``folder`` cannot be made and written (nothing is created here)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if folder.exists() and not folder.is_dir():
        problem = "it is a file, not a folder"
    elif not existing.is_dir():
        problem = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable"
    else:
        return
    raise LogError(f"cannot write {what} to {folder}: {problem}; choose another folder")


def log_name(label: str, repeat: int, fold: Optional[int], run_id: str) -> str:
    """A run's folder under the log folder: its configuration, repeat (and fold) and id, with
    anything a file system or TensorBoard's run filter might trip on replaced by '-'."""
    slug = re.sub(r"[^A-Za-z0-9_.=+-]+", "-", label).strip("-.")[:80] or "run"
    fold_part = f"_fold{fold}" if fold is not None else ""
    return f"{slug}_repeat{repeat}{fold_part}_{run_id}"


def config_log_name(config: Mapping[str, Any], run_id: str) -> str:
    """``log_name`` of a run configuration (a ``RunConfig`` dumped, or a stored run's config)."""
    label = configuration_label(config["architecture"], config["variant"], config.get("sweep") or {},
                                config.get("phase", "select"))
    return log_name(label, config.get("repeat", 0), config.get("fold"), run_id)


def flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run configuration as one level of dotted names (``train.optimizer.lr``): lists of plain
    values as JSON text, lists holding mappings (the layers) by position (``layers.0.conv.filters``).
    TensorBoard's hyperparameters and MLflow's parameters are both these."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, (list, tuple)) and any(isinstance(item, (Mapping, list)) for item in value):
            for position, item in enumerate(value):
                walk(f"{prefix}.{position}", item)
        elif isinstance(value, (list, tuple)):
            flat[prefix] = json.dumps(list(value))
        else:
            flat[prefix] = value

    walk("", config)
    return flat


def hparams(config: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters shown in TensorBoard: the flat configuration less the layer lists (the
    architecture and variant name them; a column per layer field would bury the settings)."""
    shown = {}
    for key, value in flat_config(config).items():
        if key.startswith(("layers.", "variant_spec.")) or value is None:
            continue
        shown[key] = str(value).lower() if isinstance(value, bool) else value
    return shown


def final_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """A finished run's final values, named as both logs show them (``final/val_accuracy``)."""
    return {FINAL_PREFIX + name: float(summary[name]) for name in FINAL_METRICS
            if isinstance(summary.get(name), (int, float))}


class RunLog:
    """One cnnlab run's TensorBoard run: event files in ``<log folder>/<log_name>``.

    ``first_epoch`` is where this writing starts: 0 clears the run's earlier event files (a run
    trained anew, or exported again); after a resume, TensorBoard is told to drop what an earlier
    attempt logged from that epoch on (its purge step), since those epochs are trained again."""

    def __init__(self, root: Path, name: str, first_epoch: int = 0):
        writer = summary_writer()
        self.folder = Path(root) / name
        if first_epoch == 0 and self.folder.is_dir():
            for old in self.folder.glob(EVENT_FILES):
                if old.is_file() and not old.is_symlink():
                    old.unlink()
        self.writer = writer(str(self.folder), purge_step=first_epoch + 1 if first_epoch else None)

    def epoch(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """One epoch's scalars (``epoch`` 0-based, as the events and the store count)."""
        for name, value in logs.items():
            if name in EPOCH_TAGS and isinstance(value, (int, float)):
                self.writer.add_scalar(EPOCH_TAGS[name], float(value), epoch + 1)

    def histograms(self, epoch: int, weights: Mapping[str, Any]) -> None:
        """One epoch's weights (name -> tensor) as histograms, ``weights/<layer>.<parameter>``."""
        for name, tensor in weights.items():
            if tensor.is_floating_point() and tensor.numel():
                self.writer.add_histogram(f"weights/{name}", tensor.float(), epoch + 1)

    def results(self, config: Mapping[str, Any], summary: Mapping[str, Any], epochs: int) -> None:
        """The hyperparameters and the final metrics, at the last epoch's step."""
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        metrics = final_metrics(summary)
        for summary_proto in hparams_summaries(hparams(config), metrics):
            self.writer.file_writer.add_summary(summary_proto, epochs)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, epochs)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class TensorBoardLog(StudyProgress):
    """The driver's progress, and beside it the study's live TensorBoard files under ``folder``.

    Every hook goes on to ``progress``; the run events (``run_event``) become files. A problem
    writing them (a full disk) stops the logs with one warning, never the training."""

    def __init__(self, progress: StudyProgress, folder: Path, histograms: bool = False):
        summary_writer()  # before anything trains: a missing package is one clear error
        check_writable(folder, "TensorBoard logs")
        self.progress, self.folder, self.histograms = progress, Path(folder), histograms
        self.runs: dict[str, RunLog] = {}
        self.epochs: dict[str, int] = {}
        self.failed = False
        self.first = True

    def run_event(self, event: dict[str, Any], config: RunConfig) -> None:
        self.progress.run_event(event, config)
        if self.failed or event["kind"] not in ("started", "epoch", "finished", "ended"):
            return
        try:
            self._write(event, config)
        except (OSError, RuntimeError) as error:  # the writer's thread reports a failed write as either
            self.failed = True
            self._close_all()
            self.progress.message(f"warning: TensorBoard logs stopped ({error}); the study goes on, and "
                                  f"'cnnlab export-logs' can write them again from the store")

    def _write(self, event: dict[str, Any], config: RunConfig) -> None:
        kind, run_id = event["kind"], event["run_id"]
        if kind == "started":
            if run_id in self.runs:  # a new attempt after a lost worker
                self.runs.pop(run_id).close()
            first = int(event.get("resumed_from") or 0)
            self.runs[run_id] = RunLog(self.folder, config_log_name(config.model_dump(mode="json"), run_id), first)
            self.epochs[run_id] = first
            return
        log = self.runs.get(run_id)
        if log is None:
            return
        if kind == "epoch":
            log.epoch(event["epoch"], event["logs"])
            if self.histograms and event.get("weights"):
                from cnnlab.store.artifacts import read_weights

                log.histograms(event["epoch"], read_weights(event["weights"]))
            self.epochs[run_id] = event["epoch"] + 1
            log.flush()  # live: TensorBoard shows the epoch now, not at the writer's next timed flush
        elif kind == "finished":
            log.results(config.model_dump(mode="json"), event["summary"], self.epochs.get(run_id, 0))
            self.runs.pop(run_id).close()
        else:  # ended: failed, diverged or interrupted; what it logged stays
            self.runs.pop(run_id).close()

    def _close_all(self) -> None:
        for log in self.runs.values():
            with contextlib.suppress(OSError, RuntimeError):  # closing what is left; the warning is given
                log.close()
        self.runs.clear()

    # Everything else is the progress' own.
    def study_start(self, total: int, skipped: int) -> None:
        self.progress.study_start(total, skipped)
        # The first execution only: the finals' one lists this command's runs again, as finished.
        if skipped and self.first:
            self.progress.message(f"TensorBoard: the {skipped} run(s) finished before are not trained again, so "
                                  f"they log nothing now; 'cnnlab export-logs' writes theirs from the store")
        self.first = False

    def run_start(self, run_id: str, label: str, epochs: int, resumed_from: int, number: int) -> None:
        self.progress.run_start(run_id, label, epochs, resumed_from, number)

    def run_batch(self, run_id: str, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
        self.progress.run_batch(run_id, epoch, batch, batches, logs)

    def run_epoch(self, run_id: str, epoch: int, logs: dict[str, float]) -> None:
        self.progress.run_epoch(run_id, epoch, logs)

    def run_end(self, run_id: str, status: str, detail: str = "") -> None:
        self.progress.run_end(run_id, status, detail)

    def study_end(self) -> None:
        self._close_all()
        self.progress.study_end()

    def message(self, text: str) -> None:
        self.progress.message(text)
