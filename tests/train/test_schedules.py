"""Learning-rate schedules and early stopping, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from cnnlab.spec.study import EarlyStopping, Schedule
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
