"""Resume and restore-best on runs where it matters: the rate decays (step and plateau), early
stopping fires, and the best epoch is not the last.

A run resumed from any of its checkpoints must give the uninterrupted run's epochs, best epoch,
stop and final weights exactly (one thread, the CPU), and a run that ends with restore_best must
hold the best epoch's weights. Each fixture first asserts that it has the property it exists for,
so a change in the data or the model that loses it fails here, loudly, instead of passing quietly.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from cnnlab.data import ArrayDataset
from cnnlab.models import build_model
from cnnlab.spec.training import Train
from cnnlab.train import Normalizer, TrainCallback, TrainData, Trainer, evaluate, parse_checkpoint, serialize_state
from tests.models.architectures import layers

MODEL = [{"conv": {"filters": 4, "kernel": 3}}, "flatten", {"dense": 10}]
TIMINGS = ("seconds", "train_images_per_second")

# Adam with a step decay: the rate halves every 2 epochs (schedule state: none, the epoch decides).
STEP = {"optimizer": {"name": "adam", "lr": 0.02}, "batch_size": 64, "epochs": 6,
        "schedule": {"name": "step", "every": 2, "factor": 0.5}}
# SGD with momentum; the plateau schedule cuts the rate after an epoch whose validation loss does not
# improve by 0.05, and early stopping gives up after 2 epochs without a 0.01 gain in validation
# accuracy: the rate decays, the run stops early, its best epoch is not its last, and each piece of
# state (the plateau's wait and scale, the stopper's best and wait, the best weights) is mid-way at
# some checkpoint.
PLATEAU = {"optimizer": {"name": "sgd", "lr": 0.2, "momentum": 0.9}, "batch_size": 64, "epochs": 12,
           "schedule": {"name": "plateau", "monitor": "val_loss", "patience": 1, "factor": 0.5, "min_delta": 0.05},
           "early_stopping": {"monitor": "val_accuracy", "patience": 2, "min_delta": 0.01}}


@pytest.fixture(scope="module")
def digits() -> TrainData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy((bunch.images * (255.0 / 16.0)).round().clip(0, 255)).to(torch.uint8)[:, None]
    labels = torch.from_numpy(bunch.target).long()
    train, val = ArrayDataset(images[:500], labels[:500]), ArrayDataset(images[500:800], labels[500:800])
    return TrainData(train, val, None, Normalizer(torch.full((1, 1, 1, 1), 1 / 255.0), torch.zeros((1, 1, 1, 1))))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same sums in the same order: resumed and uninterrupted agree bit for bit
    yield
    torch.set_num_threads(threads)


class Recorder(TrainCallback):
    """Keeps each checkpoint as a resume reads it (through its bytes) and each epoch's end weights."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.checkpoints: dict[int, dict[str, Any]] = {}
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_start(self, trainer: Trainer, start_epoch: int) -> None:
        self.trainer = trainer

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.weights[epoch] = {k: v.detach().clone() for k, v in self.trainer.model.state_dict().items()}

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        self.checkpoints[epoch] = parse_checkpoint(serialize_state(state))


def _trainer(spec: dict, data: TrainData, callbacks=()) -> Trainer:
    built = build_model(layers(MODEL), (1, 8, 8), 10, generator_seed=0)
    return Trainer(built, data, Train.model_validate(spec), seed=3, device=torch.device("cpu"), callbacks=callbacks)


def _metrics(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in logs.items() if k not in TIMINGS} for logs in history]


def _run(spec: dict, data: TrainData):
    recorder = Recorder()
    trainer = _trainer(spec, data, [recorder])
    return trainer, trainer.fit(), recorder


@pytest.fixture(scope="module")
def step_run(digits):
    return _run(STEP, digits)


@pytest.fixture(scope="module")
def plateau_run(digits):
    return _run(PLATEAU, digits)


def test_the_fixtures_decay_the_rate_stop_early_and_end_on_an_earlier_best(step_run, plateau_run):
    _, result, _ = step_run
    assert [logs["lr"] for logs in result.history] == pytest.approx([0.02, 0.02, 0.01, 0.01, 0.005, 0.005])
    _, result, _ = plateau_run
    rates = [logs["lr"] for logs in result.history]
    assert min(rates) < rates[0], f"the plateau schedule never cut the rate: {rates}"
    assert result.stopped_epoch is not None, "early stopping never fired"
    assert len(result.history) == result.stopped_epoch + 1 < PLATEAU["epochs"]
    assert result.best_epoch < len(result.history) - 1 and result.restored_best, (
        f"the best epoch ({result.best_epoch}) is the last: restore-best would be untested")


@pytest.mark.parametrize("fixture", ["step_run", "plateau_run"])
def test_resume_from_every_checkpoint_equals_the_uninterrupted_run(fixture, request, digits):
    trainer, result, recorder = request.getfixturevalue(fixture)
    spec = STEP if fixture == "step_run" else PLATEAU
    assert len(recorder.checkpoints) >= 3
    for epoch, state in recorder.checkpoints.items():
        resumed = _trainer(spec, digits)
        resumed.load_state_dict(state)
        again = resumed.fit()
        where = f"resumed after epoch {epoch + 1}"
        assert _metrics(again.history) == _metrics(result.history), where
        assert (again.best_epoch, again.stopped_epoch, again.restored_best) == (
            result.best_epoch, result.stopped_epoch, result.restored_best), where
        assert again.final == result.final, where
        for name, value in trainer.model.state_dict().items():
            assert torch.equal(resumed.model.state_dict()[name], value), f"{where}: {name}"


def test_the_run_ends_with_the_best_epochs_weights_not_the_last(plateau_run, digits):
    trainer, result, recorder = plateau_run
    best, last = result.best_epoch, len(result.history) - 1
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, recorder.weights[best][name]), name
    assert any(not torch.equal(recorder.weights[best][n], recorder.weights[last][n]) for n in recorder.weights[best])
    # Evaluated again, the ending weights score what the best epoch scored.
    again = evaluate(trainer.forward, digits.val, digits.normalizer, torch.device("cpu"), 256,
                     memory_format=trainer.memory_format)
    assert again.loss == pytest.approx(result.history[best]["val_loss"], rel=1e-5)
    assert again.accuracy == result.history[best]["val_accuracy"] == result.final["val_accuracy"]


def test_without_restore_best_the_run_ends_with_its_last_weights(digits):
    spec = {**PLATEAU, "early_stopping": {**PLATEAU["early_stopping"], "restore_best": False}}
    trainer, result, recorder = _run(spec, digits)
    last = len(result.history) - 1
    assert not result.restored_best and result.final["val_accuracy"] == result.history[last]["val_accuracy"]
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, recorder.weights[last][name]), name
