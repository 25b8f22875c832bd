"""The findings' sentences on hand-made results (no training): which finding appears when, in
which order, with which numbers, and how sure each says it is."""

from __future__ import annotations

from cnnlab.analysis.comparisons import RunResult, compare
from cnnlab.analysis.findings import (
    comparison_finding, final_finding, overfitting_findings, selection_finding, study_findings,
)
from cnnlab.analysis.selection import Selection, select_best


def _result(variant: str, repeat: int, value: float, *, metric: str = "val_accuracy", architecture: str = "net",
            sweep=None, fold=None, kfold: int = 0, **metrics) -> RunResult:
    sizes = {"train_size": 400, "val_size": 100} if fold is not None else {}
    return RunResult(f"{architecture}-{variant}-{repeat}-{fold}", architecture, variant, sweep or {}, "select",
                     repeat, fold, {metric: value, **metrics}, [], kfold=kfold, **sizes)


def _seeds(variant: str, values, **kwargs) -> list[RunResult]:
    return [_result(variant, repeat, value, **kwargs) for repeat, value in enumerate(values)]


BASE = [0.90, 0.91, 0.89, 0.92, 0.90]
NOISE = [0.004, -0.004, 0.006, -0.006, 0.0]


def _shifted(variant: str, shift: float, **kwargs) -> list[RunResult]:
    return _seeds(variant, [b + shift + e for b, e in zip(BASE, NOISE)], **kwargs)


def _study() -> list[RunResult]:
    """Against 'none' over 5 seeds: 'a' +0.9 points (p 0.017, but Holm over four makes it 0.051),
    'd' +3 points (clear), 'y' +0.1 and 'z' +0 (nowhere near)."""
    results = _seeds("none", BASE)
    for name, shift in (("a", 0.009), ("d", 0.03), ("y", 0.001), ("z", 0.0)):
        results += _shifted(name, shift)
    return results


# --- comparisons ------------------------------------------------------------------------------


def test_a_clear_gain_says_raised_by_how_much_with_both_intervals_and_the_share_of_wins():
    d = next(c for c in compare(_study()) if c.variant_name == "d")
    finding = comparison_finding(d)
    assert finding.kind == "comparison" and finding.clear is True
    assert finding.text == ("On net, 'd' raised validation accuracy by 3.0 points against 'none' (95% CI 2.4 to 3.6 "
                            "unadjusted, 2.0 to 4.0 Holm-adjusted, p = 0.00077 Holm-adjusted, 5 paired seeds; it did "
                            "better on 100% of the seeds).")


def test_a_clear_loss_says_lowered():
    (c,) = compare(_seeds("none", BASE) + _shifted("a", -0.03))
    finding = comparison_finding(c)
    assert finding.clear is True
    assert finding.text.startswith("On net, 'a' lowered validation accuracy by 3.0 points against 'none' (95% CI ")
    assert finding.text.endswith("it did better on 0% of the seeds).")


def test_a_sweep_point_is_named_in_the_subject():
    sweep = {"conv.kernel": 3, "dense": 32}
    (c,) = compare(_seeds("none", BASE, sweep=sweep) + _shifted("a", 0.03, sweep=sweep))
    assert comparison_finding(c).text.startswith("On net, conv.kernel=3, dense=32, 'a' raised validation accuracy")


def test_one_seed_gives_no_interval_and_no_conclusion():
    (c,) = compare(_seeds("none", [0.90]) + _seeds("a", [0.91]))
    finding = comparison_finding(c)
    assert finding.clear is None
    assert finding.text == ("On net, 'a' against 'none': +1.0 points in validation accuracy, one seed: no interval, "
                            "no conclusion.")
    (worse,) = compare(_seeds("none", [0.90]) + _seeds("a", [0.88]))
    assert comparison_finding(worse).text.startswith("On net, 'a' against 'none': -2.0 points in validation accuracy")


def test_two_seeds_already_give_an_interval():
    (c,) = compare(_seeds("none", [0.90, 0.91]) + _seeds("a", [0.92, 0.94]))
    finding = comparison_finding(c)
    assert finding.clear is False and "one seed" not in finding.text
    assert "(95% CI -3.9 to 8.9 unadjusted" in finding.text and "2 paired seeds" in finding.text


