"""The selection's retrain (its epoch budget and learning-rate path) and the one meaning of "best run"."""

from __future__ import annotations

import copy

import pytest

from cnnlab.analysis.comparisons import RunResult
from cnnlab.analysis.selection import (
    BEST_RUN_RULE, best_run_id, final_config, lr_path_words, median_lr_path, select_best,
)
from cnnlab.spec.loader import parse_study
from cnnlab.spec.plan import expand


def _run(repeat: int, val_accuracy, rates=(0.1, 0.1, 0.1), *, variant="none", phase="select", accuracies=None):
    accuracies = accuracies or [0.5] * len(rates)
    history = [{"lr": lr, "val_accuracy": a} for lr, a in zip(rates, accuracies)]
    metrics = {} if val_accuracy is None else {"val_accuracy": val_accuracy}
    return RunResult(f"{variant}-{phase}-{repeat}", "small", variant, {}, phase, repeat, None, metrics, history)


def test_the_path_is_the_per_epoch_median_rate_of_the_selected_runs():
    runs = [_run(0, 0.9, (0.1, 0.05, 0.05, 0.025)), _run(1, 0.9, (0.1, 0.1, 0.05)),
            _run(2, 0.9, (0.1, 0.1, 0.1, 0.1, 0.05))]
    # Epoch 4 has two runs (median of 0.025 and 0.1), epoch 5 one, epoch 6 none: the last rate carries on.
    assert median_lr_path(runs, 6) == pytest.approx([0.1, 0.1, 0.05, 0.0625, 0.05, 0.05])
    assert median_lr_path(runs, 2) == pytest.approx([0.1, 0.1])


def test_a_rate_that_never_changed_gives_no_path():
    assert median_lr_path([_run(0, 0.9), _run(1, 0.8)], 3) is None
    assert median_lr_path([_run(0, 0.9, ())], 3) is None  # no recorded rate at all
    # Constant in each run but not across them still names the rates (the median of each epoch).
    assert median_lr_path([_run(0, 0.9, (0.1,) * 3), _run(1, 0.9, (0.2,) * 3), _run(2, 0.9, (0.3,) * 3)], 2) == [0.2, 0.2]


def _plan(schedule):
    study = copy.deepcopy({
        "name": "tiny", "seed": 0, "dataset": {"name": "digits"},
        "architectures": {"small": [{"conv": {"filters": 4, "kernel": 3}}, "flatten", {"dense": 10}]},
        "variants": {"none": {}, "l2": {"l2": 0.01}},
        "train": {"optimizer": {"name": "adam", "lr": 0.1}, "epochs": 5, "schedule": schedule,
                  "early_stopping": {"patience": 2}},
        "repeats": 3, "evaluate": {"retrain_on": "train+val"},
    })
    return expand(parse_study(study))


def test_the_retrain_replays_the_median_path_for_the_mean_best_epoch():
    plan = _plan({"name": "plateau", "patience": 1})
    decaying = (0.1, 0.1, 0.05, 0.05, 0.025)
    runs = [_run(r, 0.9, decaying, accuracies=[0.5, 0.6, 0.7, 0.8, 0.75]) for r in range(3)]
    runs += [_run(r, 0.5, variant="l2") for r in range(3)]
    selection = select_best(runs)
    assert selection.configuration == "small/none" and selection.epochs == 4  # best epoch 4 (1-based) in each
    assert selection.lr_path == pytest.approx([0.1, 0.1, 0.05, 0.05])
    final = final_config(selection, plan)
    assert final.phase == "final" and final.merge_val and final.train.early_stopping is None
    assert final.train.epochs == 4
    assert final.train.schedule.name == "path" and final.train.schedule.values == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert "0.1 for epochs 1-2, 0.05 for epochs 3-4" in lr_path_words(final.train.model_dump(mode="json"))


def test_a_constant_rate_retrains_at_that_rate_with_no_schedule():
    plan = _plan({"name": "plateau", "patience": 1})
    selection = select_best([_run(r, 0.9) for r in range(3)] + [_run(r, 0.5, variant="l2") for r in range(3)])
    final = final_config(selection, plan)
    assert selection.lr_path is None and final.train.schedule.name == "none" and final.train.optimizer.lr == 0.1
    assert lr_path_words(final.train.model_dump(mode="json")) == "a constant learning rate of 0.1"


def test_the_best_run_is_the_median_repeat_not_the_luckiest_seed():
    runs = [_run(0, 0.80), _run(1, 0.95), _run(2, 0.85), _run(0, 0.70, variant="l2"), _run(1, 0.99, variant="l2")]
    selection = select_best(runs)
    assert selection.configuration == "small/none"
    # The luckiest single run (l2 repeat 1, 0.99) and the selected configuration's best seed
    # (repeat 1, 0.95) are both passed over for the median repeat.
    assert best_run_id(runs, selection) == "none-select-2"
    # Even counts take the lower middle (the worse one): the run shown never flatters the configuration.
    two = [_run(0, 0.80), _run(1, 0.90)]
    assert best_run_id(two, select_best(two)) == "none-select-0"
    # A run without the metric ranks worst.
    three = [_run(0, 0.80), _run(1, 0.90), _run(2, None)]
    assert best_run_id(three, select_best(three)) == "none-select-0"


def test_the_best_run_of_a_lower_is_better_metric_is_its_median_too():
    runs = [_run(r, None) for r in range(4)]
    for run, loss in zip(runs, (0.3, 0.1, 0.4, 0.2)):
        run.metrics["val_loss"] = loss
    # Worst first: 0.4, 0.3, 0.2, 0.1 -> the lower middle is 0.3 (repeat 0).
    assert best_run_id(runs, select_best(runs, "val_loss")) == "none-select-0"


def test_the_best_run_is_the_final_retrain_when_there_is_one():
    runs = [_run(0, 0.80), _run(1, 0.95), _run(2, 0.85), _run(0, 0.70, variant="l2"),
            _run(0, None, variant="l2", phase="final"), _run(0, None, phase="final")]
    assert best_run_id(runs, select_best(runs)) == "none-final-0"
    assert best_run_id(runs, None) is None
    assert "explain --best" in BEST_RUN_RULE and "median repeat" in BEST_RUN_RULE
