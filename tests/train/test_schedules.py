"""Learning-rate schedules and early stopping, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from cnnlab.spec.training import EarlyStopping, Schedule
from cnnlab.train.early_stopping import EarlyStopper
from cnnlab.train.schedules import build_schedule


def test_step_halves_every_five_epochs_as_study_d():
    schedule = build_schedule(Schedule(name="step", every=5, factor=0.5), 0.01, 15)
    assert [schedule.rate(e) for e in (0, 4, 5, 9, 10, 14)] == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]


def test_cosine_goes_from_base_to_min_with_warmup_first():
    schedule = build_schedule(Schedule(name="cosine", warmup_epochs=2, min_lr=0.001), 0.1, 12)
    assert schedule.rate(0) == pytest.approx(0.1 / 3) and schedule.rate(1) == pytest.approx(0.2 / 3)
    assert schedule.rate(2) == pytest.approx(0.1)
    assert schedule.rate(7) == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert schedule.rate(12) == pytest.approx(0.001)


def test_plateau_cuts_after_patience_epochs_without_improvement_and_survives_a_checkpoint():
    schedule = build_schedule(Schedule(name="plateau", patience=2, factor=0.5, monitor="val_loss", min_delta=0.0), 1.0, 20)
    losses = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8]
    rates = []
    for epoch, loss in enumerate(losses):
        rates.append(schedule.rate(epoch))
        schedule.observe(epoch, {"val_loss": loss})
        if epoch == 2:  # a resume in the middle keeps the plateau's memory
            state = schedule.state_dict()
            schedule = build_schedule(Schedule(name="plateau", patience=2, factor=0.5, min_delta=0.0), 1.0, 20)
            schedule.load_state_dict(state)
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]


def test_early_stopping_counts_patience_like_keras():
    stopper = EarlyStopper(EarlyStopping(monitor="val_accuracy", patience=2))
    decisions = [stopper.observe(e, {"val_accuracy": v}) for e, v in enumerate([0.5, 0.6, 0.55, 0.58])]
    assert decisions == [False, False, False, True]
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 3


def test_early_stopping_min_delta_ignores_tiny_gains():
    stopper = EarlyStopper(EarlyStopping(monitor="val_loss", patience=1, min_delta=0.1))
    assert [stopper.observe(e, {"val_loss": v}) for e, v in enumerate([1.0, 0.95, 0.5])] == [False, True, False]


def test_path_replays_its_rates_and_keeps_the_last_past_the_end():
    schedule = build_schedule(Schedule(name="path", values=[0.1, 0.1, 0.05, 0.025]), 0.7, 6)
    assert [schedule.rate(e) for e in range(6)] == [0.1, 0.1, 0.05, 0.025, 0.025, 0.025]
    schedule.observe(0, {"val_loss": 9.0})  # nothing it watches: a train+val retrain has no validation
    assert schedule.rate(1) == 0.1 and schedule.state_dict() == {}


@pytest.mark.parametrize("settings, message", [
    ({"name": "path"}, "needs 'values:'"),
    ({"name": "path", "values": []}, "at least 1 item"),
    ({"name": "path", "values": [0.1, 0.0]}, "greater than 0"),
    ({"name": "path", "values": [0.1, float("inf")]}, "finite"),
    ({"name": "step", "values": [0.1]}, "for schedule 'path' only"),
    ({"name": "path", "values": [0.1], "warmup_epochs": 1}, "drop warmup_epochs"),
])
def test_a_path_without_positive_rates_or_with_other_shaping_is_refused(settings, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        Schedule.model_validate(settings)


@pytest.mark.parametrize("monitor, values", [("val_loss", [1.0, 0.9, 0.9]), ("val_accuracy", [0.5, 0.6, 0.6])])
def test_an_equal_value_is_no_improvement_for_early_stopping_or_plateau(monitor, values):
    """Keras: an improvement must beat the best by more than min_delta; a tie counts as waiting."""
    stopper = EarlyStopper(EarlyStopping(monitor=monitor, patience=1))
    assert [stopper.observe(e, {monitor: v}) for e, v in enumerate(values)] == [False, False, True]
    assert stopper.best_epoch == 1
    plateau = build_schedule(Schedule(name="plateau", patience=1, factor=0.5, monitor=monitor, min_delta=0.0), 1.0, 5)
    for epoch, value in enumerate(values):
        plateau.observe(epoch, {monitor: value})
    assert plateau.rate(3) == 0.5


@pytest.mark.parametrize("monitor, values", [("val_loss", [1.0, 0.95, 0.85]), ("val_accuracy", [0.5, 0.55, 0.65])])
def test_plateau_min_delta_ignores_tiny_gains_in_both_directions(monitor, values):
    plateau = build_schedule(Schedule(name="plateau", patience=1, factor=0.5, monitor=monitor, min_delta=0.1), 1.0, 5)
    rates = []
    for epoch, value in enumerate(values):
        rates.append(plateau.rate(epoch))
        plateau.observe(epoch, {monitor: value})
    # 0.05 better than the best is within min_delta (one cut); 0.15 better is an improvement.
    assert rates == [1.0, 1.0, 0.5] and plateau.state["best"] == values[2]


def test_a_missing_or_non_finite_value_is_neither_an_improvement_nor_a_wait():
    """A diverged epoch (NaN) or a metric the run does not have must not become the best."""
    stopper = EarlyStopper(EarlyStopping(monitor="val_loss", patience=1))
    assert stopper.observe(0, {"val_loss": 1.0}) is False
    assert stopper.observe(1, {"val_accuracy": 0.5}) is False and stopper.wait == 0  # not watched
    assert stopper.observe(2, {"val_loss": float("nan")}) is True  # counts as no improvement
    assert stopper.best == 1.0 and stopper.best_epoch == 0
    plateau = build_schedule(Schedule(name="plateau", patience=1, factor=0.5, monitor="val_loss", min_delta=0.0), 1.0, 5)
    plateau.observe(0, {"val_loss": float("nan")})
    plateau.observe(1, {"val_accuracy": 0.5})
    assert plateau.state["best"] is None and plateau.state["wait"] == 0
    plateau.observe(2, {"val_loss": 2.0})
    assert plateau.state["best"] == 2.0


def test_early_stopping_never_stops_at_the_first_epoch_as_keras():
    """Keras stops only from the second epoch on, even when the first is already no improvement."""
    stopper = EarlyStopper(EarlyStopping(monitor="val_loss", patience=1))
    assert stopper.observe(0, {"val_loss": float("inf")}) is False
    assert stopper.observe(1, {"val_loss": float("inf")}) is True


def test_a_plateau_cut_during_warm_up_applies_from_the_first_epoch_after_it():
    schedule = build_schedule(Schedule(name="plateau", warmup_epochs=2, patience=1, factor=0.5, monitor="val_loss",
                                       min_delta=0.0), 0.3, 6)
    rates = []
    for epoch, loss in enumerate([1.0, 1.0, 0.5]):
        rates.append(schedule.rate(epoch))
        schedule.observe(epoch, {"val_loss": loss})
    assert rates == pytest.approx([0.1, 0.2, 0.15])