def test_no_clear_difference_names_the_observed_difference_and_the_seeds_it_would_take():
    y = next(c for c in compare(_study()) if c.variant_name == "y")
    finding = comparison_finding(y)
    assert finding.clear is False
    assert finding.text.startswith("On net, 'y' made no clear difference to validation accuracy against 'none': "
                                   "+0.1 points (95% CI -0.5 to 0.7 unadjusted, -0.6 to 0.8 Holm-adjusted, p = 1 "
                                   "Holm-adjusted, 5 paired seeds; it did better on 60% of the seeds).")
    assert finding.text.endswith("; finding the observed 0.1 points that often would take about "
                                 f"{y.repeats_needed} seeds.")


def test_when_the_seeds_at_hand_would_already_do_no_more_are_asked_for():
    # Holm over four comparisons made 'a' unclear, yet 5 seeds find +0.9 points 80% of the time.
    a = next(c for c in compare(_study()) if c.variant_name == "a")
    assert a.better is None and a.repeats_needed == 5 == a.repeats
    assert comparison_finding(a).text.endswith(
        "These 5 paired seeds would find a true difference of 0.9 points with 80% probability (5% level, before Holm).")


def test_a_zero_difference_asks_for_no_repeats():
    (c,) = compare(_seeds("none", [0.90, 0.90, 0.90]) + _seeds("a", [0.91, 0.89, 0.90]))
    assert c.test.difference.mean == 0.0
    text = comparison_finding(c).text
    assert text.endswith("would find a true difference of 3.3 points with 80% probability (5% level, before Holm).")
    assert "observed" not in text


def test_a_difference_no_number_of_seeds_would_find_says_so():
    (c,) = compare(_seeds("none", [0.90, 0.90, 0.90]) + _seeds("a", [0.96, 0.85, 0.90]))
    assert c.repeats_needed is None
    assert comparison_finding(c).text.endswith(
        "; no number of seeds up to 1000 would find the observed 0.3 points that often.")


FOLD_BASE = [0.90, 0.88, 0.91]


def _one_repeat_of_folds(shift: float) -> list[RunResult]:
    results = [_result("none", 0, b, fold=f, kfold=3) for f, b in enumerate(FOLD_BASE)]
    return results + [_result("a", 0, b + shift + e, fold=f, kfold=3)
                      for f, (b, e) in enumerate(zip(FOLD_BASE, [0.01, -0.01, 0.0]))]


def test_one_repeat_of_folds_asks_for_the_repeats_it_would_take():
    (c,) = compare(_one_repeat_of_folds(0.03))
    assert (c.repeats, c.repeats_needed, c.better) == (1, 2, None)
    assert comparison_finding(c).text.endswith(
        "; finding the observed 3.0 points that often would take about 2 repeats of the folds.")


def test_folds_whose_shared_training_data_leaves_too_much_spread_say_so():
    (c,) = compare(_one_repeat_of_folds(0.01))
    assert c.repeats_needed is None
    assert comparison_finding(c).text.endswith(
        "; no number of repeats of the folds up to 1000 would find the observed 1.0 points that often (more repeats "
        "cannot remove the spread the folds' shared training data leaves).")


def test_pairs_that_all_moved_alike_are_decided_by_the_sign_test():
    (c,) = compare(_seeds("none", [0.90] * 3) + _seeds("a", [0.92] * 3))
    assert comparison_finding(c).text == (
        "On net, 'a' made no clear difference to validation accuracy against 'none': +2.0 points (every pair differed "
        "by the same amount, sign test, p = 0.25 Holm-adjusted, 3 paired seeds; it did better on 100% of the seeds).")


def test_a_loss_comparison_shows_both_intervals_whatever_the_spread():
    # Differences 1, 2, 3: a standard deviation of exactly 1 is a spread like any other.
    (c,) = compare(_seeds("none", [0.5] * 3, metric="val_loss") + _seeds("a", [1.5, 2.5, 3.5], metric="val_loss"),
                   "val_loss")
    assert c.test.difference.std == 1.0
    assert "(95% CI -0.484 to 4.484 unadjusted, -0.484 to 4.484 Holm-adjusted, p = 0.074" in comparison_finding(c).text


