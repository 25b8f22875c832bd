"""Intervals, paired tests and Holm's correction checked against scipy on fixed numbers."""

from __future__ import annotations

import pytest
from scipy import stats

from cnnlab.analysis.statistics import holm, mean_interval, paired_t_test, t_cdf, t_quantile

SAMPLES = [
    [0.912, 0.905, 0.921, 0.899, 0.915],
    [0.61, 0.58],
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
    [0.5, 0.52, 0.48],
]


@pytest.mark.parametrize("df", [1, 2, 4, 9, 29, 100])
@pytest.mark.parametrize("t", [-8.0, -2.1, -0.3, 0.0, 0.7, 1.96, 4.5, 30.0])
def test_t_cdf_matches_scipy(t, df):
    assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-10)


@pytest.mark.parametrize("df", [1, 2, 4, 9, 29])
@pytest.mark.parametrize("p", [0.025, 0.5, 0.9, 0.975, 0.995])
def test_t_quantile_matches_scipy(p, df):
    assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-8, abs=1e-9)


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
