"""The training loop as a user sees it, on a tiny model and a few hundred 8x8 digits (each test well
under a second): what progress reports and when, what the per-epoch logs measure, the kernel
penalty, seeding and resume with dropout, checkpoints' timing, restore-best, the best epoch of a
run without early stopping, and the probabilities and test metrics the result carries.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

import cnnlab.train.trainer as trainer_module
from cnnlab.data import ArrayDataset
from cnnlab.errors import TrainError
from cnnlab.models import build_model
from cnnlab.spec.training import Train
from cnnlab.train import (
    Diverged, Normalizer, TrainCallback, TrainData, Trainer, evaluate, parse_checkpoint, serialize_state,
)
from cnnlab.train.early_stopping import EarlyStopper
from cnnlab.train.trainer import best_history_epoch
from tests.models.architectures import layers, variant

MODEL = [{"conv": {"filters": 4, "kernel": 3}}, "flatten", {"dense": 10}]
DROPOUT_MODEL = [{"conv": {"filters": 4, "kernel": 3}}, {"dropout": 0.5}, "flatten", {"dense": 10}]
TIMINGS = ("seconds", "train_images_per_second")
NORMALIZER = Normalizer(torch.full((1, 1, 1, 1), 1 / 255.0), torch.zeros((1, 1, 1, 1)))
TRAIN, VAL, TEST = 100, 60, 40  # 100 training images in batches of 16: 7 batches, the last one of 4
BATCH = 16
BATCHES = 7


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy((bunch.images * (255.0 / 16.0)).round().clip(0, 255)).to(torch.uint8)[:, None]
    return images, torch.from_numpy(bunch.target).long()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same sums in the same order: runs that should agree agree bit for bit
    yield
    torch.set_num_threads(threads)


def _data(digits, val: bool = True, test: bool = False) -> TrainData:
    images, labels = digits
    cut = lambda a, b: ArrayDataset(images[a:b], labels[a:b])  # noqa: E731
    return TrainData(cut(0, TRAIN), cut(TRAIN, TRAIN + VAL) if val else None,
                     cut(TRAIN + VAL, TRAIN + VAL + TEST) if test else None, NORMALIZER)


def _spec(**changes: Any) -> Train:
    spec = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "batch_size": BATCH, "epochs": 2, **changes}
    return Train.model_validate(spec)


def _trainer(data: TrainData, callbacks=(), model=MODEL, penalty=None, seed: int = 3, **spec: Any) -> Trainer:
    built = build_model(layers(model), (1, 8, 8), 10, variant(penalty) if penalty else None, generator_seed=0)
    return Trainer(built, data, _spec(**spec), seed=seed, device=torch.device("cpu"), callbacks=callbacks)


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _metrics(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in logs.items() if k not in TIMINGS} for logs in history]


class Recorder(TrainCallback):
    """Every hook call, each checkpoint as a resume reads it, and each epoch's end weights."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.trainer: Any = None
        self.checkpoints: dict[int, dict[str, Any]] = {}
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_start(self, trainer: Trainer, start_epoch: int) -> None:
        self.trainer = trainer
        self.calls.append(("train_start", start_epoch))

    def on_epoch_start(self, epoch: int, lr: float) -> None:
        self.calls.append(("epoch_start", epoch, lr))

    def on_batch_end(self, epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
        self.calls.append(("batch_end", epoch, batch, batches, dict(logs)))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.calls.append(("epoch_end", epoch))
        self.weights[epoch] = _weights(self.trainer)

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        self.calls.append(("checkpoint", epoch))
        self.checkpoints[epoch] = parse_checkpoint(serialize_state(state))

    def on_train_end(self, result) -> None:
        self.calls.append(("train_end", result))

    def batch_reports(self, epoch: int = 0) -> list[tuple[int, int, dict[str, float]]]:
        return [(c[2], c[3], c[4]) for c in self.calls if c[0] == "batch_end" and c[1] == epoch]

    def checkpoint_epochs(self) -> list[int]:
        return [c[1] for c in self.calls if c[0] == "checkpoint"]


# ---------------------------------------------------------------- progress and timings


class _Clock:
    """A clock that only moves when a training batch runs: each forward pass in training mode
    takes exactly 1/8 s (a binary fraction, so the sums are exact)."""

    STEP = 0.125

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


class _Timed(nn.Module):
    def __init__(self, inner: nn.Module, clock: _Clock) -> None:
        super().__init__()
        self.inner, self.clock = inner, clock
        self.evaluated = 0  # forward passes in inference mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.clock.now += self.clock.STEP
        else:
            self.evaluated += x.shape[0]
        return self.inner(x)


def _timed_run(digits, monkeypatch, **spec: Any):
    clock = _Clock()
    monkeypatch.setattr(trainer_module, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    recorder = Recorder()
    trainer = _trainer(_data(digits), [recorder], **spec)
    trainer.forward = _Timed(trainer.forward, clock)
    return trainer, trainer.fit(), recorder


def test_progress_is_reported_every_quarter_second_and_at_the_last_batch(digits, monkeypatch):
    """Batches of 1/8 s: a report each second batch (0.25 s since the last one), and the last batch
    (the 7th, short) always, with its number out of the epoch's batch count."""
    _, result, recorder = _timed_run(digits, monkeypatch, epochs=1)
    reports = recorder.batch_reports()
    assert [(batch, batches) for batch, batches, _ in reports] == [(2, BATCHES), (4, BATCHES), (6, BATCHES),
                                                                   (BATCHES, BATCHES)]
    # Throughput: images seen so far over the time since the epoch started.
    seen = [min(batch * BATCH, TRAIN) for batch, _, _ in reports]
    assert [logs["images_per_second"] for _, _, logs in reports] == pytest.approx(
        [n / (batch * _Clock.STEP) for n, (batch, _, _) in zip(seen, reports)])
    for _, _, logs in reports:
        assert logs["loss"] > 0.0 and 0.0 <= logs["accuracy"] <= 1.0
    # The last report is the epoch's own running means.
    last = reports[-1][2]
    logs = result.history[0]
    assert (last["loss"], last["accuracy"]) == pytest.approx((logs["train_loss"], logs["train_accuracy"]))
    # The epoch's timings: its 7 batches took 7/8 s.
    assert logs["train_images_per_second"] == pytest.approx(TRAIN / (BATCHES * _Clock.STEP))
    assert logs["seconds"] == pytest.approx(BATCHES * _Clock.STEP)


def test_every_hook_is_called_in_order_with_the_epochs_rate_and_the_result(digits):
    recorder = Recorder()
    spec = {"epochs": 3, "schedule": {"name": "step", "every": 1, "factor": 0.5}}
    result = _trainer(_data(digits), [recorder], **spec).fit()
    rates = [logs["lr"] for logs in result.history]
    assert rates == pytest.approx([0.1, 0.05, 0.025])  # the history's rate is the schedule's
    kinds = [c[0] for c in recorder.calls if c[0] != "batch_end"]
    assert kinds == ["train_start"] + ["epoch_start", "epoch_end", "checkpoint"] * 2 + ["epoch_start", "epoch_end",
                                                                                         "train_end"]
    assert [c[1:] for c in recorder.calls if c[0] == "epoch_start"] == [(0, rates[0]), (1, rates[1]), (2, rates[2])]
    assert recorder.calls[-1][1] is result
    for epoch in range(3):
        assert recorder.batch_reports(epoch)[-1][:2] == (BATCHES, BATCHES)  # each epoch ends on a report


def test_validation_is_measured_once_per_epoch_and_not_again_for_the_result(digits, monkeypatch):
    """The result's validation probabilities are the last epoch's: the same weights are not evaluated twice."""
    trainer, result, _ = _timed_run(digits, monkeypatch, epochs=2)
    assert trainer.forward.evaluated == 2 * VAL
    again = evaluate(trainer.forward.inner, trainer.data.val, NORMALIZER, torch.device("cpu"), 256, keep_probabilities=True,
                     memory_format=trainer.memory_format)
    torch.testing.assert_close(result.probabilities["val"], again.probabilities)


# ---------------------------------------------------------------- what an epoch's logs measure


def test_train_loss_and_accuracy_are_the_means_over_the_epochs_images(digits):
    """With a negligible rate the weights do not move, so the running means over the epoch's seven
    batches (the last one short) equal one evaluation of the training split."""
    data = _data(digits)
    trainer = _trainer(data, epochs=1, optimizer={"name": "sgd", "lr": 1e-12})
    logs = trainer.fit().history[0]
    measured = evaluate(trainer.forward, data.train, NORMALIZER, torch.device("cpu"), 256,
                        memory_format=trainer.memory_format)
    assert logs["train_loss"] == pytest.approx(measured.loss, rel=1e-5)
    assert logs["train_accuracy"] == measured.accuracy
    assert logs["penalty"] == 0.0
    assert logs["train_images_per_second"] > 0.0 and logs["seconds"] >= 0.0


def test_an_l2_penalty_is_logged_apart_from_the_loss(digits):
    """With a negligible rate the kernels do not move: the logged penalty is 0.05 * sum(W**2) of
    them, and the loss is the cross-entropy alone (the same as without the penalty)."""
    data = _data(digits)
    still = {"epochs": 1, "optimizer": {"name": "sgd", "lr": 1e-12}}
    penalized = _trainer(data, penalty={"l2": 0.05}, **still)
    logs = penalized.fit().history[0]
    plain = _trainer(data, **still).fit().history[0]
    assert logs["penalty"] > 0.0 and logs["penalty"] == pytest.approx(penalized.built.penalty().item(), rel=1e-6)
    assert plain["penalty"] == 0.0
    assert logs["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-6)


def test_an_l2_penalty_shrinks_the_kernels(digits):
    data = _data(digits)
    plain = _trainer(data, epochs=2)
    plain.fit()
    penalized = _trainer(data, epochs=2, penalty={"l2": 0.05})
    initial = _weights(penalized)
    penalized.fit()
    kernels = [name for name in initial if name.endswith("weight")]
    assert any(not torch.equal(initial[n], penalized.model.state_dict()[n]) for n in kernels), "it did not train"

    def squares(trainer: Trainer) -> float:
        return sum(float(trainer.model.state_dict()[n].square().sum()) for n in kernels)

    assert squares(penalized) < 0.9 * squares(plain), (squares(penalized), squares(plain))


def test_a_nan_loss_raises_diverged_naming_the_epoch(digits):
    class Poison(TrainCallback):
        def __init__(self) -> None:
            self.trainer: Any = None

        def on_train_start(self, trainer: Trainer, start_epoch: int) -> None:
            self.trainer = trainer

        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            with torch.no_grad():
                for parameter in self.trainer.model.parameters():
                    parameter.fill_(float("nan"))

    trainer = _trainer(_data(digits), [Poison()], epochs=3)
    with pytest.raises(Diverged, match="nan in epoch 2") as caught:
        trainer.fit()
    assert caught.value.epoch == 1 and len(trainer.history) == 1


def test_an_empty_training_split_is_refused(digits):
    images, labels = digits
    data = TrainData(ArrayDataset(images[:0], labels[:0]), None, None, NORMALIZER)
    with pytest.raises(TrainError, match="training split is empty"):
        _trainer(data)


# ---------------------------------------------------------------- seeding, dropout and resume


def test_the_seed_alone_decides_dropout_whatever_the_global_generator_did(digits):
    data = _data(digits)
    torch.manual_seed(11)
    first = _trainer(data, model=DROPOUT_MODEL).fit()
    torch.manual_seed(12)
    second = _trainer(data, model=DROPOUT_MODEL).fit()
    assert _metrics(first.history) == _metrics(second.history)


def test_a_model_handed_over_in_eval_mode_still_trains_with_dropout(digits):
    data = _data(digits)
    reference = _trainer(data, model=DROPOUT_MODEL, epochs=1).fit()
    built = build_model(layers(DROPOUT_MODEL), (1, 8, 8), 10, generator_seed=0)
    built.module.eval()
    trainer = Trainer(built, data, _spec(epochs=1), seed=3, device=torch.device("cpu"))
    assert _metrics(trainer.fit().history) == _metrics(reference.history)


def test_resume_with_dropout_gives_the_uninterrupted_run(digits):
    """The dropout masks after a resume are the uninterrupted run's: the global generator's state
    travels in the checkpoint."""
    data = _data(digits)
    recorder = Recorder()
    whole = _trainer(data, [recorder], model=DROPOUT_MODEL, epochs=3)
    result = whole.fit()
    assert sorted(recorder.checkpoints) == [0, 1]
    for epoch, state in recorder.checkpoints.items():
        resumed = _trainer(data, model=DROPOUT_MODEL, epochs=3)
        resumed.load_state_dict(state)
        again = resumed.fit()
        assert _metrics(again.history) == _metrics(result.history), f"resumed after epoch {epoch + 1}"
        for name, value in whole.model.state_dict().items():
            assert torch.equal(resumed.model.state_dict()[name], value), name


def test_a_checkpoint_of_another_format_is_refused(digits):
    trainer = _trainer(_data(digits))
    state = {**trainer.state_dict(0), "format": 1}
    with pytest.raises(TrainError, match="checkpoint format 1"):
        trainer.load_state_dict(state)


def test_early_stopping_state_in_a_checkpoint_is_optional(digits):
    """A state without early-stopping memory leaves a trainer's stopper fresh, and one with it loads
    into a trainer that has no stopper."""
    data = _data(digits)
    plain = _trainer(data)
    with_stopping = _trainer(data, early_stopping={"monitor": "train_loss"})
    with_stopping.load_state_dict(plain.state_dict(0))
    fresh = EarlyStopper(with_stopping.stopper.spec)
    assert with_stopping.stopper.state_dict() == fresh.state_dict() and fresh.best is None
    assert with_stopping.start_epoch == 1
    plain.load_state_dict(with_stopping.state_dict(0))
    assert plain.stopper is None and plain.start_epoch == 1


def test_a_run_resumed_at_its_end_trains_no_more_and_still_gives_its_results(digits):
    data = _data(digits, test=True)
    whole = _trainer(data, epochs=2)
    result = whole.fit()
    resumed = _trainer(data, epochs=2)
    resumed.load_state_dict(parse_checkpoint(serialize_state(whole.state_dict(1))))
    again = resumed.fit()
    assert again.history == result.history and again.final == result.final
    assert again.best_epoch == result.best_epoch and again.restored_best is False
    for split in ("val", "test"):
        assert torch.equal(again.probabilities[split], result.probabilities[split]), split


# ---------------------------------------------------------------- checkpoints' timing


@pytest.mark.parametrize("epochs, every, expected", [(3, 1, [0, 1]), (7, 3, [2, 5])])
def test_a_checkpoint_follows_every_nth_epoch_but_never_the_last(digits, epochs, every, expected):
    recorder = Recorder()
    _trainer(_data(digits, val=False), [recorder], epochs=epochs, checkpoint_every=every,
             optimizer={"name": "sgd", "lr": 0.01}).fit()
    assert recorder.checkpoint_epochs() == expected


# ---------------------------------------------------------------- early stopping and restore-best

# No later epoch can beat the first by more than 1.0 accuracy: the first epoch is the best, and the
# second, without improvement, stops the run (patience 1).
FIRST_IS_BEST = {"monitor": "train_accuracy", "patience": 1, "min_delta": 1.0}


@pytest.fixture(scope="module")
def stopped_run(digits):
    recorder = Recorder()
    trainer = _trainer(_data(digits, test=True), [recorder], epochs=5, early_stopping=FIRST_IS_BEST)
    return trainer, trainer.fit(), recorder


def test_a_run_stopped_early_ends_with_the_best_epochs_weights(stopped_run):
    trainer, result, recorder = stopped_run
    assert (result.stopped_epoch, result.best_epoch, result.restored_best) == (1, 0, True)
    assert len(result.history) == 2 and recorder.checkpoint_epochs() == [0]  # none after the stop
    assert any(not torch.equal(recorder.weights[0][n], recorder.weights[1][n]) for n in recorder.weights[0])
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, recorder.weights[0][name]), name
    epoch_metrics = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
    assert {k: result.final[k] for k in epoch_metrics} == {k: result.history[0][k] for k in epoch_metrics}


def test_after_restore_the_probabilities_and_test_metrics_are_the_restored_weights(stopped_run):
    trainer, result, _ = stopped_run
    cpu = torch.device("cpu")
    for split, data in (("val", trainer.data.val), ("test", trainer.data.test)):
        measured = evaluate(trainer.forward, data, NORMALIZER, cpu, 256, keep_probabilities=True,
                            memory_format=trainer.memory_format)
        torch.testing.assert_close(result.probabilities[split], measured.probabilities)
        if split == "test":
            assert result.final["test_loss"] == pytest.approx(measured.loss)
            assert result.final["test_accuracy"] == measured.accuracy
        else:
            assert result.final["val_accuracy"] == measured.accuracy


def test_a_run_resumed_after_it_stopped_does_not_train_on(stopped_run, digits):
    trainer, result, _ = stopped_run
    resumed = _trainer(_data(digits, test=True), epochs=5, early_stopping=FIRST_IS_BEST)
    resumed.load_state_dict(parse_checkpoint(serialize_state(trainer.state_dict(1))))
    again = resumed.fit()
    assert again.history == result.history and again.stopped_epoch == 1


def test_when_the_best_epoch_is_the_last_nothing_is_restored(digits):
    recorder = Recorder()
    trainer = _trainer(_data(digits), [recorder], epochs=1, early_stopping=FIRST_IS_BEST)
    result = trainer.fit()
    assert (result.best_epoch, result.stopped_epoch) == (0, None)
    assert result.restored_best is False


def test_early_stopping_on_a_metric_the_run_does_not_have_neither_stops_nor_restores(digits):
    """A train+val retrain has no validation split: early stopping on val_accuracy never fires and the
    run keeps its last weights."""
    recorder = Recorder()
    trainer = _trainer(_data(digits, val=False), [recorder], epochs=4, optimizer={"name": "sgd", "lr": 0.01},
                       early_stopping={"monitor": "val_accuracy", "patience": 1})
    result = trainer.fit()
    assert result.stopped_epoch is None and result.restored_best is False and len(result.history) == 4
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, recorder.weights[3][name]), name


def test_without_early_stopping_the_best_epoch_is_the_best_validation_accuracy(digits):
    """Validation labelled one class off: as the model learns the training labels, validation
    accuracy falls while training accuracy rises, so the two disagree on the best epoch."""
    images, labels = digits
    data = _data(digits)
    data.val = ArrayDataset(images[:VAL], (labels[:VAL] + 1) % 10)
    result = _trainer(data, epochs=3).fit()
    val = [logs["val_accuracy"] for logs in result.history]
    train = [logs["train_accuracy"] for logs in result.history]
    best_val, best_train = val.index(max(val)), train.index(max(train))
    assert best_val != best_train, f"validation and training agree on the best epoch: {val}, {train}"
    assert best_val != len(val) - 1, f"the best validation epoch is the last: {val}"
    assert result.best_epoch == best_val and result.restored_best is False
    assert result.final["val_accuracy"] == val[-1]  # no restore without early stopping


def test_best_history_epoch_takes_the_first_best_and_the_last_when_none_has_the_metric():
    history = [{"val_accuracy": 0.5}, {"val_accuracy": 0.7}, {}, {"val_accuracy": 0.7}, {"val_accuracy": 0.6}]
    assert best_history_epoch(history, "val_accuracy") == 1
    assert best_history_epoch([{"val_loss": 0.9}, {"val_loss": 0.4}, {"val_loss": 0.5}], "val_loss") == 1
    assert best_history_epoch([{"val_loss": math.nan}, {"val_loss": 0.4}], "val_loss") == 1
    assert best_history_epoch([{"train_loss": 1.0}] * 3, "val_accuracy") == 2
