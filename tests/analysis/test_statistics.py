"""Intervals, paired tests and Holm's correction checked against scipy on fixed numbers; the
corrected resampled t against a worked example; bounded intervals never leave their range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cnnlab.analysis.statistics import (
    detectable_difference,
    difference_bounds,
    holm,
    holm_level,
    mean_interval,
    metric_bounds,
    paired_power,
    paired_t_test,
    probability_of_improvement,
    repeats_needed,
    t_quantile,
)

SAMPLES = [
    [0.912, 0.905, 0.921, 0.899, 0.915],
    [0.61, 0.58],
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
    [0.5, 0.52, 0.48],
]


def test_t_quantile_names_a_probability_outside_zero_to_one():
    with pytest.raises(ValueError, match="p must be in"):
        t_quantile(1.0, 3)


@pytest.mark.parametrize("values", SAMPLES)
def test_mean_interval_matches_scipy_t_interval(values):
    interval = mean_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / len(values), scale=stats.sem(values))
    assert interval.mean == pytest.approx(sum(values) / len(values))
    assert (interval.low, interval.high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_one_value_has_no_interval():
    interval = mean_interval([0.7])
    assert interval.low is None and interval.high is None and not interval.excludes_zero()


@pytest.mark.parametrize("a, b", [
    ([0.61, 0.63, 0.60, 0.62, 0.64], [0.65, 0.66, 0.66, 0.64, 0.69]),
    ([0.9, 0.91, 0.89], [0.905, 0.9, 0.9]),
    ([1.0, 2.0, 3.0, 4.0], [1.5, 1.9, 3.8, 4.1]),
])
def test_paired_t_test_matches_scipy_ttest_rel(a, b):
    result = paired_t_test(a, b)
    expected = stats.ttest_rel(b, a)
    assert result.t == pytest.approx(expected.statistic, rel=1e-9)
    assert result.p == pytest.approx(expected.pvalue, rel=1e-7)
    diffs = [y - x for x, y in zip(a, b)]
    low, high = stats.t.interval(0.95, len(a) - 1, loc=sum(diffs) / len(diffs), scale=stats.sem(diffs))
    assert (result.difference.low, result.difference.high) == (pytest.approx(low), pytest.approx(high))


def test_identical_shifts_fall_back_to_the_sign_test_and_no_change_is_no_evidence():
    # Three equal differences are not certainty: the exact sign test gives 2 * 0.5**3.
    assert paired_t_test([1, 2, 3], [2, 3, 4]).p == pytest.approx(stats.binomtest(3, 3).pvalue)
    assert paired_t_test([0.5] * 8, [0.6] * 8).p == pytest.approx(stats.binomtest(8, 8).pvalue)
    assert paired_t_test([1, 2, 3], [1, 2, 3]).p == 1.0


def test_holm_against_a_hand_computation():
    # scipy has no Holm; sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> kept monotone: 0.06
    p = [0.01, 0.04, 0.03, 0.005, None]
    assert holm(p) == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06), pytest.approx(0.02), None]
    assert holm([0.2, 0.5]) == [pytest.approx(0.4), pytest.approx(0.5)]
    assert holm([0.6, 0.7, 0.9]) == [1.0, 1.0, 1.0]


def test_holm_rejects_the_same_hypotheses_as_scipy_bonferroni_step_down():
    # Holm at level 0.05 rejects H(i) while p(i) <= 0.05 / (m - i + 1); compare with that rule.
    p = [0.001, 0.011, 0.02, 0.04, 0.3]
    adjusted = holm(p)
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected, keep_going = set(), True
    for rank, i in enumerate(order):
        keep_going = keep_going and p[i] <= 0.05 / (len(p) - rank)
        if keep_going:
            rejected.add(i)
    assert {i for i, a in enumerate(adjusted) if a <= 0.05} == rejected


# --- the corrected resampled t (Nadeau and Bengio 2003; Bouckaert and Frank 2004) -------------

FOLD_DIFFERENCES = [1.0, 3.0, 2.0, 2.0, 1.0, 3.0, 2.0, 2.0, 1.0, 3.0]  # k=5 folds x r=2 repeats


def test_corrected_resampled_t_on_a_worked_example():
    """Worked by hand (Bouckaert and Frank 2004, eq. for repeated k-fold; Nadeau and Bengio 2003):

    k = 5 folds x r = 2 repeats -> J = k r = 10 differences d = 1 3 2 2 1 3 2 2 1 3.
    mean = 20 / 10 = 2; squared deviations 1 1 0 0 1 1 0 0 1 1 sum to 6, so s^2 = 6 / 9 = 2/3.
    A pool of 500 images in 5 folds: n_train = 400, n_test = 100, n_test / n_train = 0.25
    (the same as weles' 1 / (k - 1) form).
    Corrected: Var(mean) = s^2 (1/J + n_test/n_train) = 2/3 x (0.1 + 0.25) = 0.233333...
               se = sqrt(0.233333) = 0.4830459, t = 2 / 0.4830459 = 4.140393, df = J - 1 = 9.
    Plain:     Var(mean) = s^2 / J = 0.0666667, se = 0.2581989, t = 7.745967 (scipy's ttest_1samp).
    95% interval: t(0.975, 9) = 2.2621572; half = 2.2621572 x 0.4830459 = 1.0927255
                  -> 0.9072745 to 3.0927255.
    """
    zeros = [0.0] * len(FOLD_DIFFERENCES)
    corrected = paired_t_test(zeros, FOLD_DIFFERENCES, n_train=400, n_test=100)
    assert corrected.t == pytest.approx(4.140393, rel=1e-6)
    assert corrected.p == pytest.approx(2 * stats.t.sf(4.140393, 9), rel=1e-5)
    assert corrected.difference.method == "corrected resampled t"
    assert (corrected.difference.low, corrected.difference.high) == (pytest.approx(0.9072745, rel=1e-6),
                                                                     pytest.approx(3.0927255, rel=1e-6))
    interval = mean_interval(FOLD_DIFFERENCES, n_train=400, n_test=100)
    assert (interval.low, interval.high) == (corrected.difference.low, corrected.difference.high)
    plain = paired_t_test(zeros, FOLD_DIFFERENCES)
    assert plain.t == pytest.approx(7.745967, rel=1e-6)
    assert plain.t == pytest.approx(stats.ttest_1samp(FOLD_DIFFERENCES, 0.0).statistic, rel=1e-12)
    assert plain.p == pytest.approx(stats.ttest_1samp(FOLD_DIFFERENCES, 0.0).pvalue, rel=1e-9)
    assert corrected.p > plain.p  # the correction widens: folds are not independent seeds


def test_the_correction_needs_both_sizes():
    with pytest.raises(ValueError, match="both n_train and n_test"):
        mean_interval([1.0, 2.0], n_train=10)
    with pytest.raises(ValueError, match="must be positive"):
        mean_interval([1.0, 2.0], n_train=10, n_test=0)


# --- bounded metrics -------------------------------------------------------------------------------

def test_bounds_of_each_kind_of_metric():
    assert metric_bounds("val_accuracy") == (0.0, 1.0)
    assert metric_bounds("test_loss") == (0.0, math.inf)
    assert metric_bounds("gap") == (-1.0, 1.0)
    assert difference_bounds("val_accuracy") == (-1.0, 1.0)
    assert difference_bounds("val_loss") == (-math.inf, math.inf)


def test_the_issue_examples_stay_in_range():
    # Three seeds near the top: the plain interval ends above 100%; three far apart: below 0.
    top = mean_interval([0.999, 1.0, 0.99], metric="test_accuracy")
    assert top.high == 1.0 and top.clipped and top.low == pytest.approx(mean_interval([0.999, 1.0, 0.99]).low)
    spread = mean_interval([0.1, 0.9, 0.4], metric="val_accuracy")
    assert spread.low == 0.0 and spread.high == 1.0
    loss = mean_interval([0.01, 0.2, 0.02], metric="val_loss")
    assert loss.low == 0.0 and loss.high == pytest.approx(mean_interval([0.01, 0.2, 0.02]).high)
    assert not mean_interval([0.5, 0.52, 0.48], metric="val_accuracy").clipped


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12),
       level=st.floats(0.5, 0.999), folds=st.booleans())
def test_accuracy_intervals_never_leave_zero_to_one(values, level, folds):
    sizes = {"n_train": 90, "n_test": 10} if folds else {}
    interval = mean_interval(values, level, metric="val_accuracy", **sizes)
    assert 0.0 <= interval.low <= interval.mean + 1e-12 and interval.mean - 1e-12 <= interval.high <= 1.0


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=2, max_size=12),
       level=st.floats(0.5, 0.9999))
def test_accuracy_differences_never_leave_minus_one_to_one(pairs, level):
    test = paired_t_test([a for a, _ in pairs], [b for _, b in pairs], bounds=difference_bounds("val_accuracy"))
    for interval in (test.difference, test.interval(level)):
        assert -1.0 <= interval.low <= interval.high <= 1.0


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(0.0, 50.0), min_size=2, max_size=12))
def test_loss_intervals_never_go_below_zero(values):
    assert mean_interval(values, metric="train_loss").low >= 0.0


# --- Holm-adjusted intervals, probability of improvement, power ----------------------------------

@pytest.mark.parametrize("p, p_holm", [(0.01, 0.03), (0.02, 0.06), (0.004, 0.049), (0.3, 1.0)])
def test_the_holm_level_interval_excludes_zero_exactly_when_holm_rejects(p, p_holm):
    # Build differences whose paired t-test has exactly this p, then redraw at Holm's level.
    n = 6
    t = stats.t.isf(p / 2, n - 1)
    base = [-1.0, -0.5, 0.0, 0.0, 0.5, 1.0]
    sd = stats.tstd(base)
    differences = [x + t * sd / math.sqrt(n) for x in base]
    test = paired_t_test([0.0] * n, differences)
    assert test.p == pytest.approx(p, rel=1e-9)
    level = holm_level(test.p, p_holm)
    assert level == pytest.approx(1 - 0.05 * p / p_holm)
    assert test.interval(level).excludes_zero() == (p_holm < 0.05)
    # Every p here below 0.05 has an unadjusted interval that excludes zero, Holm or not.
    assert test.difference.excludes_zero() == (p < 0.05)


def test_probability_of_improvement_counts_wins_and_half_ties():
    assert probability_of_improvement([0.01, -0.02, 0.0, 0.03]) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert probability_of_improvement([0.01, -0.02, 0.0, 0.03], higher_is_better=False) == pytest.approx(1.5 / 4)
    assert probability_of_improvement([]) is None


def test_paired_power_matches_scipy_noncentral_t_and_a_simulation():
    # Power of a paired t with n=8, effect 1, sd 1.5: P(|T'| > t_crit), T' noncentral t(7, 1/(1.5/sqrt 8)).
    nc = 1.0 / (1.5 / math.sqrt(8))
    crit = stats.t.ppf(0.975, 7)
    expected = stats.nct.sf(crit, 7, nc) + stats.nct.cdf(-crit, 7, nc)
    assert paired_power(1.0, 1.5, 8) == pytest.approx(expected, rel=1e-12)
    rng = np.random.default_rng(0)
    samples = rng.normal(1.0, 1.5, size=(20000, 8))
    rejected = stats.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05
    assert paired_power(1.0, 1.5, 8) == pytest.approx(rejected.mean(), abs=0.015)


def test_detectable_difference_is_where_power_reaches_80_percent():
    detectable = detectable_difference(0.02, 5)
    assert paired_power(detectable, 0.02, 5) == pytest.approx(0.8, abs=1e-9)
    assert paired_power(0.9 * detectable, 0.02, 5) < 0.8
    # Folds: the corrected variance makes the same number of pairs see less.
    assert detectable_difference(0.02, 10, n_train=9, n_test=1) > detectable_difference(0.02, 10)
    assert detectable_difference(None, 5) is None and detectable_difference(0.02, 1) is None


def test_repeats_needed_is_the_first_count_with_80_percent_power():
    needed = repeats_needed(0.01, 0.02)
    assert paired_power(0.01, 0.02, needed) >= 0.8 > paired_power(0.01, 0.02, needed - 1)
    # More repeats of k folds cannot shrink the n_test/n_train part of the corrected variance:
    # a difference far below the fold spread is out of reach at any number of repeats.
    assert repeats_needed(0.001, 0.05, folds=5, n_train=4, n_test=1) is None
    assert repeats_needed(0.0, 0.02) is None and repeats_needed(0.01, 0.0) is None
