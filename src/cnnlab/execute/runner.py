"""Train one run of a plan: data, model, resume state, trainer, and where its results go.

The run reports everything as events (see ``Emit``) that a driver turns into store writes and
progress, so the worker that trains never needs to write the store itself (on a cluster it
cannot: no shared filesystem is assumed).
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from cnnlab.version import __version__
from cnnlab.data import ArrayDataset, DataCache, Splits, normalization
from cnnlab.errors import CnnlabError, DataError, SpecError, StoreError
from cnnlab.models import build_resolved, check_model
from cnnlab.spec.plan import RunConfig
from cnnlab.store.artifacts import evaluation_files
from cnnlab.train import (
    Diverged, Normalizer, TrainCallback, TrainData, Trainer, TrainResult, configure_threads, environment,
    select_device,
)
from cnnlab.store.artifacts import inference_facts, serialize_weights
from cnnlab.train.checkpoint import parse_checkpoint, serialize_state
from cnnlab.train.device import bf16_is_native, threads_for
from cnnlab.train.stacked import StackedTrainer


Emit = Callable[[dict[str, Any]], None]
"""Where a run's events go. Each event is a plain dict with ``kind``, ``run_id`` and ``attempt``:
started (info, resumed_from), batch (epoch, batch, batches, logs), epoch (epoch, logs, and
weights: the model's safetensors bytes, only when train.log asks for histograms), checkpoint
(epoch, data: checkpoint file bytes), checkpoints (checkpoints: the checkpoint events of a stacked
group's members at one epoch, or at their end, stored in one transaction), finished (summary, weights, predictions, examples: file
bytes) and ended (status, error, diverged_epoch, input_error). Plain data, so an
event can cross a process or a cluster to the driver, which alone writes the store.

``input_error`` is None unless the run stopped on bad input (one of ``INPUT_ERRORS``, by class
name): then status is 'interrupted' and the driver stops the study with that error."""

# Errors about the study's input rather than the run: a dataset damaged or replaced since the
# pre-flight, an image unreadable. Every run would meet them, so they stop the study (exit 2)
# and leave the run resumable, where an error of the run itself fails only that run.
INPUT_ERRORS: tuple[type[CnnlabError], ...] = (DataError, SpecError)


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    import subprocess

    root = Path(__file__).resolve().parents[3]
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                    capture_output=True, text=True, timeout=5).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            if commit:
                return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"
        except (OSError, subprocess.SubprocessError):
            pass
    return __version__


class _EventCallback(TrainCallback):
    """Turns the trainer's hooks into events."""

    def __init__(self, emit: Emit, run_id: str, attempt: int, weights_each_epoch: bool = False):
        self.emit, self.base = emit, {"run_id": run_id, "attempt": attempt}
        self.weights_each_epoch = weights_each_epoch
        self.model: Optional[Any] = None

    def on_train_start(self, trainer: Trainer, start_epoch: int) -> None:
        self.model = trainer.model

    def on_batch_end(self, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
        self.emit({"kind": "batch", **self.base, "epoch": epoch, "batch": batch, "batches": batches, "logs": logs})

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        event = {"kind": "epoch", **self.base, "epoch": epoch, "logs": dict(logs)}
        if self.weights_each_epoch and self.model is not None:
            # train.log: histograms. The weights travel in the event, since the driver that writes the
            # TensorBoard files may be on another machine than this worker.
            event["weights"] = serialize_weights(self.model.state_dict())
        self.emit(event)

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        self.emit({"kind": "checkpoint", **self.base, "epoch": epoch, "data": serialize_state(state)})


def split_hash(splits: Splits, train: ArrayDataset, config: RunConfig) -> str:
    """The data's fingerprint, changed when the run trains on a subset or on train+val."""
    if config.limit_train is None and not config.merge_val:
        return splits.fingerprint
    text = f"{splits.fingerprint}:{config.limit_train}:{config.merge_val}:{len(train)}"
    return hashlib.sha256(text.encode()).hexdigest()


class _Run:
    """One run in a worker: its events, and how an error ends it."""

    def __init__(self, config: RunConfig, emit: Emit, attempt: int):
        self.config, self.emit = config, emit
        self.base = {"run_id": config.run_id, "attempt": attempt}

    def end(self, status: str, error: Optional[str], diverged_epoch: Optional[int] = None,
            input_error: Optional[str] = None) -> str:
        self.emit({"kind": "ended", **self.base, "status": status, "error": error, "diverged_epoch": diverged_epoch,
                   "input_error": input_error})
        return status

    def fail(self, error: BaseException) -> str:
        """End the run as ``error`` says (called while it is being handled); KeyboardInterrupt and
        StoreError go on up, after the event for the first."""
        if isinstance(error, Diverged):
            return self.end("diverged", str(error), error.epoch)
        if isinstance(error, KeyboardInterrupt):
            self.end("interrupted", "interrupted by the user")
            raise error
        if isinstance(error, StoreError) or not isinstance(error, Exception):
            raise error  # the store cannot be written (disk full, read-only): stop; the run resumes next time
        if isinstance(error, INPUT_ERRORS):
            kind = next(cls.__name__ for cls in INPUT_ERRORS if isinstance(error, cls))
            return self.end("interrupted", str(error), input_error=kind)
        if isinstance(error, CnnlabError):
            return self.end("failed", str(error))
        # contain it: the study goes on, the error is kept with the run
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        where = traceback.extract_tb(error.__traceback__)[-1]
        return self.end("failed", f"{detail} (at {Path(where.filename).name}:{where.lineno})")


@dataclass
class _Prepared:
    """A run ready to train: its trainer, and what its finished event needs."""

    run: _Run
    trainer: Trainer
    data: TrainData
    facts: dict[str, Any]


def _prepare(run: _Run, cache: DataCache, resume: Optional[bytes], threads: Optional[int],
             stacked: int = 0) -> _Prepared:
    """Data, model, trainer and resume state of one run; emits its ``started`` event. ``stacked``:
    the size of the stacked group it trains in (0: alone)."""
    config = run.config
    device = select_device(config.train.device)
    splits, train = cache.split(config)
    scale, shift = normalization(config.dataset.normalize, train)
    checked = check_model(config.layer_list(), config.variant_spec, splits.input_shape, splits.num_classes,
                          batch_size=config.train.batch_size, optimizer=config.train.optimizer.name)
    configure_threads(threads or config.train.threads
                      or threads_for(checked.step_flops * min(config.train.batch_size, len(train)) * max(stacked, 1)))
    built = build_resolved(checked.resolved, splits.input_shape, splits.num_classes, init=config.train.init,
                           generator_seed=config.seed, infos=checked.layers)
    # evaluate.validate_on: test (study C): the test split is the validation data, and the report says
    # that every choice made on it saw the test split.
    val = splits.test if config.validate_on_test else splits.val
    data = TrainData(train, val, splits.test if config.evaluate_test else None,
                     Normalizer(scale, shift), list(config.dataset.augment), test_each_epoch=config.test_curve)
    trainer = Trainer(built, data, config.train, config.seed, device, own_rng=bool(stacked),
                      callbacks=[_EventCallback(run.emit, config.run_id, run.base["attempt"],
                                                "histograms" in config.train.log)])
    if resume is not None:
        trainer.load_state_dict(parse_checkpoint(resume))
    info = {
        "params_total": built.total_params, "params_trainable": built.trainable_params,
        "params_non_trainable": built.non_trainable_params,
        "split_hash": split_hash(splits, train, config),
        "split_sizes": {**splits.sizes, "train": len(train), "val": len(val) if val is not None else 0},
        "input_shape": list(splits.input_shape), "class_names": list(splits.class_names),
        "code_version": code_version(), "environment": environment(device),
    }
    if stacked:  # trained with the other seeds of its configuration as one stacked model (of this many)
        info["environment"]["stacked"] = stacked
    warnings = []
    if config.train.batch_size > len(train):
        # Allowed, as in Keras and PyTorch (full-batch training), but rarely what was meant.
        warnings.append(f"train.batch_size {config.train.batch_size:,} is larger than the training split "
                        f"({len(train):,} images): each epoch is one batch of {len(train):,}")
    if config.train.precision == "bf16" and not bf16_is_native(device):
        warnings.append(f"precision bf16: this {device.type.upper()} has no bf16 instructions, so bf16 is "
                        "emulated and likely slower than fp32")
    if warnings:
        info["warning"] = "; ".join(warnings)
    # What using the model needs without the dataset travels in the weights file's metadata.
    facts = inference_facts(run_id=config.run_id, cnnlab_version=info["code_version"], input_shape=splits.input_shape,
                            class_names=splits.class_names, normalize=config.dataset.normalize, scale=scale,
                            shift=shift, dataset=config.dataset)
    run.emit({"kind": "started", **run.base, "info": info, "resumed_from": trainer.start_epoch})
    return _Prepared(run, trainer, data, facts)


def _finished(prepared: _Prepared, result: TrainResult) -> dict[str, Any]:
    """The run's ``finished`` event: its summary and files."""
    summary = run_summary(result, sum(logs["seconds"] for logs in result.history))
    predictions, examples = evaluation_files(result.probabilities, {"val": prepared.data.val, "test": prepared.data.test})
    weights = serialize_weights(prepared.trainer.model.state_dict(), prepared.facts)
    return {"kind": "finished", **prepared.run.base, "summary": summary, "weights": weights,
            "predictions": predictions, "examples": examples}


def train_run(
    config: RunConfig,
    emit: Emit,
    cache: DataCache,
    *,
    resume: Optional[bytes] = None,
    attempt: int = 1,
    threads: Optional[int] = None,
) -> str:
    """Train (or resume from ``resume``, checkpoint bytes) one run, reporting through ``emit``;
    return its final status. KeyboardInterrupt propagates after an ``ended`` event."""
    run = _Run(config, emit, attempt)
    try:
        prepared = _prepare(run, cache, resume, threads)
        event = _finished(prepared, prepared.trainer.fit())
    except BaseException as error:  # noqa: BLE001 - _Run.fail contains what a run may contain, raises the rest
        return run.fail(error)
    emit(event)
    return "done"


def train_group(
    configs: Sequence[RunConfig],
    emit: Emit,
    cache: DataCache,
    *,
    resumes: Sequence[Optional[bytes]],
    attempts: Sequence[int],
    threads: Optional[int] = None,
) -> list[str]:
    """Train the seeds of one configuration (``configs``) as one stacked model; each member reports
    as its own run (``train_run``'s events) and ends as it would alone. Returns the members'
    statuses. What an executor's worker runs for a task (``execute.grouping.Task``): a task of one
    run trains it alone. Resumed after a kill, members whose checkpoint says they are done training (stopped
    early, or at their last epoch) only finish, alone; of the others, those at the most common
    epoch stack again, and any at another epoch (a checkpoint from a lone run) train alone."""
    together = _resuming_together(configs, resumes)
    statuses: list[Optional[str]] = [None] * len(configs)
    for k, (config, resume, attempt) in enumerate(zip(configs, resumes, attempts)):
        if k not in together:
            statuses[k] = train_run(config, emit, cache, resume=resume, attempt=attempt, threads=threads)
    if len(together) == 1:
        k = together[0]
        statuses[k] = train_run(configs[k], emit, cache, resume=resumes[k], attempt=attempts[k], threads=threads)
    elif together:
        stacked = _train_stacked([configs[k] for k in together], emit, cache, [resumes[k] for k in together],
                                 [attempts[k] for k in together], threads)
        for k, status in zip(together, stacked):
            statuses[k] = status
    return [status or "failed" for status in statuses]


def _train_stacked(configs: Sequence[RunConfig], emit: Emit, cache: DataCache, resumes: Sequence[Optional[bytes]],
                   attempts: Sequence[int], threads: Optional[int]) -> list[Optional[str]]:
    # The members' checkpoints of one epoch travel together and are stored in one transaction, so a
    # kill never leaves the members at different epochs (which could not stack again).
    held: list[dict[str, Any]] = []

    def hold_checkpoints(event: dict[str, Any]) -> None:
        if event["kind"] == "checkpoint":
            held.append(event)
        else:
            emit(event)

    def commit() -> None:
        if held:
            emit({"kind": "checkpoints", "run_id": held[0]["run_id"], "attempt": held[0]["attempt"],
                  "checkpoints": list(held)})
            held.clear()

    runs = [_Run(config, hold_checkpoints, attempt) for config, attempt in zip(configs, attempts)]
    statuses: list[Optional[str]] = [None] * len(runs)
    prepared: dict[int, _Prepared] = {}
    for k, (run, resume) in enumerate(zip(runs, resumes)):
        try:
            prepared[k] = _prepare(run, cache, resume, threads, stacked=len(runs))
        except BaseException as error:  # noqa: BLE001 - as train_run: this member ends; the others go on
            statuses[k] = run.fail(error)
    members = sorted(prepared)  # a stack of one, where the others could not start, trains all the same

    def leave(i: int, outcome: Any) -> None:
        """A member is done: its run is recorded now (finished, diverged or failed), as alone."""
        k = members[i]
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            event = _finished(prepared[k], outcome)
        except BaseException as error:  # noqa: BLE001 - as train_run
            statuses[k] = runs[k].fail(error)
            return
        emit(event)
        statuses[k] = "done"

    if not members:
        return statuses
    try:
        StackedTrainer([prepared[k].trainer for k in members], commit=commit, leave=leave).fit()
    except KeyboardInterrupt:
        for k in members:
            if statuses[k] is None:
                runs[k].end("interrupted", "interrupted by the user")
        raise
    except BaseException as error:  # noqa: BLE001 - one error of the shared arithmetic ends every member left
        for k in members:
            if statuses[k] is None:
                statuses[k] = runs[k].fail(error)
    return statuses


def _resuming_together(configs: Sequence[RunConfig], resumes: Sequence[Optional[bytes]]) -> list[int]:
    """The members that stack: of those with training left, the ones at the most common epoch
    (the earliest of equally common ones). A checkpoint that cannot be read leaves its member
    alone, to report the problem as a lone run would."""
    epochs: dict[int, int] = {}
    for k, (config, resume) in enumerate(zip(configs, resumes)):
        if resume is None:
            epochs[k] = 0
            continue
        try:
            state = parse_checkpoint(resume)
        except Exception:  # noqa: BLE001 - train_run reports it, naming the run
            continue
        stopped = (state.get("early_stopping") or {}).get("stopped_epoch") is not None
        if not stopped and int(state["epochs_done"]) < config.train.epochs:
            epochs[k] = int(state["epochs_done"])
    if not epochs:
        return []
    counts = {epoch: list(epochs.values()).count(epoch) for epoch in epochs.values()}
    chosen = min(counts, key=lambda epoch: (-counts[epoch], epoch))
    return [k for k, epoch in epochs.items() if epoch == chosen]


def run_summary(result: TrainResult, seconds: float) -> dict[str, Any]:
    """The run's row values: final metrics, best validation, best/stopped epoch, time."""
    summary: dict[str, Any] = dict(result.final)
    vals = [(logs.get("val_accuracy"), logs.get("val_loss")) for logs in result.history if "val_accuracy" in logs]
    if vals:
        summary["best_val_accuracy"] = max(v[0] for v in vals)
        summary["best_val_loss"] = min(v[1] for v in vals)
    summary["best_epoch"] = result.best_epoch
    summary["stopped_epoch"] = result.stopped_epoch
    summary["train_seconds"] = seconds
    return summary
