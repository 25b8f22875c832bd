"""Running whole studies: determinism, skip on rerun, resume equals uninterrupted, contained failures."""

from __future__ import annotations

import pytest

from cnnlab.api import open_store, run_study
from cnnlab.execute.progress import StudyProgress

COMPARED = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "penalty")


def _curves(folder):
    with open_store(folder) as store:
        return {run["id"]: [tuple(e[k] for k in COMPARED) for e in store.epochs(run["id"])] for run in store.runs()}


def test_same_spec_and_seed_give_identical_epoch_metrics(tmp_path, tiny_study):
    first = run_study(tiny_study, tmp_path / "a")
    second = run_study(tiny_study, tmp_path / "b")
    assert first.outcome.ok and second.outcome.statuses == {"done": 2}
    assert _curves(tmp_path / "a") == _curves(tmp_path / "b")
    assert all(len(c) == 3 for c in _curves(tmp_path / "a").values())


def test_rerun_trains_nothing_and_force_trains_everything(tmp_path, tiny_study):
    run_study(tiny_study, tmp_path)
    again = run_study(tiny_study, tmp_path)
    assert again.outcome.skipped == 2 and again.outcome.statuses == {}
    forced = run_study(tiny_study, tmp_path, force=True)
    assert forced.outcome.skipped == 0 and forced.outcome.statuses == {"done": 2}


class _InterruptAt(StudyProgress):
    """Acts like Ctrl-C at the end of one epoch of one run."""

    def __init__(self, run_number: int, epoch: int):
        self.run_number, self.epoch, self.runs = run_number, epoch, 0

    def run_start(self, *args) -> None:
        self.runs += 1

    def run_epoch(self, run_id, epoch, logs) -> None:
        if self.runs == self.run_number and epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("interrupt_epoch", [1, 3])
def test_resume_after_interruption_equals_the_uninterrupted_run(tmp_path, tiny_study, interrupt_epoch):
    # Everything with state across epochs: dropout, augmentation, plateau schedule, early stopping.
    tiny_study["dataset"]["augment"] = ["hflip", {"crop": 1}]
    tiny_study["train"].update(epochs=6, schedule={"name": "plateau", "patience": 1, "factor": 0.5},
                               early_stopping={"monitor": "val_loss", "patience": 10})
    reference = run_study(tiny_study, tmp_path / "reference")
    assert reference.outcome.ok

    stopped = run_study(tiny_study, tmp_path / "resumed", progress=_InterruptAt(2, interrupt_epoch))
    assert stopped.outcome.interrupted
    with open_store(tmp_path / "resumed") as store:
        statuses = sorted(r["status"] for r in store.runs())
    assert statuses == ["done", "interrupted"]
    resumed = run_study(tiny_study, tmp_path / "resumed")
    assert resumed.outcome.skipped == 1 and resumed.outcome.statuses == {"done": 1}
    assert _curves(tmp_path / "resumed") == _curves(tmp_path / "reference")
    with open_store(tmp_path / "resumed") as a, open_store(tmp_path / "reference") as b:
        for run in a.runs():
            other = b.run(run["id"])
            assert run["test_accuracy"] == other["test_accuracy"]
            assert run["best_epoch"] == other["best_epoch"]
    assert not list((tmp_path / "resumed").rglob(".tmp-cnnlab-*"))


def test_diverged_and_failed_runs_are_contained(tmp_path, tiny_study, monkeypatch):
    from cnnlab.train import Trainer

    tiny_study["variants"] = {"none": {}}
    # Linear layers on raw 0-255 inputs with a huge step: the weights overflow within an epoch.
    linear = {"activation": "linear"}
    tiny_study["architectures"]["exploding"] = [{"conv": {"filters": 4, **linear}}, "flatten",
                                                {"dense": {"units": 64, **linear}}, {"dense": 10}]
    tiny_study["architectures"]["breaks"] = ["flatten", {"dense": 7}, {"dense": 10}]
    tiny_study["sweep"] = {}
    tiny_study["train"]["optimizer"] = {"name": "sgd", "lr": 100.0, "momentum": 0.99}
    tiny_study["dataset"]["normalize"] = "none"
    del tiny_study["architectures"]["small"]
    fit = Trainer.fit

    def fit_or_break(trainer):  # a failure only training finds (pre-flight passed it)
        if trainer.built.layers[1].output_shape == (7,):
            raise RuntimeError("a fault inside training")
        return fit(trainer)

    monkeypatch.setattr(Trainer, "fit", fit_or_break)
    result = run_study(tiny_study, tmp_path)
    with open_store(tmp_path) as store:
        runs = {r["architecture"]: r for r in store.runs()}
    assert runs["exploding"]["status"] == "diverged" and runs["exploding"]["diverged_epoch"] == 0
    assert "loss became" in runs["exploding"]["error"]
    assert runs["breaks"]["status"] == "failed" and "a fault inside training" in runs["breaks"]["error"]
    assert not result.outcome.ok
    assert result.outcome.statuses == {"failed": 1, "diverged": 1}


def test_a_configuration_that_cannot_train_is_refused_before_anything_trains(tmp_path, tiny_study):
    from cnnlab.errors import ModelError

    tiny_study["variants"] = {"none": {}}
    tiny_study["architectures"]["wrong_classes"] = ["flatten", {"dense": 7}]
    with pytest.raises(ModelError) as error:
        run_study(tiny_study, tmp_path / "out")
    message = str(error.value)
    assert "1 configuration of the study cannot be trained; nothing was trained" in message
    assert "wrong_classes/none" in message and "7 units but the dataset has 10 classes" in message
    assert "small/" not in message  # the configurations that can train are not blamed
    assert not (tmp_path / "out").exists()  # nothing written: no store, no folder


def test_a_split_the_data_cannot_give_is_refused_before_anything_trains(tmp_path, tiny_study):
    from cnnlab.errors import DataError

    tiny_study["dataset"]["split"] = {"train": "all", "val": {"from": "train", "count": 10}}
    with pytest.raises(DataError, match="'all'"):
        run_study(tiny_study, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("restored", [False, True], ids=["last_epoch", "restored_best"])
def test_stored_predictions_are_the_outputs_of_the_stored_weights(tmp_path, tiny_study, restored):
    # The trainer hands over its last evaluations rather than evaluating again: they must belong
    # to the weights the run ends with, also when early stopping restored an earlier epoch.
    import numpy as np

    from cnnlab.explain import load_run

    tiny_study["variants"] = {"none": {}}
    if restored:  # no later epoch beats the first by a whole point of accuracy: epoch 1 is restored
        tiny_study["train"]["early_stopping"] = {"monitor": "val_accuracy", "patience": 10, "min_delta": 1.0}
    assert run_study(tiny_study, tmp_path).outcome.ok
    with open_store(tmp_path) as store:
        record = store.runs()[0]
        if restored:
            assert record["best_epoch"] == 0  # 0-based: the first of 3 epochs
        stored = np.load(store.artifact_path(record["id"], "predictions"))
        run = load_run(store, record["id"])
        for split in ("val", "test"):
            data = run.split_data(split)
            expected = run.probabilities(run.model_input(data.images.numpy())).numpy()
            np.testing.assert_allclose(stored[f"{split}_probabilities"], expected, rtol=1e-4, atol=1e-6)
            assert (stored[f"{split}_labels"] == data.labels.numpy()).all()
