"""The edges of intervals and paired tests: argument checks at their exact limits, the bounds of
every kind of metric (the gap's differences included), intervals that end exactly at zero, one
value, zero spread, and a p-value that underflows to 0. Expected values come from scipy or are
worked by hand."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from cnnlab.analysis.statistics import (
    Interval,
    difference_bounds,
    holm,
    holm_level,
    mean_interval,
    metric_bounds,
    paired_t_test,
    t_quantile,
)


# --- t distribution helpers ---------------------------------------------------------------------

def test_t_quantile_inverts_scipys_t_distribution():
    assert stats.t.cdf(t_quantile(0.975, 7), 7) == pytest.approx(0.975, rel=1e-12)
    assert t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5])
def test_t_quantile_refuses_the_ends_of_zero_to_one(p):
    # p = 0 or 1 is an infinite quantile, not a number an interval can use.
    with pytest.raises(ValueError, match="p must be in"):
        t_quantile(p, 3)


# --- argument checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("level", [0.0, 1.0, 2.0, -0.5])
def test_a_level_must_lie_strictly_between_zero_and_one(level):
    with pytest.raises(ValueError, match="level must be in"):
        mean_interval([0.5, 0.52, 0.48], level)


def test_bounds_must_have_low_below_high():
    with pytest.raises(ValueError, match="low < high"):
        mean_interval([0.5, 0.52, 0.48], bounds=(1.0, 1.0))
    with pytest.raises(ValueError, match="low < high"):
        paired_t_test([0.5, 0.52], [0.5, 0.6], bounds=(0.5, 0.5))


@pytest.mark.parametrize("n_train, n_test", [(0, 10), (10, 0), (-5, 10), (10, -1)])
def test_the_correction_refuses_empty_or_negative_fold_sizes(n_train, n_test):
    with pytest.raises(ValueError, match="must be positive"):
        mean_interval([1.0, 2.0, 3.0], n_train=n_train, n_test=n_test)


def test_two_folds_without_split_sizes_use_a_ratio_of_one():
    """2-fold cross-validation stored without sizes falls back to n_train = k - 1 = 1 and n_test = 1.
    Values 1, 2, 3 (three pairs): mean 2, s = 1; Var(mean) = 1 * (1/3 + 1/1) = 4/3,
    half = t(0.975, 2) * sqrt(4/3) = 4.302653 * 1.1547005 = 4.968276."""
    interval = mean_interval([1.0, 2.0, 3.0], n_train=1, n_test=1)
    assert interval.method == "corrected resampled t"
    assert interval.low == pytest.approx(2.0 - 4.968276, rel=1e-6)
    assert interval.high == pytest.approx(2.0 + 4.968276, rel=1e-6)
    assert interval.half_width == pytest.approx(stats.t.ppf(0.975, 2) * math.sqrt(4 / 3), rel=1e-12)


# --- bounds of each metric ---------------------------------------------------------------------

def test_a_metric_that_is_neither_a_percent_nor_a_loss_is_unbounded():
    assert metric_bounds("lr") == (-math.inf, math.inf)
    assert metric_bounds("images_per_second") == (-math.inf, math.inf)


def test_differences_of_the_gap_span_minus_two_to_two():
    # The gap (train - val accuracy) lives in [-1, 1]; two of them differ by at most 2 either way.
    assert difference_bounds("gap") == (-2.0, 2.0)
    assert difference_bounds("lr") == (-math.inf, math.inf)
    test = paired_t_test([-0.9, 0.95, -0.8], [0.9, -0.9, 0.85], bounds=difference_bounds("gap"))
    assert -2.0 <= test.difference.low <= test.difference.high <= 2.0
    unclipped = stats.t.interval(0.95, 2, loc=test.difference.mean, scale=stats.sem([1.8, -1.85, 1.65]))
    assert test.difference.low == -2.0 and test.difference.high == 2.0 and unclipped[0] < -2.0 < 2.0 < unclipped[1]


# --- half width, clipping flags, one value -----------------------------------------------------

def test_half_width_is_the_t_half_width_and_none_for_one_value():
    values = [0.5, 0.52, 0.48]
    expected = stats.t.ppf(0.975, 2) * stats.sem(values)  # 4.302653 * 0.011547 = 0.049683
    assert mean_interval(values).half_width == pytest.approx(expected, rel=1e-12)
    assert mean_interval(values).half_width == pytest.approx(0.049683, rel=1e-4)
    assert mean_interval([0.7]).half_width is None
    # A clipped interval is no longer symmetric: half its width, not the t half-width.
    clipped = mean_interval([0.1, 0.9, 0.4], metric="val_accuracy")
    assert (clipped.low, clipped.high) == (0.0, 1.0) and clipped.half_width == pytest.approx(0.5)


def test_one_value_is_not_called_clipped_even_for_a_bounded_metric():
    one = mean_interval([0.7], metric="val_accuracy")
    assert (one.mean, one.low, one.high, one.n, one.std, one.clipped) == (0.7, None, None, 1, None, False)
    assert mean_interval([0.7], 0.9).level == 0.9


# --- an interval ending exactly at zero does not exclude it ------------------------------------

def test_an_interval_that_ends_at_zero_does_not_exclude_zero():
    assert not Interval(0.2, 0.0, 0.4, 3, 0.1).excludes_zero()
    assert not Interval(-0.2, -0.4, 0.0, 3, 0.1).excludes_zero()
    assert Interval(0.2, 1e-12, 0.4, 3, 0.1).excludes_zero() and Interval(-0.2, -0.4, -1e-12, 3, 0.1).excludes_zero()
    # The same through clipping: accuracies clipped at 0, a difference clipped at 0 from above.
    spread = mean_interval([0.1, 0.9, 0.4], metric="val_accuracy")
    assert spread.low == 0.0 and not spread.excludes_zero()
    below = mean_interval([-0.1, -0.9, -0.4], bounds=(-1.0, 0.0))
    assert below.high == 0.0 and below.clipped and not below.excludes_zero()


# --- paired tests at zero spread, p underflow, Holm levels ------------------------------------

def test_no_change_at_all_has_t_zero_and_p_one():
    result = paired_t_test([0.9, 0.8, 0.85], [0.9, 0.8, 0.85])
    assert (result.t, result.p) == (0.0, 1.0)
    assert result.difference.mean == 0.0 and result.difference.std == 0.0


def test_equal_shifts_have_an_infinite_t_with_the_sign_of_the_shift():
    up = paired_t_test([1, 2, 3], [2, 3, 4])
    down = paired_t_test([2, 3, 4], [1, 2, 3])
    assert up.t == math.inf and down.t == -math.inf
    assert up.p == down.p == pytest.approx(stats.binomtest(3, 3).pvalue) == pytest.approx(0.25)
    # Two pairs: the sign test's p is 2 * 0.5**2 = 0.5.
    assert paired_t_test([0.5, 0.6], [0.6, 0.7]).p == pytest.approx(stats.binomtest(2, 2).pvalue)


def test_holm_level_is_none_without_both_p_values():
    assert holm_level(0.01, None) is None
    assert holm_level(None, 0.03) is None
    assert holm_level(None, None) is None


def test_a_p_value_that_underflows_to_zero_keeps_the_unadjusted_level():
    # 200 differences of 1 +- 0.003: t is about 7000 with 199 df, and p underflows to exactly 0.
    differences = [1.0 + 1e-3 * ((i % 7) - 3) for i in range(200)]
    test = paired_t_test([0.0] * 200, differences)
    assert test.p == 0.0 and stats.ttest_1samp(differences, 0.0).pvalue == 0.0
    adjusted = holm([test.p, 0.3])
    assert adjusted == [0.0, pytest.approx(0.3)]
    level = holm_level(test.p, adjusted[0])
    assert level == pytest.approx(0.95)
    redrawn = test.interval(level)
    assert (redrawn.low, redrawn.high) == (pytest.approx(test.difference.low), pytest.approx(test.difference.high))
    assert holm_level(0.0, 0.0, alpha=0.01) == pytest.approx(0.99)
