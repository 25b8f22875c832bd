"""What a comparison says: its verdict at every edge (one seed, two seeds, exactly at alpha,
losses where lower is better), the cells of its table row, the note under the table and its
plain-data form, each against numbers from scipy or worked by hand."""

from __future__ import annotations

import dataclasses

import pytest
from scipy import stats

from cnnlab.analysis.comparisons import (
    Comparison,
    RunResult,
    compare,
    comparison_cells,
    comparison_dict,
    comparison_note,
    format_comparisons,
    pairing_words,
)
from cnnlab.analysis.findings import comparison_finding
from cnnlab.analysis.statistics import paired_t_test

BASE = [0.90, 0.91, 0.89, 0.92, 0.90]
NOISE = [0.004, -0.004, 0.006, -0.006, 0.0]


def _run(variant: str, repeat: int, metrics: dict, fold=None) -> RunResult:
    return RunResult(f"net-{variant}-{repeat}-{fold}", "net", variant, {}, "select", repeat, fold, metrics)


def _seeds(variant: str, values: list[float], metric: str = "val_accuracy") -> list[RunResult]:
    return [_run(variant, repeat, {metric: value}) for repeat, value in enumerate(values)]


def _shifted(shift: float, base=BASE) -> list[float]:
    return [b + shift + e for b, e in zip(base, NOISE)]


# --- verdicts ------------------------------------------------------------------------------------

def test_a_clear_gain_in_accuracy_is_better_and_a_clear_loss_is_worse():
    (up,) = compare(_seeds("none", BASE) + _seeds("a", _shifted(0.03)))
    (down,) = compare(_seeds("none", BASE) + _seeds("a", _shifted(-0.03)))
    assert stats.ttest_rel(_shifted(0.03), BASE).pvalue < 0.05  # one comparison: Holm changes nothing
    assert (up.verdict, up.better) == ("better", True)
    assert (down.verdict, down.better) == ("worse", False)


def test_for_a_loss_lower_is_better():
    base = [0.30, 0.32, 0.29, 0.31, 0.30]
    (lower,) = compare(_seeds("none", base, "val_loss") + _seeds("a", _shifted(-0.05, base), "val_loss"), "val_loss")
    (higher,) = compare(_seeds("none", base, "val_loss") + _seeds("a", _shifted(0.05, base), "val_loss"), "val_loss")
    assert lower.test.difference.mean < 0 and (lower.verdict, lower.better) == ("better", True)
    assert higher.test.difference.mean > 0 and (higher.verdict, higher.better) == ("worse", False)
    # P(better) follows the same convention: every seed's loss fell.
    assert lower.probability == 1.0 and higher.probability == 0.0


def test_an_unclear_difference_says_so():
    (c,) = compare(_seeds("none", BASE) + _seeds("a", [0.905, 0.905, 0.895, 0.915, 0.905]))
    assert stats.ttest_rel([0.905, 0.905, 0.895, 0.915, 0.905], BASE).pvalue > 0.05
    assert (c.verdict, c.better) == ("no clear difference", None)


def test_one_seed_has_no_interval_and_two_seeds_are_a_test():
    (one,) = compare(_seeds("none", [0.90]) + _seeds("a", [0.95]))
    assert one.verdict == "one seed: no interval"
    (two,) = compare(_seeds("none", [0.90, 0.91]) + _seeds("a", [0.92, 0.94]))
    assert two.n == 2 and two.test.p == pytest.approx(stats.ttest_rel([0.92, 0.94], [0.90, 0.91]).pvalue)
    assert two.verdict == "no clear difference"
    # Two seeds with a difference far above its spread: clear at 1 df.
    (clear,) = compare(_seeds("none", [0.50, 0.60]) + _seeds("a", [0.80, 0.9001]))
    assert clear.test.p < 0.05 and clear.verdict == "better"


def _by_hand(p_holm: float) -> Comparison:
    test = paired_t_test(BASE, _shifted(0.03))
    return Comparison("net", {}, "net/none", "net/a", "val_accuracy", 5, test, p_holm=p_holm)


