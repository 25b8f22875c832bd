"""The training loop. It computes; storing, progress and checkpoint files hang off it as callbacks.

Per-epoch ``train_loss`` and ``train_accuracy`` are running means over the epoch's batches
(what Keras reports), measured in training mode with dropout active and augmentation on;
``val_*`` and ``test_*`` come from a separate pass in inference mode. Losses are the
cross-entropy alone: kernel penalties are reported apart as ``penalty`` (Keras adds them into
``loss``), so that variants with and without regularization compare on the same scale.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F

from cnnlab.data import ArrayDataset
from cnnlab.errors import TrainError
from cnnlab.models import BuiltModel
from cnnlab.spec.training import Train
from cnnlab.train.batches import Normalizer, shuffled_batches
from cnnlab.train.checkpoint import CHECKPOINT_FORMAT, check_format
from cnnlab.train.early_stopping import EarlyStopper, is_better
from cnnlab.train.evaluation import EvalResult, evaluate
from cnnlab.train.fast import training_path
from cnnlab.train.optimizers import build_optimizer
from cnnlab.train.schedules import build_schedule


class Diverged(Exception):
    """The loss became NaN or infinite."""

    def __init__(self, epoch: int, value: float):
        super().__init__(f"loss became {value} in epoch {epoch + 1}")
        self.epoch = epoch


class TrainCallback:
    """Hooks the trainer calls; override what you need (Keras' Callback is the model)."""

    def on_train_start(self, trainer: "Trainer", start_epoch: int) -> None: ...
    def on_epoch_start(self, epoch: int, lr: float) -> None: ...
    def on_batch_end(self, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...
    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None: ...
    def on_train_end(self, result: "TrainResult") -> None: ...


@dataclass
class TrainData:
    train: ArrayDataset
    val: Optional[ArrayDataset]
    test: Optional[ArrayDataset]
    normalizer: Normalizer
    augment: list = field(default_factory=list)
    # Measure ``test`` after every epoch too (a final's test curve): logged as test_loss/test_accuracy,
    # which no monitor may watch, so nothing the run chooses reads it.
    test_each_epoch: bool = False


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    best_epoch: int  # 0-based; the epoch whose weights the model ends with when restored
    stopped_epoch: Optional[int]
    restored_best: bool
    final: dict[str, float]  # metrics of the weights the run ends with (incl. test_* when measured)
    # Softmax outputs of those weights on "val" and "test" (where measured), for confusion matrices
    # and examples, so that nothing evaluates the same weights twice.
    probabilities: dict[str, torch.Tensor] = field(default_factory=dict)


class Trainer:
    """Trains one built model on one split; resumable from any epoch boundary."""

    # How often the running loss is read back for progress (reading forces a sync).
    PROGRESS_SECONDS = 0.25

    def __init__(
        self,
        built: BuiltModel,
        data: TrainData,
        spec: Train,
        seed: int,
        device: torch.device,
        callbacks: Sequence[TrainCallback] = (),
        eval_batch_size: Optional[int] = None,
        own_rng: bool = False,
    ):
        if len(data.train) == 0:
            raise TrainError("the training split is empty")
        self.built = built
        path = training_path(built, device, spec.optimizer.name)  # the fast path, unless CNNLAB_FAST=0
        self.memory_format = path.memory_format
        self.model = built.module.to(device, memory_format=self.memory_format)
        self.forward = path.forward
        self.has_penalty = bool(built.penalized)
        self.data = data
        self.spec = spec
        self.seed = seed
        self.device = device
        self.callbacks = list(callbacks)
        self.eval_batch_size = eval_batch_size or path.eval_batch_size
        self.optimizer = build_optimizer(self.model.parameters(), spec.optimizer, path.optimizer_options)
        self.schedule = build_schedule(spec.schedule, spec.optimizer.lr, spec.epochs)
        self.stopper = EarlyStopper(spec.early_stopping) if spec.early_stopping else None
        self.generator = torch.Generator().manual_seed(seed)
        self.history: list[dict[str, float]] = []
        self.best_state: Optional[dict[str, torch.Tensor]] = None
        self.val_probabilities: Optional[torch.Tensor] = None  # of the latest validation
        self.start_epoch = 0
        self.normalizer = data.normalizer
        self.eval_normalizer = data.normalizer.to(device)  # evaluation batches are moved, then normalized
        if device.type == "cuda" and not data.augment:
            # The uint8 training images live on the GPU (a quarter of float32's bytes), so a batch
            # is cut, normalized and used there with no host-to-device copy per step.
            self.data = TrainData(ArrayDataset(data.train.images.to(device), data.train.labels.to(device)),
                                  data.val, data.test, data.normalizer, data.augment)
            self.normalizer = data.normalizer.to(device)
        self.autocast = spec.precision == "bf16"
        # Dropout draws from the global generator; seed it for this run. A member of a stacked group
        # (``own_rng``) keeps that generator's state apart instead, the state a lone run's would have:
        # train.stacked draws the member's masks under it and its checkpoint saves it.
        self.own_rng: Optional[torch.Tensor] = None
        if own_rng:
            self.own_rng = torch.Generator().manual_seed(seed).get_state()
            if device.type == "cuda":
                self.own_rng = _cuda_seeded_state(seed, device)
        else:
            torch.manual_seed(seed)

    # ------------------------------------------------------------ state

    def state_dict(self, epoch: int) -> dict[str, Any]:
        """Everything needed to continue after ``epoch`` as if never interrupted (a checkpoint's
        content: ``checkpoint.serialize_state`` turns it into the file's bytes)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "epochs_done": epoch + 1,
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "early_stopping": self.stopper.state_dict() if self.stopper else None,
            "best_model": self.best_state,
            "rng_torch": self._rng_state(),
            "rng_data": self.generator.get_state(),
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a parsed checkpoint (``checkpoint.parse_checkpoint``) of this format."""
        check_format(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.stopper and state["early_stopping"] is not None:
            self.stopper.load_state_dict(state["early_stopping"])
        self.best_state = state["best_model"]
        if self.own_rng is not None and self.device.type == "cpu":
            self.own_rng = state["rng_torch"].clone()
        elif self.own_rng is None:
            torch.set_rng_state(state["rng_torch"])
        self.generator.set_state(state["rng_data"])
        self.history = list(state["history"])
        self.start_epoch = int(state["epochs_done"])

    def _rng_state(self) -> torch.Tensor:
        """The dropout generator's state a checkpoint keeps: the global CPU one (a lone run on
        any device saves that one), or a stacked member's own where it is a CPU state."""
        if self.own_rng is not None and self.device.type == "cpu":
            return self.own_rng.clone()
        return torch.get_rng_state()

    # ------------------------------------------------------------ loop

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        model, optimizer = self.model, self.optimizer
        model.train()
        n = len(self.data.train)
        batches = math.ceil(n / self.spec.batch_size)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        penalty_value = torch.zeros((), device=self.device)
        seen = 0
        started = last_report = time.perf_counter()
        stream = shuffled_batches(self.data.train, self.spec.batch_size, self.generator, self.normalizer,
                                  self.data.augment, self.device, self.memory_format)
        forward = self.forward
        for batch, (x, y) in enumerate(stream):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = forward(x)
                loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            if self.has_penalty:
                penalty = self.built.penalty()
                (loss + penalty).backward()
                penalty_value = penalty.detach()
            else:
                loss.backward()
            optimizer.step()
            size = y.shape[0]
            seen += size
            loss_sum += loss.detach() * size
            correct += (logits.detach().argmax(1) == y).sum()
            now = time.perf_counter()
            if self.callbacks and (now - last_report >= self.PROGRESS_SECONDS or batch == batches - 1):
                last_report = now
                self._emit("on_batch_end", epoch, batch + 1, batches, {
                    "loss": loss_sum.item() / seen, "accuracy": correct.item() / seen,
                    "images_per_second": seen / max(now - started, 1e-9),
                })
        train_loss = loss_sum.item() / seen
        if not math.isfinite(train_loss):
            raise Diverged(epoch, train_loss)
        return {"train_loss": train_loss, "train_accuracy": correct.item() / seen,
                "penalty": float(penalty_value), "train_images_per_second": seen / (time.perf_counter() - started)}

    def _evaluate(self, data: ArrayDataset) -> EvalResult:
        return evaluate(self.forward, data, self.eval_normalizer, self.device, self.eval_batch_size, self.autocast,
                        keep_probabilities=True, memory_format=self.memory_format)

    def fit(self) -> TrainResult:
        """Train from ``start_epoch`` to the end (or until early stopping)."""
        self._emit("on_train_start", self, self.start_epoch)
        stopped = self.stopper.stopped_epoch if self.stopper else None
        epoch = self.start_epoch
        while epoch < self.spec.epochs and stopped is None:
            started = self.begin_epoch(epoch)
            logs = self._train_epoch(epoch)
            stopped = self.end_epoch(epoch, logs, time.perf_counter() - started)
            epoch += 1
        return self.finish(stopped)

    @property
    def stopped(self) -> Optional[int]:
        """The epoch early stopping ended the run at (0-based), or None."""
        return self.stopper.stopped_epoch if self.stopper else None

    def begin_epoch(self, epoch: int) -> float:
        """Set the epoch's learning rate and tell the callbacks; the time it began."""
        lr = self.schedule.rate(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._epoch_lr = lr
        self._emit("on_epoch_start", epoch, lr)
        return time.perf_counter()

    def end_epoch(self, epoch: int, logs: dict[str, float], train_seconds: float,
                  measured: Optional[dict[str, EvalResult]] = None) -> Optional[int]:
        """Measure, record and act on an epoch whose training gave ``logs``: validation (and test
        when its curve is measured), history, schedule, early stopping, callbacks, checkpoint.
        Returns the epoch early stopping stopped at, or None. A stacked group calls this for each
        member after training them together, with the evaluations it ``measured`` for all members
        at once, so a member decides exactly as a lone run would."""
        started = time.perf_counter()
        stopped = None
        measured = measured or {}
        if self.data.val is not None and len(self.data.val):
            val = measured.get("val") or self._evaluate(self.data.val)
            logs["val_loss"], logs["val_accuracy"] = val.loss, val.accuracy
            self.val_probabilities = val.probabilities
        if self.data.test_each_epoch and self.data.test is not None and len(self.data.test):
            test = measured.get("test") or self._evaluate(self.data.test)
            logs["test_loss"], logs["test_accuracy"] = test.loss, test.accuracy
        logs["lr"] = self._epoch_lr
        logs["seconds"] = train_seconds + time.perf_counter() - started
        self.history.append(logs)
        self.schedule.observe(epoch, logs)
        if self.stopper:
            if self.stopper.observe(epoch, logs):
                stopped = epoch
            if self.stopper.best_epoch == epoch and self.stopper.spec.restore_best:
                self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        self._emit("on_epoch_end", epoch, logs)
        last = epoch == self.spec.epochs - 1 or stopped is not None
        if (epoch + 1) % self.spec.checkpoint_every == 0 and not last:
            self._emit("on_checkpoint", epoch, self.state_dict(epoch))
        return stopped

    def finish(self, stopped: Optional[int]) -> TrainResult:
        restored = False
        if self.stopper and self.stopper.spec.restore_best and self.best_state is not None:
            best_epoch = self.stopper.best_epoch
            if best_epoch != len(self.history) - 1:
                self.model.load_state_dict(self.best_state)
                restored = True
        else:
            best_epoch = best_history_epoch(self.history, "val_accuracy" if self.data.val is not None else "train_accuracy")
        final_epoch = best_epoch if restored else len(self.history) - 1
        final = {k: v for k, v in self.history[final_epoch].items() if k in
                 ("train_loss", "train_accuracy", "val_loss", "val_accuracy")}
        probabilities = {}
        if self.data.val is not None and len(self.data.val):
            if restored or self.val_probabilities is None:  # other weights than the last epoch's, or resumed at the end
                self.val_probabilities = self._evaluate(self.data.val).probabilities
            probabilities["val"] = self.val_probabilities
        if self.data.test is not None and len(self.data.test):
            test = self._evaluate(self.data.test)
            final["test_loss"], final["test_accuracy"] = test.loss, test.accuracy
            probabilities["test"] = test.probabilities
        result = TrainResult(self.history, best_epoch, stopped, restored, final, probabilities)
        self._emit("on_train_end", result)
        return result


def _cuda_seeded_state(seed: int, device: torch.device) -> torch.Tensor:
    """The state ``torch.manual_seed(seed)`` gives the CUDA generator, the global one left as it was."""
    saved = torch.cuda.get_rng_state(device)
    torch.cuda.manual_seed(seed)
    state = torch.cuda.get_rng_state(device)
    torch.cuda.set_rng_state(saved, device)
    return state


def best_history_epoch(history: list[dict[str, float]], monitor: str) -> int:
    """The 0-based epoch with the best value of ``monitor`` (the first one on ties)."""
    best, best_epoch = None, len(history) - 1
    for epoch, logs in enumerate(history):
        value = logs.get(monitor)
        if value is not None and is_better(monitor, value, best):
            best, best_epoch = value, epoch
    return best_epoch
