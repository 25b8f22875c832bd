"""Train one run of a plan: data, model, resume state, trainer, and where its results go.

The run reports everything as events (see ``Emit``) that a driver turns into store writes and
progress, so the worker that trains never needs to write the store itself (on a cluster it
cannot: no shared filesystem is assumed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from cnnlab import __version__
from cnnlab.data import ArrayDataset, Source, Splits, load_source, make_splits, normalization
from cnnlab.errors import CnnlabError, StoreError
from cnnlab.models import build_model, resolve_layers
from cnnlab.models.memory import check_memory
from cnnlab.models.shapes import check_shapes
from cnnlab.spec.plan import RunConfig
from cnnlab.store.store import CHECKPOINT_KEYS, load_state, serialize_state, serialize_weights
from cnnlab.train import (
    Diverged, Normalizer, TrainCallback, TrainData, Trainer, TrainResult, configure_threads, environment,
    select_device,
)
from cnnlab.models.cost import training_flops
from cnnlab.train.device import bf16_is_native, threads_for


Emit = Callable[[dict[str, Any]], None]
"""Where a run's events go. Each event is a plain dict with ``kind``, ``run_id`` and ``attempt``:
started (info, resumed_from), batch (epoch, batch, batches, logs), epoch (epoch, logs),
checkpoint (epoch, data: checkpoint file bytes), finished (summary, weights, predictions,
examples: file bytes) and ended (status, error, diverged_epoch). Plain data, so an event can
cross a process or a cluster to the driver, which alone writes the store."""


def source_key(config: RunConfig) -> str:
    """Runs with the same key read the same published dataset."""
    spec = config.dataset
    return repr((spec.name, spec.path, spec.image_size, spec.grayscale))


@dataclass
class DataCache:
    """Datasets and splits already loaded in this process, reused across runs.

    Only the latest split is kept (k folds would otherwise hold k copies of the data); plans
    run the runs of one split together, so each split is cut once. ``keep_sources=False``
    also drops a dataset once its split is cut (worker processes, whose memory adds up).
    """

    data_dir: Optional[Path] = None
    log: Optional[Callable[[str], None]] = None
    keep_sources: bool = True
    sources: dict[str, Source] = field(default_factory=dict)
    splits: dict[str, tuple[Splits, ArrayDataset]] = field(default_factory=dict)

    def source(self, config: RunConfig) -> Source:
        key = source_key(config)
        if key not in self.sources:
            self.sources[key] = load_source(config.dataset, self.data_dir, log=self.log)
        return self.sources[key]

    def clear(self) -> None:
        """Forget every loaded dataset (a driver whose workers load their own)."""
        self.sources.clear()
        self.splits.clear()

    def split(self, config: RunConfig) -> tuple[Splits, ArrayDataset]:
        """The run's splits and its training set (``limit_train`` applied)."""
        key = repr((config.dataset.model_dump(), config.split_seed, config.kfold, config.fold, config.limit_train,
                    config.merge_val))
        if key not in self.splits:
            fold = 0 if config.merge_val and config.kfold else config.fold
            splits = make_splits(self.source(config), config.dataset.split, config.split_seed,
                                 kfold=config.kfold, fold=fold)
            train = splits.train
            if config.merge_val and splits.val is not None:
                train = ArrayDataset(torch.cat([train.images, splits.val.images]), torch.cat([train.labels, splits.val.labels]))
                splits = dataclasses.replace(splits, val=None, sizes={**splits.sizes, "val": 0})
            if config.limit_train is not None and config.limit_train < len(train):
                order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.split_seed))
                keep = order[: config.limit_train].sort().values
                train = ArrayDataset(train.images[keep].contiguous(), train.labels[keep].contiguous())
            self.splits.clear()
            self.splits[key] = (splits, train)
            if not self.keep_sources:
                self.sources.clear()
        return self.splits[key]


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

    def __init__(self, emit: Emit, run_id: str, attempt: int):
        self.emit, self.base = emit, {"run_id": run_id, "attempt": attempt}

    def on_batch_end(self, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
        self.emit({"kind": "batch", **self.base, "epoch": epoch, "batch": batch, "batches": batches, "logs": logs})

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.emit({"kind": "epoch", **self.base, "epoch": epoch, "logs": dict(logs)})

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        self.emit({"kind": "checkpoint", **self.base, "epoch": epoch, "data": serialize_state(state)})


def split_hash(splits: Splits, train: ArrayDataset, config: RunConfig) -> str:
    """The data's fingerprint, changed when the run trains on a subset or on train+val."""
    if config.limit_train is None and not config.merge_val:
        return splits.fingerprint
    text = f"{splits.fingerprint}:{config.limit_train}:{config.merge_val}:{len(train)}"
    return hashlib.sha256(text.encode()).hexdigest()


EXAMPLES_PER_KIND = 16


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def evaluation_files(probabilities: dict[str, torch.Tensor],
                     parts: dict[str, Optional[ArrayDataset]]) -> tuple[bytes, bytes]:
    """Two npz files: softmax outputs and labels of the evaluated splits (val, and test when the
    run measures it) for confusion matrices, and a few correct and wrong images of the last of
    them (for example grids). ``probabilities`` are the trainer's final evaluations."""
    arrays: dict[str, np.ndarray] = {}
    examples: dict[str, np.ndarray] = {}
    for name, data in parts.items():
        if data is None or not len(data) or name not in probabilities:
            continue
        labels = data.labels.numpy().astype(np.int64)
        outputs = probabilities[name].numpy().astype(np.float32)
        arrays[f"{name}_labels"], arrays[f"{name}_probabilities"] = labels, outputs
        predicted, confidence = outputs.argmax(1), outputs.max(1)
        right = np.flatnonzero(predicted == labels)[:EXAMPLES_PER_KIND]
        wrong = np.flatnonzero(predicted != labels)
        # The first mistakes, then the most confident ones (the most instructive).
        confident = wrong[np.argsort(-confidence[wrong], kind="stable")][:EXAMPLES_PER_KIND]
        chosen = {"correct": right, "wrong": wrong[:EXAMPLES_PER_KIND], "confident_wrong": confident}
        examples = {"split": np.array(name)}
        for kind, index in chosen.items():
            examples[f"{kind}_index"] = index.astype(np.int64)
            examples[f"{kind}_images"] = data.images[torch.from_numpy(index)].numpy()
            examples[f"{kind}_labels"] = labels[index]
            examples[f"{kind}_predicted"] = predicted[index].astype(np.int64)
            examples[f"{kind}_confidence"] = confidence[index]
    return _npz(arrays), _npz(examples)


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
    run_id = config.run_id
    base = {"run_id": run_id, "attempt": attempt}

    def end(status: str, error: Optional[str], diverged_epoch: Optional[int] = None) -> str:
        emit({"kind": "ended", **base, "status": status, "error": error, "diverged_epoch": diverged_epoch})
        return status

    try:
        device = select_device(config.train.device)
        splits, train = cache.split(config)
        scale, shift = normalization(config.dataset.normalize, train)
        infos = check_shapes(resolve_layers(config.layer_list(), config.variant_spec), splits.input_shape,
                             splits.num_classes)
        check_memory(infos, config.train.batch_size, config.train.optimizer.name)
        configure_threads(threads or config.train.threads
                          or threads_for(training_flops(infos) * min(config.train.batch_size, len(train))))
        built = build_model(config.layer_list(), splits.input_shape, splits.num_classes,
                            variant=config.variant_spec, init=config.train.init, generator_seed=config.seed)
        data = TrainData(train, splits.val, splits.test if config.evaluate_test else None,
                         Normalizer(scale, shift), list(config.dataset.augment))
        trainer = Trainer(built, data, config.train, config.seed, device,
                          callbacks=[_EventCallback(emit, run_id, attempt)])
        if resume is not None:
            trainer.load_state_dict(parse_checkpoint(resume))
        info = {
            "params_total": built.total_params, "params_trainable": built.trainable_params,
            "params_non_trainable": built.non_trainable_params,
            "split_hash": split_hash(splits, train, config),
            "split_sizes": {**splits.sizes, "train": len(train)},
            "input_shape": list(splits.input_shape), "class_names": list(splits.class_names),
            "code_version": code_version(), "environment": environment(device),
        }
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
        emit({"kind": "started", **base, "info": info, "resumed_from": trainer.start_epoch})
        result = trainer.fit()
        summary = run_summary(result, sum(logs["seconds"] for logs in result.history))
        predictions, examples = evaluation_files(result.probabilities, {"val": data.val, "test": data.test})
        weights = serialize_weights(trainer.model.state_dict())
    except Diverged as error:
        return end("diverged", str(error), error.epoch)
    except KeyboardInterrupt:
        end("interrupted", "interrupted by the user")
        raise
    except StoreError:
        raise  # the store cannot be written (disk full, read-only): stop; the run resumes next time
    except CnnlabError as error:
        return end("failed", str(error))
    except Exception as error:  # contain it: the study goes on, the error is kept with the run
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        where = traceback.extract_tb(error.__traceback__)[-1]
        return end("failed", f"{detail} (at {Path(where.filename).name}:{where.lineno})")
    emit({"kind": "finished", **base, "summary": summary, "weights": weights, "predictions": predictions,
          "examples": examples})
    return "done"


def parse_checkpoint(data: bytes) -> dict[str, Any]:
    """A checkpoint's state, read with ``weights_only=True``: nothing in it can execute."""
    return load_state(data, CHECKPOINT_KEYS, "checkpoint")


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