# --- the selection and the final retrain ------------------------------------------------------


def test_the_selection_names_the_configuration_its_mean_and_interval():
    selection = select_best(_seeds("none", [0.90, 0.91, 0.92]) + _seeds("a", [0.80, 0.81, 0.82]))
    finding = selection_finding(selection)
    assert finding.kind == "selection" and finding.clear is None
    assert finding.text == ("Best on validation accuracy: net/none, 91.0% (95% CI 88.5 to 93.5, 3 runs); chosen "
                            "without looking at any test number.")
    one = selection_finding(select_best(_seeds("none", [0.9012])))
    assert one.text == ("Best on validation accuracy: net/none, 90.1% (one run: no interval); chosen without looking "
                        "at any test number.")
    loss = selection_finding(select_best(_seeds("none", [0.31, 0.3], metric="val_loss"), "val_loss"))
    assert loss.text.startswith("Best on validation loss: net/none, 0.305 (95% CI ")


def _final(test_accuracy) -> RunResult:
    metrics = {} if test_accuracy is None else {"test_accuracy": test_accuracy}
    return RunResult("final", "net", "none", {}, "final", 0, None, metrics, [])


def _selection(lr_path=None) -> Selection:
    selection = select_best(_seeds("none", [0.90, 0.91, 0.92]))
    selection.epochs, selection.lr_path = 4, lr_path
    return selection


def test_the_final_retrain_reports_its_test_accuracy_once_and_its_rate():
    finding = final_finding(_selection(), _final(0.9512))
    assert finding.kind == "final"
    assert finding.text == ("net/none retrained on train+val for 4 epochs at a constant learning rate: test accuracy "
                            "95.1% (measured once, on the test split no choice saw).")
    path = final_finding(_selection([0.1, 0.1, 0.05, 0.05]), _final(0.9512))
    assert path.text.startswith("net/none retrained on train+val for 4 epochs at the per-epoch median learning rate "
                                "of the selected runs: test accuracy 95.1%")


def test_a_final_retrain_without_a_test_split_is_a_note():
    finding = final_finding(_selection(), _final(None))
    assert (finding.kind, finding.text) == ("note", "The final retrain has no test split to measure.")


# --- all findings, in order -------------------------------------------------------------------


def test_the_choice_and_its_test_come_first():
    results = _seeds("none", [0.90, 0.91, 0.92])
    selection = select_best(results)
    kinds = [f.kind for f in study_findings(results, [], selection, _final(0.95))]
    assert kinds == ["selection", "final"]
    assert [f.kind for f in study_findings(results, [], selection, None)] == ["selection"]
    assert study_findings(results, [], None, _final(0.95)) == []  # no retrain without a choice


def test_clear_effects_first_then_the_rest_by_holm_p_then_single_seeds():
    results = _study()
    # Another architecture with only two seeds, and a third with one.
    results += _seeds("none", [0.90, 0.91], architecture="two") + _seeds("a", [0.92, 0.94], architecture="two")
    results += _seeds("none", [0.90], architecture="one") + _seeds("a", [0.91], architecture="one")
    comparisons = compare(results)
    assert [(c.architecture, c.variant_name) for c in comparisons] == [
        ("net", "a"), ("net", "d"), ("net", "y"), ("net", "z"), ("two", "a"), ("one", "a")]
    texts = [f.text for f in study_findings(results, comparisons, None, None)]
    assert [t.split(":")[0].split(" by ")[0] for t in texts] == [
        "On net, 'd' raised validation accuracy",
        "On net, 'a' made no clear difference to validation accuracy against 'none'",
        "On two, 'a' made no clear difference to validation accuracy against 'none'",
        "On net, 'y' made no clear difference to validation accuracy against 'none'",
        "On net, 'z' made no clear difference to validation accuracy against 'none'",
        "On one, 'a' against 'none'",
    ]


