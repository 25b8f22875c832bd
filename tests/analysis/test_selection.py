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
from tests.analysis.stored_runs import run_record


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


# --- the metric's direction, ties, the epoch rule and the stored study's best run --------------


def _loss_run(repeat: int, val_loss: float, losses, *, variant="none", fold=None) -> RunResult:
    history = [{"lr": 0.1, "val_loss": v} for v in losses]
    return RunResult(f"{variant}-{repeat}-{fold}", "small", variant, {}, "select", repeat, fold, {"val_loss": val_loss},
                     history)


def test_a_loss_is_selected_lowest_first_and_its_best_epoch_is_its_lowest():
    runs = [_loss_run(r, 0.5, [0.9, 0.5, 0.6], variant="high") for r in range(2)]
    runs += [_loss_run(r, 0.3, [0.9, 0.3, 0.4, 0.35], variant="low") for r in range(2)]
    selection = select_best(runs, "val_loss")
    assert selection.configuration == "small/low" and selection.interval.mean == pytest.approx(0.3)
    assert selection.epochs == 2  # the lowest validation loss, at epoch 2 (1-based)


def test_equal_means_choose_the_configuration_listed_first():
    first = [_run(0, 0.9, variant="l2"), _run(1, 0.8, variant="l2")]
    second = [_run(0, 0.8), _run(1, 0.9)]
    assert select_best(first + second).configuration == "small/l2"
    assert select_best(second + first).configuration == "small/none"


def test_the_epoch_budget_is_the_rounded_mean_best_epoch_and_at_least_one():
    # The best epoch is the first of equal ones: 0.8 at epochs 2 and 3 picks epoch 2.
    tied = [_run(0, 0.9, accuracies=[0.5, 0.8, 0.8])]
    assert select_best(tied).epochs == 2
    assert select_best([_run(0, 0.9, accuracies=[0.9, 0.8, 0.7])]).epochs == 1
    mixed = [_run(0, 0.9, accuracies=[0.5, 0.9, 0.8]), _run(1, 0.9, accuracies=[0.5, 0.6, 0.9]),
             _run(2, 0.9, accuracies=[0.5, 0.6, 0.9])]
    assert select_best(mixed).epochs == 3  # best epochs 2, 3, 3: mean 2.67
    # Without the metric in its history a run counts its last epoch as its best.
    blind = RunResult("b", "small", "none", {}, "select", 0, None, {"val_accuracy": 0.9}, [{"lr": 0.1}] * 4)
    assert select_best([blind]).epochs == 4


def test_the_retrain_copies_repeat_zero_of_the_selected_configuration():
    plan = _plan({"name": "plateau", "patience": 1})
    runs = [_run(r, 0.5) for r in range(3)] + [_run(r, 0.9, variant="l2") for r in range(3)]
    final = final_config(select_best(runs), plan)
    (repeat_zero,) = [c for c in plan if c.variant == "l2" and c.repeat == 0]
    assert (final.variant, final.repeat, final.seed, final.phase) == ("l2", 0, repeat_zero.seed, "final")


def test_the_retrain_of_folds_copies_fold_zero_and_keeps_the_fold_count():
    study = parse_study({
        "name": "tiny", "seed": 0, "dataset": {"name": "digits"},
        "architectures": {"small": [{"conv": {"filters": 4, "kernel": 3}}, "flatten", {"dense": 10}]},
        "variants": {"none": {}}, "train": {"optimizer": {"name": "adam", "lr": 0.1}, "epochs": 5},
        "repeats": 2, "evaluate": {"kfold": 3, "retrain_on": "train+val"},
    })
    plan = expand(study)
    runs = [_run(r, 0.9) for r in range(2)]
    final = final_config(select_best(runs), plan)
    (fold_zero,) = [c for c in plan if c.repeat == 0 and c.fold == 0]
    assert (final.fold, final.kfold, final.seed) == (None, 3, fold_zero.seed)


def test_the_rate_path_in_words_names_single_epochs_and_spans():
    def words(values):
        return lr_path_words({"optimizer": {"lr": 0.1}, "schedule": {"name": "path", "values": values}})

    assert words([0.1, 0.05, 0.05]).endswith(": 0.1 for epoch 1, 0.05 for epochs 2-3")
    assert words([0.1, 0.1, 0.05]).endswith(": 0.1 for epochs 1-2, 0.05 for epoch 3")
    assert words([0.1, 0.05, 0.01]).endswith(": 0.1 for epoch 1, 0.05 for epoch 2, 0.01 for epoch 3")


def test_a_single_repeat_is_its_own_best_run():
    runs = [_run(0, 0.9)]
    assert best_run_id(runs, select_best(runs)) == "none-select-0"


def test_equal_scores_rank_by_repeat_then_fold():
    # Two folds of one repeat score alike: the lower middle of the two is fold 0, wherever it is listed.
    folds = [_loss_run(0, 0.3, [0.3], fold=1), _loss_run(0, 0.3, [0.3], fold=0)]
    assert best_run_id(folds, select_best(folds, "val_loss")) == "none-0-0"
    seeds = [_run(1, 0.9), _run(0, 0.9)]
    assert best_run_id(seeds, select_best(seeds)) == "none-select-0"


class _Store:
    """The Results protocol over hand-made records."""

    def __init__(self, spec: dict, runs: list, epochs: dict):
        self.spec, self._runs, self._epochs = spec, runs, epochs

    def study(self, name=None):
        from cnnlab.records import StudyRecord

        return StudyRecord("s", "", self.spec, None, None, "", "", 0.0)

    def runs(self, study=None, status=None):
        return [r for r in self._runs if status is None or r.status == status]

    def epochs(self, run_id):
        return self._epochs.get(run_id, [])


def _record(run_id: str, repeat: int, **metrics):
    return run_record(id=run_id, architecture="small", repeat=repeat, **metrics)


def test_the_best_run_of_a_stored_study_uses_the_metric_it_selects_with():
    # By accuracy the median repeat is r1; by loss (lower is better) it is r2.
    runs = [_record("r0", 0, val_accuracy=0.80, val_loss=0.30), _record("r1", 1, val_accuracy=0.85, val_loss=0.40),
            _record("r2", 2, val_accuracy=0.90, val_loss=0.35)]
    from cnnlab.analysis.selection import study_best_run_id

    assert study_best_run_id(_Store({}, runs, {})) == "r1"
    assert study_best_run_id(_Store({"evaluate": {"select": "val_loss"}}, runs, {})) == "r2"
    # A metric that is not a validation one is never selected on: validation accuracy stands in.
    assert study_best_run_id(_Store({"evaluate": {"select": "test_accuracy"}}, runs, {})) == "r1"
