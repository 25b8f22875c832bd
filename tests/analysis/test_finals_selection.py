"""Choosing the finals: top k, one rule each ([val_accuracy, gap]), a constraint, variants that are
never candidates, the retrain's epochs, and what a final trains on."""

from __future__ import annotations

import pytest

from cnnlab.analysis.comparisons import RunResult
from cnnlab.analysis.selection import SelectionRules, final_config, select_best, select_finals, study_choice
from cnnlab.spec.loader import parse_study
from cnnlab.spec.plan import expand
from tests.conftest import TINY_STUDY


def _result(variant: str, val: float, train: float, *, repeat=0, params=1000, seconds=10.0, phase="select", best=1):
    history = [{"val_accuracy": val - 0.1, "train_accuracy": train - 0.1}] * best + [{"val_accuracy": val, "train_accuracy": train}]
    metrics = {"val_accuracy": val, "gap": train - val, "params": float(params), "train_seconds": seconds}
    return RunResult(f"{variant}-{repeat}-{phase}", "small", variant, {}, phase, repeat, None, metrics, history)


RESULTS = [
    _result("bn", 0.74, 0.95, params=5000, seconds=40),      # best on validation, a wide gap
    _result("dropout", 0.72, 0.73, params=1000, seconds=12),  # the smallest gap
    _result("none", 0.70, 0.99, params=1000, seconds=10),
    _result("l2", 0.66, 0.80, params=1000, seconds=11),
]


def _names(selections):
    return [s.configuration for s in selections]


def test_top_k_are_the_k_best_on_the_selection_metric_in_order():
    assert _names(select_finals(RESULTS, SelectionRules("val_accuracy", ("val_accuracy",) * 3))) == [
        "small/bn", "small/dropout", "small/none"]


def test_each_rule_chooses_its_best_not_chosen_before():
    # Study B: the best validation accuracy, then the smallest train-validation gap.
    assert _names(select_finals(RESULTS, SelectionRules("val_accuracy", ("val_accuracy", "gap")))) == [
        "small/bn", "small/dropout"]
    # The gap's best is the one already chosen: the next smallest gap is taken.
    results = [_result("bn", 0.74, 0.75), _result("dropout", 0.72, 0.80), _result("none", 0.70, 0.99)]
    assert _names(select_finals(results, SelectionRules("val_accuracy", ("val_accuracy", "gap")))) == ["small/bn", "small/dropout"]


def test_the_smallest_gap_is_the_one_closest_to_zero_on_either_side():
    # Dropout measured while training can put validation above training: -38 points is no better fit than +2.
    results = [_result("drop", 0.81, 0.43), _result("none", 0.75, 0.77), _result("l2", 0.70, 0.80)]
    assert select_best(results, "gap").configuration == "small/none"


def test_with_finals_the_first_final_is_the_studys_choice():
    rules = SelectionRules("val_accuracy", ("gap",))
    choice, finals = study_choice(RESULTS, rules)
    assert choice.configuration == finals[0].configuration == "small/dropout"
    choice, finals = study_choice(RESULTS, SelectionRules("val_accuracy"))
    assert (choice.configuration, finals) == ("small/bn", [])


def test_a_constraint_leaves_out_configurations_over_it():
    rules = SelectionRules("val_accuracy", ("val_accuracy",), max_params=2000)
    assert _names(select_finals(RESULTS, rules)) == ["small/dropout"]
    rules = SelectionRules("val_accuracy", ("val_accuracy",), max_train_seconds=11.5)
    assert _names(select_finals(RESULTS, rules)) == ["small/none"]
    # Judged on the mean over repeats: 9 and 13 seconds are 11 on average.
    results = RESULTS + [_result("bn", 0.75, 0.9, repeat=1, seconds=9), _result("bn", 0.75, 0.9, repeat=2, seconds=13)]
    results = [r for r in results if not (r.variant == "bn" and r.repeat == 0)]
    assert select_best(results, "val_accuracy", SelectionRules(max_train_seconds=11.0)).configuration == "small/bn"
    assert select_best(results, "val_accuracy", SelectionRules(max_train_seconds=10.9)).configuration == "small/none"


def test_variants_that_are_not_candidates_and_runs_that_are_not_selection_runs_are_never_chosen():
    rules = SelectionRules("val_accuracy", ("val_accuracy",), excluded=frozenset({"bn"}))
    assert _names(select_finals(RESULTS, rules)) == ["small/dropout"]
    folds = [_result("kfold", 0.99, 0.99, phase="kfold")]
    assert select_best(RESULTS + folds, "val_accuracy").configuration == "small/bn"


def test_rules_read_from_the_stored_spec():
    spec = {"evaluate": {"select": "val_loss", "retrain_on": "train", "finals": 2, "final_epochs": 20,
                         "constraint": {"max_params": 10}}, "variants": {"a": {"candidate": False}, "b": {}}}
    rules = SelectionRules.from_spec(spec)
    assert (rules.metric, rules.finals, rules.final_epochs, rules.max_params, rules.excluded) == (
        "val_loss", ("val_loss", "val_loss"), 20, 10, frozenset({"a"}))
    assert SelectionRules.from_spec({"evaluate": {"retrain_on": "none"}}).finals == ()
    assert SelectionRules.from_spec({"evaluate": {"retrain_on": "train+val", "finals": ["val_accuracy", "gap"]}}).finals == (
        "val_accuracy", "gap")


def test_the_retrain_runs_the_mean_best_epoch_or_the_epochs_the_spec_gives():
    results = [_result("bn", 0.74, 0.95, best=3), _result("bn", 0.75, 0.95, repeat=1, best=5)]
    assert select_best(results, "val_accuracy").epochs == 5  # mean of epochs 4 and 6 (1-based)
    assert select_best(results, "val_accuracy", SelectionRules(final_epochs=20)).epochs == 20
    assert select_best(results, "gap").epochs == 5  # the gap is measured at the validation accuracy's best epoch


def test_a_final_trains_on_train_val_or_on_train_alone_and_measures_test_after_every_epoch():
    study = parse_study({**TINY_STUDY, "evaluate": {"retrain_on": "train+val"}})
    plan = expand(study)
    selection = select_best([_result("dropout", 0.8, 0.9)], "val_accuracy")
    merged = final_config(selection, plan, "train+val", test_curve=True)
    alone = final_config(selection, plan, "train", test_curve=False)
    assert (merged.phase, merged.merge_val, merged.test_curve, merged.evaluate_test) == ("final", True, True, True)
    assert (alone.merge_val, alone.test_curve) == (False, False)
    assert merged.train.epochs == selection.epochs and merged.train.early_stopping is None
    assert merged.run_id != alone.run_id != plan[1].run_id
    # The test curve only measures: a final stored before curves existed is the same run, not retrained.
    assert final_config(selection, plan, "train+val", test_curve=False).run_id == merged.run_id


def test_selection_refuses_a_test_metric():
    with pytest.raises(ValueError, match="validation metric"):
        select_best(RESULTS, "test_accuracy")