def test_only_clear_gap_effects_are_worth_a_sentence():
    results = _seeds("none", BASE, gap=0.05)
    results += _seeds("wide", BASE, gap=0.05)  # no change in the gap, nor in accuracy
    results += [_result("narrow", r, v, gap=0.05 - 0.03 + e) for r, (v, e) in enumerate(zip(BASE, NOISE))]
    comparisons = compare(results) + compare(results, "gap")
    assert [(c.metric, c.variant_name, c.better) for c in comparisons] == [
        ("val_accuracy", "wide", None), ("val_accuracy", "narrow", None), ("gap", "wide", None),
        ("gap", "narrow", True)]
    texts = [f.text for f in study_findings(results, comparisons, None, None)]
    assert [t.split(" against")[0] for t in texts] == [
        "On net, 'narrow' lowered the train-validation gap by 3.0 points",
        "On net, 'wide' made no clear difference to validation accuracy",
        "On net, 'narrow' made no clear difference to validation accuracy",
    ]


# --- overfitting ------------------------------------------------------------------------------


def _curves(variant: str, train_loss, val_loss, train_acc, val_acc, repeat: int = 0) -> RunResult:
    history = [{"train_loss": tl, "val_loss": vl, "train_accuracy": ta, "val_accuracy": va}
               for tl, vl, ta, va in zip(train_loss, val_loss, train_acc, val_acc)]
    return RunResult(f"{variant}{repeat}", "net", variant, {}, "select", repeat, None, {}, history)


def test_one_overfitting_run_is_not_called_a_mean():
    run = _curves("wide", [1.0, 0.6, 0.7, 0.3], [0.9, 0.5, 0.5, 0.6], [0.5, 0.8, 0.9, 0.99], [0.5, 0.7, 0.7, 0.68])
    (finding,) = overfitting_findings([run])
    # Best validation accuracy is tied at epochs 2 and 3: the first is named. Only the last epoch's
    # losses count: at epoch 3 validation loss had not risen yet, nor training loss fallen.
    assert finding.text == ("net/wide overfits: validation loss rose from 0.5 (epoch 2) to 0.6 while training loss fell "
                            "from 0.6 to 0.3; best validation accuracy at epoch 2 of 4, gap there 10.0 points.")


def test_a_rise_of_exactly_five_percent_or_a_training_loss_that_only_held_is_not_overfitting():
    exactly = _curves("exact", [1.0, 0.6, 0.3], [0.9, 0.5, 0.525], [0.5, 0.8, 0.9], [0.5, 0.7, 0.72])
    held = _curves("held", [1.0, 0.6, 0.6], [0.9, 0.5, 0.6], [0.5, 0.8, 0.9], [0.5, 0.7, 0.72])
    (finding,) = overfitting_findings([exactly, held])
    assert finding.text.startswith("No overfitting seen (validation loss did not rise while training loss fell) in: "
                                   "net/exact (best validation accuracy at epoch 3 of 3")
    assert "; net/held (best validation accuracy at epoch 3 of 3, gap there 18.0 points)." in finding.text


def test_a_configuration_without_validation_curves_does_not_hide_the_next():
    blind = RunResult("b", "net", "blind", {}, "select", 0, None, {}, [{"train_loss": 0.5, "train_accuracy": 0.8}])
    seen = _curves("seen", [1.0, 0.6], [0.9, 0.5], [0.5, 0.8], [0.5, 0.7])
    (finding,) = overfitting_findings([blind, seen])
    assert finding.text == ("No overfitting seen (validation loss did not rise while training loss fell) in: "
                            "net/seen (best validation accuracy at epoch 2 of 2, gap there 10.0 points).")


def test_a_history_with_validation_accuracy_but_no_validation_loss_is_skipped_not_a_crash():
    partial = RunResult("p", "net", "partial", {}, "select", 0, None, {},
                        [{"train_loss": 0.5, "train_accuracy": 0.8, "val_accuracy": 0.7}])
    seen = _curves("seen", [1.0, 0.6], [0.9, 0.5], [0.5, 0.8], [0.5, 0.7])
    (finding,) = overfitting_findings([partial, seen])
    assert "net/seen" in finding.text and "net/partial" not in finding.text