def test_a_holm_p_of_exactly_alpha_is_not_clear():
    # "'no clear difference' when the Holm-adjusted p is 0.05 or more" (the table's note).
    assert _by_hand(0.05).test.difference.excludes_zero()
    assert _by_hand(0.05).verdict == "no clear difference"
    assert _by_hand(0.0499).verdict == "better"
    assert _by_hand(None).better is None and _by_hand(None).adjusted is None


def test_a_comparison_built_by_hand_is_of_seeds_within_one_group():
    # Comparison is public: left at their defaults, it pairs seeds of one architecture.
    c = dataclasses.replace(_by_hand(0.01), baseline_name="none", variant_name="a")
    assert c.pairing == "5 paired seeds" and c.same_group
    assert comparison_finding(c).text.startswith("On net, ")


# --- table cells ---------------------------------------------------------------------------------

def test_the_cells_of_a_clear_comparison_against_scipy():
    variant = _shifted(0.03)
    (c,) = compare(_seeds("none", BASE) + _seeds("a", variant))
    diffs = [v - b for b, v in zip(BASE, variant)]
    mean = sum(diffs) / 5
    low, high = stats.t.interval(0.95, 4, loc=mean, scale=stats.sem(diffs))
    p = stats.ttest_rel(variant, BASE).pvalue
    cells = comparison_cells(c)
    assert cells[:3] == ["net/a vs net/none", "5", "+3.00"]
    assert cells[3] == f"{100 * low:+.2f} to {100 * high:+.2f}"
    assert cells[4] == cells[3]  # one comparison: Holm's level is 95%
    assert cells[5] == f"{p:.3g}" and cells[6] == f"{p:.3g}"
    assert cells[7:] == ["1.00", "better"]


def test_a_negative_difference_is_shown_with_its_sign():
    (c,) = compare(_seeds("none", BASE) + _seeds("a", _shifted(-0.03)))
    assert comparison_cells(c)[2] == "-3.00"
    (loss,) = compare(_seeds("none", BASE, "val_loss") + _seeds("a", _shifted(0.01), "val_loss"), "val_loss")
    assert comparison_cells(loss)[2] == "+0.0100"


def test_one_seed_leaves_every_statistic_blank():
    (c,) = compare(_seeds("none", [0.90]) + _seeds("a", [0.95]))
    assert comparison_cells(c) == ["net/a vs net/none", "1", "+5.00", "", "", "", "", "", "one seed: no interval"]


def test_two_seeds_show_their_share_of_wins():
    (c,) = compare(_seeds("none", [0.90, 0.91]) + _seeds("a", [0.92, 0.90]))
    assert comparison_cells(c)[7] == "0.50"
    (c,) = compare(_seeds("none", [0.90, 0.91]) + _seeds("a", [0.92, 0.94]))
    assert comparison_cells(c)[7] == "1.00" and comparison_cells(c)[3] != ""


def test_equal_shifts_say_all_pairs_equal_instead_of_a_zero_width_range():
    # Exactly representable values give exactly equal shifts; the sign test decides (p = 2 / 2**3).
    (c,) = compare(_seeds("none", [0.5, 0.25, 0.75]) + _seeds("a", [0.625, 0.375, 0.875]))
    assert c.test.difference.std == 0.0 and c.test.p == pytest.approx(0.25)
    cells = comparison_cells(c)
    assert cells[3] == cells[4] == "all pairs equal" and cells[5] == "0.25"


def test_a_range_of_a_spread_difference_is_never_called_equal():
    (c,) = compare(_seeds("none", BASE) + _seeds("a", [0.905, 0.905, 0.895, 0.915, 0.905]))
    assert "all pairs equal" not in comparison_cells(c)
    assert " to " in comparison_cells(c)[3] and " to " in comparison_cells(c)[4]


# --- Holm-adjusted intervals in cells and json ---------------------------------------------------

