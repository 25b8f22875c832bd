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


def test_the_final_retrain_follows_the_selected_runs_median_learning_rate(tmp_path, tiny_study):
    # A plateau schedule on validation loss: with no later epoch 10 lower than the first, it halves the
    # rate after every epoch from the second on. The train+val retrain has no validation loss to watch; it must replay the
    # rate path of the runs it was selected from (their per-epoch median), not train at a constant rate.
    from statistics import median

    from cnnlab.analysis import analyze, lr_path_words
    from cnnlab.report import write_report

    tiny_study["train"].update(epochs=4, schedule={"name": "plateau", "monitor": "val_loss", "patience": 1,
                                                   "factor": 0.5, "min_delta": 10.0})
    tiny_study["repeats"] = 2
    tiny_study["evaluate"] = {"retrain_on": "train+val"}
    assert run_study(tiny_study, tmp_path).outcome.statuses == {"done": 5}
    with open_store(tmp_path) as store:
        selection = analyze(store).selection
        histories = [store.epochs(run.run_id) for run in selection.runs]
        (final,) = [run for run in store.runs() if run.phase == "final"]
        final_rates = [epoch["lr"] for epoch in store.epochs(final.id)]
    assert [e["lr"] for e in histories[0]] == pytest.approx([0.01, 0.01, 0.005, 0.0025])  # the fixture decays
    best_epochs = [max(range(len(h)), key=lambda e: (h[e]["val_accuracy"], -e)) + 1 for h in histories]
    assert final.epochs_done == len(final_rates) == selection.epochs == round(sum(best_epochs) / len(best_epochs))
    assert selection.epochs >= 3, "the retrain is too short to see the rate change"
    expected = [median(h[e]["lr"] for h in histories if e < len(h)) for e in range(selection.epochs)]
    assert final_rates == pytest.approx(expected)
    assert final.config["train"]["schedule"]["name"] == "path"
    # The report says what the retrain did.
    text = write_report(tmp_path).read_text()
    assert "The final retrain trained on train+val for" in text
    assert lr_path_words(final.config["train"]).split(": ")[0] in text
