"""Comparisons and their sentences on hand-made results (no training): intervals that agree with
the verdict, folds counted as folds with the corrected resampled t, both configurations named
across architectures, the probability of improvement and the power of a "no clear difference"."""

from __future__ import annotations


import pytest
from scipy import stats

from cnnlab.analysis.comparisons import (
    RunResult,
    compare,
    comparison_cells,
    comparison_dict,
    fold_correction,
    format_comparisons,
    run_results,
)
from cnnlab.analysis.findings import comparison_finding, selection_finding
from cnnlab.analysis.selection import select_best
from cnnlab.records import RunRecord, StudyRecord
from tests.analysis.stored_runs import run_record


def _result(variant: str, repeat: int, value: float, *, architecture: str = "net", fold=None, kfold: int = 0,
            stratified=True, train_size=None, val_size=None) -> RunResult:
    return RunResult(f"{architecture}-{variant}-{repeat}-{fold}", architecture, variant, {}, "select", repeat, fold,
                     {"val_accuracy": value}, [], train_size=train_size, val_size=val_size, kfold=kfold,
                     stratified=stratified)


def _seeds(variant: str, values: list[float], **kwargs) -> list[RunResult]:
    return [_result(variant, repeat, value, **kwargs) for repeat, value in enumerate(values)]


BASE = [0.90, 0.91, 0.89, 0.92, 0.90]


def _disagreeing_study() -> list[RunResult]:
    """One variant far better than the baseline, three a little better: unadjusted p near
    0.02-0.04, so their plain intervals exclude zero, but Holm over four comparisons makes them
    unclear (the smallest of the three is multiplied by 3)."""
    noise = [0.004, -0.004, 0.006, -0.006, 0.0]
    results = _seeds("none", BASE)
    for name, mean in (("a", 0.0086), ("b", 0.0076), ("c", 0.0069), ("d", 0.03)):
        results += _seeds(name, [b + mean + e for b, e in zip(BASE, noise)])
    return results


def test_the_holm_adjusted_interval_agrees_with_every_verdict():
    comparisons = compare(_disagreeing_study())
    assert len(comparisons) == 4
    unclear = [c for c in comparisons if c.better is None]
    assert [c.variant_name for c in comparisons if c.better] == ["d"] and len(unclear) == 3
    # The case of the issue: the unadjusted interval excludes zero, yet Holm says unclear.
    assert any(c.test.difference.excludes_zero() for c in unclear)
    for c in comparisons:
        assert c.adjusted.excludes_zero() == (c.better is not None), c.variant
        assert c.adjusted.low <= c.test.difference.low and c.adjusted.high >= c.test.difference.high
    table = format_comparisons(comparisons, "val_accuracy")
    assert "95% CI (unadjusted)" in table and "95% CI (Holm-adjusted)" in table and "P(better)" in table
    for c in unclear:
        text = comparison_finding(c).text
        assert "unadjusted" in text and "Holm-adjusted" in text and "no clear difference" in text


def test_probability_of_improvement_in_cells_and_json():
    results = _seeds("none", BASE) + _seeds("a", [0.91, 0.90, 0.89, 0.95, 0.93])  # won 3, lost 1, tied 1
    (c,) = compare(results)
    assert c.probability == pytest.approx(3.5 / 5)
    assert comparison_cells(c)[7] == "0.70"
    row = comparison_dict(c)
    assert row["probability_of_improvement"] == pytest.approx(0.7)
    assert row["p"] == pytest.approx(stats.ttest_rel([0.91, 0.90, 0.89, 0.95, 0.93], BASE).pvalue)
    assert row["holm_ci_low"] is not None and row["method"] == "t"


def test_a_no_clear_difference_says_what_the_seeds_could_have_found():
    results = _seeds("none", BASE) + _seeds("a", [0.905, 0.905, 0.895, 0.915, 0.905])
    (c,) = compare(results)
    assert c.better is None and c.detectable is not None
    text = comparison_finding(c).text
    assert "5 paired seeds" in text
    assert f"would find a true difference of {100 * c.detectable:.1f} points with 80% probability" in text
    assert c.repeats_needed is not None and c.repeats_needed > 5
    assert f"would take about {c.repeats_needed} seeds" in text


def _folds(variant: str, values: list[float], k: int, stratified=True, sizes=True) -> list[RunResult]:
    out = []
    for i, value in enumerate(values):
        repeat, fold = divmod(i, k)
        out.append(_result(variant, repeat, value, fold=fold, kfold=k, stratified=stratified,
                           train_size=400 if sizes else None, val_size=100 if sizes else None))
    return out


FOLD_BASE = [0.90, 0.88, 0.91, 0.89, 0.90, 0.91, 0.89, 0.90, 0.88, 0.92]


