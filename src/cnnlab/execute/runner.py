"""Train one run of a plan: data, model, resume state, trainer, and where its results go.

The run's results flow to a ``RunSink`` (the store, locally; the driver, on a cluster), so
that the worker that trains never needs to write the store itself.
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
from cnnlab.errors import CnnlabError
from cnnlab.models import build_model
from cnnlab.spec.plan import RunConfig
from cnnlab.train import (
    Diverged, Normalizer, TrainCallback, TrainData, Trainer, TrainResult, configure_threads, environment,
    evaluate, select_device,
)


class RunSink:
    """Receives what a run produces, in order. The local sink writes the store."""

    def resume_state(self, run_id: str) -> Optional[dict[str, Any]]: ...
    def started(self, run_id: str, info: dict[str, Any], resumed_from: int) -> None: ...
    def epoch(self, run_id: str, epoch: int, logs: dict[str, float]) -> None: ...
    def checkpoint(self, run_id: str, epoch: int, state: dict[str, Any]) -> None: ...
    def finished(self, run_id: str, result: dict[str, Any], weights: dict[str, torch.Tensor], predictions: bytes,
                 examples: bytes) -> None: ...
    def ended(self, run_id: str, status: str, error: Optional[str], diverged_epoch: Optional[int]) -> None: ...


@dataclass
class DataCache:
    """Datasets and splits already loaded in this process, reused across runs."""

    data_dir: Optional[Path] = None
    log: Optional[Callable[[str], None]] = None
    sources: dict[str, Source] = field(default_factory=dict)
    splits: dict[str, tuple[Splits, ArrayDataset]] = field(default_factory=dict)

    def source(self, config: RunConfig) -> Source:
        spec = config.dataset
        key = repr((spec.name, spec.path, spec.image_size, spec.grayscale))
        if key not in self.sources:
            self.sources[key] = load_source(spec, self.data_dir, log=self.log)
        return self.sources[key]

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
            self.splits[key] = (splits, train)
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


class _SinkCallback(TrainCallback):
    def __init__(self, sink: RunSink, run_id: str):
        self.sink, self.run_id = sink, run_id

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.sink.epoch(self.run_id, epoch, logs)

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        self.sink.checkpoint(self.run_id, epoch, state)


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


def evaluation_files(model: torch.nn.Module, splits: Splits, normalizer: Normalizer, device: torch.device,
                     autocast: bool) -> tuple[bytes, bytes]:
    """Two npz files: softmax outputs and labels of the val and test splits (for confusion
    matrices), and a few correct and wrong images of the last of them (for example grids)."""
    arrays: dict[str, np.ndarray] = {}
    examples: dict[str, np.ndarray] = {}
    for name in ("val", "test"):
        data = getattr(splits, name)
        if data is None or not len(data):
            continue
        result = evaluate(model, data, normalizer, device, autocast=autocast, keep_probabilities=True)
        labels = data.labels.numpy().astype(np.int64)
        probabilities = result.probabilities.numpy().astype(np.float32)
        arrays[f"{name}_labels"], arrays[f"{name}_probabilities"] = labels, probabilities
        predicted, confidence = probabilities.argmax(1), probabilities.max(1)
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
    sink: RunSink,
    cache: DataCache,
    callbacks: Sequence[TrainCallback] = (),
    threads: Optional[int] = None,
) -> str:
    """Train (or resume) one run; return its final status. KeyboardInterrupt propagates."""
    run_id = config.run_id
    try:
        configure_threads(threads or config.train.threads)
        device = select_device(config.train.device)
        splits, train = cache.split(config)
        scale, shift = normalization(config.dataset.normalize, train)
        built = build_model(config.layer_list(), splits.input_shape, splits.num_classes,
                            variant=config.variant_spec, init=config.train.init, generator_seed=config.seed)
        data = TrainData(train, splits.val, splits.test if config.evaluate_test else None,
                         Normalizer(scale, shift), list(config.dataset.augment))
        trainer = Trainer(built, data, config.train, config.seed, device,
                          callbacks=[_SinkCallback(sink, run_id), *callbacks])
        state = sink.resume_state(run_id)
        if state is not None:
            trainer.load_state_dict(state)
        info = {
            "params_total": built.total_params, "params_trainable": built.trainable_params,
            "params_non_trainable": built.non_trainable_params,
            "split_hash": split_hash(splits, train, config),
            "split_sizes": {**splits.sizes, "train": len(train)},
            "input_shape": list(splits.input_shape), "class_names": list(splits.class_names),
            "code_version": code_version(), "environment": environment(device),
        }
        sink.started(run_id, info, trainer.start_epoch)
        result = trainer.fit()
    except Diverged as error:
        sink.ended(run_id, "diverged", str(error), error.epoch)
        return "diverged"
    except KeyboardInterrupt:
        sink.ended(run_id, "interrupted", "interrupted by the user", None)
        raise
    except CnnlabError as error:
        sink.ended(run_id, "failed", str(error), None)
        return "failed"
    except Exception as error:  # contain it: the study goes on, the error is kept with the run
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        where = traceback.extract_tb(error.__traceback__)[-1]
        sink.ended(run_id, "failed", f"{detail} (at {Path(where.filename).name}:{where.lineno})", None)
        return "failed"
    summary = run_summary(result, sum(logs["seconds"] for logs in result.history))
    predictions, examples = evaluation_files(trainer.model, splits, data.normalizer, device, trainer.autocast)
    sink.finished(run_id, summary, trainer.model.state_dict(), predictions, examples)
    return "done"


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
