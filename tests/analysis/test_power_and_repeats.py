"""The power of a paired comparison, the smallest difference it detects and the repeats it needs,
checked against G*Power's published sample sizes and against a brute-force search over the
noncentral t of scipy (the implementation bisects and root-finds; these tests count and scan)."""

from __future__ import annotations

import math

import pytest
from scipy import optimize, stats

from cnnlab.analysis.statistics import (
    MAX_REPEATS,
    detectable_difference,
    paired_power,
    paired_t_test,
    repeats_needed,
)


def _power(effect: float, std: float, n: int, factor: float | None = None, alpha: float = 0.05) -> float:
    """Two-sided power of the paired t from scipy's noncentral t; ``factor`` is Var(mean)/s^2."""
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    nc = effect / (std * math.sqrt(1.0 / n if factor is None else factor))
    lower = stats.nct.cdf(-critical, df, nc)
    return stats.nct.sf(critical, df, nc) + (0.0 if math.isnan(lower) else lower)


def _first_count(enough, start: int = 1, stop: int = 5000) -> int | None:
    """The first count from ``start`` for which ``enough`` holds, by plain counting."""
    return next((count for count in range(start, stop) if enough(count)), None)


def _detectable(std: float, n: int) -> float:
    """The effect with 80% power for n pairs: solved for spread 1 to 1e-15, then scaled (the
    power depends on effect / std alone)."""
    return std * optimize.brentq(lambda x: _power(x, 1.0, n) - 0.8, 0.0, 100.0, xtol=1e-15, rtol=1e-15)


# --- power ---------------------------------------------------------------------------------------

def test_power_stays_a_probability_where_scipy_nct_cdf_gives_nan():
    # df 556 and noncentrality 11.8: nct.cdf of the wrong-sign tail is NaN (its true value is ~0).
    assert math.isnan(stats.nct.cdf(-stats.t.ppf(0.975, 556), 556, 11.8))
    power = paired_power(11.8 / math.sqrt(557), 1.0, 557)
    assert 0.0 <= power <= 1.0
    assert power == pytest.approx(stats.nct.sf(stats.t.ppf(0.975, 556), 556, 11.8), rel=1e-12)


def test_power_needs_a_positive_spread():
    with pytest.raises(ValueError, match="std must be positive"):
        paired_power(0.01, 0.0, 5)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_power(0.01, 0.02, 1)


# --- detectable difference -----------------------------------------------------------------------

@pytest.mark.parametrize("std", [1e-5, 1e-4, 0.02, 3.0])
def test_detectable_difference_is_exact_at_every_scale(std):
    # Accuracy differences of a hundredth of a point and losses of several units alike.
    assert detectable_difference(std, 5) == pytest.approx(_detectable(std, 5), rel=1e-9)


def test_two_pairs_have_a_detectable_difference():
    # n = 2 is the smallest paired t-test (1 df): huge, but a number.
    detectable = detectable_difference(0.01, 2)
    assert detectable == pytest.approx(_detectable(0.01, 2), rel=1e-9)
    assert _power(detectable, 0.01, 2) == pytest.approx(0.8, abs=1e-9)


def test_a_paired_test_reports_its_detectable_difference_at_five_percent():
    a = [0.90, 0.91, 0.89, 0.92, 0.90]
    b = [0.905, 0.905, 0.895, 0.915, 0.905]
    test = paired_t_test(a, b)
    std = stats.tstd([y - x for x, y in zip(a, b)])
    assert test.detectable() == pytest.approx(_detectable(std, 5), rel=1e-9)
    assert test.detectable(0.05, 0.8) == pytest.approx(test.detectable(), rel=1e-12)


# --- repeats needed ------------------------------------------------------------------------------

@pytest.mark.parametrize("dz, n", [(0.2, 199), (0.5, 34), (0.8, 15)])
def test_repeats_needed_matches_gpower(dz, n):
    """G*Power 3, t tests - means: difference between two dependent means (matched pairs),
    two-tailed, alpha 0.05, power 0.80: dz 0.2 -> 199 pairs, 0.5 -> 34, 0.8 -> 15."""
    assert repeats_needed(dz, 1.0) == n
    assert repeats_needed(-dz, 1.0) == n  # a loss that falls: the same power either way


def test_an_effect_of_exactly_one_unit_is_searched_like_any_other():
    # A loss difference of 1.0 with spread 2.0 is dz 0.5 again: 34 pairs.
    assert repeats_needed(1.0, 2.0) == 34
    assert repeats_needed(1.0, 1.0) == _first_count(lambda n: n >= 2 and _power(1.0, 1.0, n) >= 0.8)


@pytest.mark.parametrize("effect, std", [(0.01, 0.02), (0.003, 0.01), (0.05, 0.02), (0.7, 1.0), (0.04, 0.1)])
def test_repeats_needed_is_the_first_count_with_enough_power(effect, std):
    expected = _first_count(lambda n: n >= 2 and _power(effect, std, n) >= 0.8)
    needed = repeats_needed(effect, std)
    assert needed == expected and isinstance(needed, int)


def test_two_seeds_are_enough_for_a_huge_difference():
    # A difference 100 times its spread: 1 df is enough, and one seed never is.
    assert _power(1.0, 0.01, 2) >= 0.8
    assert repeats_needed(1.0, 0.01) == 2


@pytest.mark.parametrize("effect, std", [(2.0, 1.0), (5.0, 1.0), (0.02, 0.01), (3.0, 1.0)])
def test_repeats_of_k_folds_count_k_pairs_each_with_the_corrected_variance(effect, std):
    # 5 folds of 400 training and 100 validation images: n = 5 r pairs, Var(mean)/s^2 = 1/n + 1/4.
    def enough(repeats: int) -> bool:
        n = 5 * repeats
        return _power(effect, std, n, factor=1.0 / n + 0.25) >= 0.8

    expected = _first_count(enough)
    assert repeats_needed(effect, std, folds=5, n_train=400, n_test=100) == expected


def test_one_repeat_of_the_folds_can_be_enough():
    # Five folds are five pairs already: a large difference needs no second repeat.
    assert _power(5.0, 1.0, 5, factor=1 / 5 + 1 / 4) >= 0.8
    assert repeats_needed(5.0, 1.0, folds=5, n_train=4, n_test=1) == 1


def _effect_at(n: int) -> float:
    """The effect (spread 1) at which n pairs have exactly 80% power."""
    return optimize.brentq(lambda e: _power(e, 1.0, n) - 0.8, 0.01, 1.0, xtol=1e-15)


def test_up_to_a_thousand_repeats_is_a_number_and_beyond_is_none():
    assert MAX_REPEATS == 1000
    at_limit = _effect_at(1000) * (1 + 1e-7)
    assert _power(at_limit, 1.0, 1000) >= 0.8 > _power(at_limit, 1.0, 999)
    assert repeats_needed(at_limit, 1.0) == 1000
    # One more seed than the limit would do: the suggestion is "more than 1000", None.
    beyond = _effect_at(1001) * (1 + 1e-7)
    assert _power(beyond, 1.0, 1001) >= 0.8 > _power(beyond, 1.0, 1000)
    assert repeats_needed(beyond, 1.0) is None