def test_folds_use_the_corrected_resampled_t_and_say_folds_and_repeats():
    shifted = [b + d for b, d in zip(FOLD_BASE, [0.01, 0.03, 0.02, 0.02, 0.01, 0.03, 0.02, 0.02, 0.01, 0.03])]
    (c,) = compare(_folds("none", FOLD_BASE, 5) + _folds("a", shifted, 5))
    assert (c.n, c.folds, c.repeats) == (10, 5, 2)
    assert c.test.method == "corrected resampled t" and (c.test.n_train, c.test.n_test) == (400, 100)
    # The worked example of test_statistics: differences 1 3 2 2 1 3 2 2 1 3 (points) give t = 4.140393.
    assert c.test.t == pytest.approx(4.140393, rel=1e-5)
    plain = stats.ttest_rel(shifted, FOLD_BASE)
    assert c.test.p > plain.pvalue
    text = comparison_finding(c).text
    assert "5 stratified folds x 2 repeats" in text and "seeds" not in text
    unstratified = compare(_folds("none", FOLD_BASE, 5, stratified=False) + _folds("a", shifted, 5, stratified=False))
    text = comparison_finding(unstratified[0]).text
    assert "5 folds x 2 repeats" in text and "stratified" not in text


def test_fold_correction_without_split_sizes_falls_back_to_the_kfold_ratio():
    assert fold_correction(_folds("none", FOLD_BASE, 5, sizes=False)) == {"n_train": 4.0, "n_test": 1.0}
    assert fold_correction(_folds("none", FOLD_BASE, 5)) == {"n_train": 400, "n_test": 100}
    assert fold_correction(_seeds("none", BASE)) == {}


def test_selection_over_folds_names_folds_and_uses_the_corrected_interval():
    selection = select_best(_folds("none", FOLD_BASE, 5))
    assert selection.interval.method == "corrected resampled t"
    assert "5 stratified folds x 2 repeats" in selection_finding(selection).text


def test_a_cross_architecture_pair_names_both_configurations():
    results = _seeds("none", BASE, architecture="small") + _seeds("none", [v + 0.001 for v in BASE], architecture="big")
    comparisons = compare(results, pairs=[("small/none", "big/none")])
    named = [c for c in comparisons if (c.baseline, c.variant) == ("small/none", "big/none")]
    assert len(named) == 1 and not named[0].same_group
    text = comparison_finding(named[0]).text
    assert "'big/none'" in text and "'small/none'" in text and not text.startswith("On ")


class _Store:
    """The Results protocol over hand-made records."""

    def __init__(self, runs: list[RunRecord]):
        self._runs = runs

    def study(self, name=None) -> StudyRecord:
        return StudyRecord("s", "", {}, None, None, "", "", 0.0)

    def runs(self, study=None, status=None) -> list[RunRecord]:
        return [r for r in self._runs if status is None or r.status == status]

    def epochs(self, run_id):
        return []


def _record(**changes) -> RunRecord:
    return run_record(**{"val_accuracy": 0.9, **changes})


def test_run_results_read_split_sizes_kfold_and_stratify_from_the_record():
    config = {"kfold": 5, "dataset": {"split": {"stratify": False}}}
    (folded,) = run_results(_Store([_record(fold=2, split_sizes={"train": 400, "val": 100, "test": 50},
                                            config=config)]), "s")
    assert (folded.train_size, folded.val_size, folded.kfold, folded.stratified) == (400, 100, 5, False)
    (bare,) = run_results(_Store([_record()]), "s")  # stored without sizes or config: nothing guessed
    assert (bare.train_size, bare.val_size, bare.kfold, bare.stratified) == (None, None, 0, None)


def test_a_kfold_study_end_to_end_through_compare_and_the_report(tmp_path, tiny_study, capsys):
    """Real folds: split sizes from the store drive the correction; nothing says seeds or
    'stratified' (the split is not); the report's cross-validation section agrees."""
    import json

    from cnnlab.analysis.study import analyze
    from cnnlab.api import open_store, run_study
    from cnnlab.cli import main
    from cnnlab.report.data import gather
    from cnnlab.report.statistics import cross_validation

    tiny_study["evaluate"] = {"kfold": 3}
    tiny_study["dataset"]["split"]["stratify"] = False
    tiny_study["train"]["epochs"] = 1
    run_study(tiny_study, tmp_path)
    with open_store(tmp_path) as store:
        analysis = analyze(store)
        data = gather(store)
    (c,) = analysis.comparisons
    assert (c.folds, c.repeats, c.stratified) == (3, 1, False)
    assert c.test.method == "corrected resampled t" and (c.test.n_train, c.test.n_test) == (400, 200)
    texts = " ".join(f.text for f in analysis.findings)
    assert "3 folds x 1 repeat" in texts and "paired seed" not in texts and "stratified" not in texts
    kfold = cross_validation(data)
    paragraph = kfold.blocks[0].text
    assert "3 folds x 1 repeat" in paragraph and "stratified" not in paragraph and "corrected resampled t" in paragraph
    capsys.readouterr()
    assert main(["compare", str(tmp_path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["method"] == "corrected resampled t" and (row["folds"], row["repeats"]) == (3, 1)
    assert -1.0 <= row["ci_low"] <= row["ci_high"] <= 1.0