def test_the_holm_interval_of_two_comparisons_against_scipy():
    b_values, a_values = _shifted(0.03), _shifted(0.012)
    comparisons = compare(_seeds("none", BASE) + _seeds("a", a_values) + _seeds("b", b_values))
    p_a = stats.ttest_rel(a_values, BASE).pvalue
    p_b = stats.ttest_rel(b_values, BASE).pvalue
    assert p_b < p_a
    holm_b, holm_a = 2 * p_b, max(2 * p_b, p_a)  # Holm by hand: the smaller p times 2, then 1
    row = comparison_dict(comparisons[0])  # a vs none
    assert row["p_holm"] == pytest.approx(holm_a)
    level = 1 - 0.05 * p_a / holm_a
    diffs = [v - b for b, v in zip(BASE, a_values)]
    low, high = stats.t.interval(level, 4, loc=sum(diffs) / 5, scale=stats.sem(diffs))
    assert row["holm_level"] == pytest.approx(level)
    assert (row["holm_ci_low"], row["holm_ci_high"]) == (pytest.approx(low), pytest.approx(high))
    row_b = comparison_dict(comparisons[1])
    assert row_b["holm_level"] == pytest.approx(1 - 0.05 * p_b / holm_b) == pytest.approx(0.975)
    assert comparison_cells(comparisons[0])[4] == f"{100 * low:+.2f} to {100 * high:+.2f}"


def test_json_of_one_seed_has_no_intervals():
    (c,) = compare(_seeds("none", [0.90]) + _seeds("a", [0.95]))
    row = comparison_dict(c)
    assert row["holm_ci_low"] is None and row["holm_ci_high"] is None and row["holm_level"] is None
    assert row["ci_low"] is None and row["p"] is None and row["verdict"] == "one seed: no interval"


# --- repeats needed of a comparison --------------------------------------------------------------

def test_repeats_needed_over_seeds_counts_one_pair_per_seed():
    variant = [0.905, 0.905, 0.895, 0.915, 0.905]
    (c,) = compare(_seeds("none", BASE) + _seeds("a", variant))
    diffs = [v - b for b, v in zip(BASE, variant)]
    effect, std = sum(diffs) / 5, stats.tstd(diffs)

    def power(n: int) -> float:
        critical = stats.t.ppf(0.975, n - 1)
        nc = effect / (std / n ** 0.5)
        return stats.nct.sf(critical, n - 1, nc) + stats.nct.cdf(-critical, n - 1, nc)

    expected = next(n for n in range(2, 1001) if power(n) >= 0.8)
    assert c.repeats_needed == expected


# --- the note under the table --------------------------------------------------------------------

def _fold_runs(variant: str, values: list[float]) -> list[RunResult]:
    return [RunResult(f"{variant}-{i}", "net", variant, {}, "select", i // 2, i % 2, {"val_accuracy": v},
                      train_size=50, val_size=50, kfold=2) for i, v in enumerate(values)]


def test_the_note_names_the_unit_and_how_runs_pair():
    (seeds,) = compare(_seeds("none", BASE) + _seeds("a", _shifted(0.01)))
    note = comparison_note([seeds], "val_accuracy")
    assert "percentage points" in note and "paired over seeds." in note and "clipped" in note
    (loss,) = compare(_seeds("none", BASE, "val_loss") + _seeds("a", _shifted(0.01), "val_loss"), "val_loss")
    note = comparison_note([loss], "val_loss")
    assert "loss units" in note and "percentage points" not in note and "clipped" not in note
    (folds,) = compare(_fold_runs("none", [0.9, 0.91, 0.92, 0.9]) + _fold_runs("a", [0.92, 0.92, 0.95, 0.91]))
    assert folds.folds == 2
    assert "paired over folds and repeats (corrected resampled t" in comparison_note([folds], "val_accuracy")
    mixed = comparison_note([seeds, folds], "val_accuracy")
    assert "paired over seeds, or over folds with the corrected resampled t" in mixed


def test_the_table_ends_with_its_note():
    comparisons = compare(_seeds("none", BASE) + _seeds("a", _shifted(0.01)))
    table = format_comparisons(comparisons, "val_accuracy")
    assert table.splitlines()[-1] == comparison_note(comparisons, "val_accuracy")
    assert "net/a vs net/none" in table


def test_pairing_words_default_to_seeds():
    assert pairing_words(3) == "3 paired seeds"
    assert pairing_words(1) == "1 paired seed"
    assert pairing_words(10, 5, 2, True) == "5 stratified folds x 2 repeats"
