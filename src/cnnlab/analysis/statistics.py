"""Statistics over seeds and folds: t-intervals, paired t-tests, Holm's correction, the
probability of improvement and the power of a paired comparison.

Distributions come from ``scipy.stats``. Written out here is only what no library has: the
corrected resampled t of Nadeau and Bengio (2003), in the repeated k-fold form of Bouckaert and
Frank (2004). The k*r scores of k folds x r repeats share most of their training data, so the
plain variance of their mean, s^2 / (k r), is far too small; the corrected variance is

    s^2 * (1 / (k r) + n_test / n_train),     df = k r - 1,

with n_test and n_train the validation and training images of one fold. The tests check it on a
worked example and every plain statistic against scipy.

Bounded metrics get bounded intervals: an interval is clipped to the metric's range
(accuracies [0, 1], losses [0, inf), accuracy differences [-1, 1]). The true mean lies in that
range, so clipping never changes whether an interval covers it: the coverage stays 95%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from scipy import optimize, stats

from cnnlab.metrics import metric as metric_entry

Bounds = tuple[float, float]
UNBOUNDED: Bounds = (-math.inf, math.inf)
POWER = 0.8
MAX_REPEATS = 1000  # beyond this a suggestion is no help: say "more than 1000"


def t_quantile(p: float, df: float) -> float:
    """The t value with P(T <= t) = p."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    return float(stats.t.ppf(p, df))


def metric_bounds(name: str) -> Bounds:
    """The range a metric's values live in: accuracies [0, 1], losses [0, inf), the gap
    (train minus validation accuracy) [-1, 1]; anything else unbounded."""
    entry = metric_entry(name)
    if name == "gap":
        return (-1.0, 1.0)
    if entry.percent:
        return (0.0, 1.0)
    if name.endswith("loss"):
        return (0.0, math.inf)
    return UNBOUNDED


def difference_bounds(name: str) -> Bounds:
    """The range of a difference of two values of the metric: [-1, 1] for accuracies, while a
    difference of losses can be anything."""
    low, high = metric_bounds(name)
    return (low - high, high - low)


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided interval (``low``/``high`` are None for fewer than 2 values).

    ``method`` names the interval ("t" or "corrected resampled t"); ``clipped`` is True when an
    end was cut back to the metric's range (the interval is then no longer symmetric)."""

    mean: float
    low: Optional[float]
    high: Optional[float]
    n: int
    std: Optional[float]
    level: float = 0.95
    method: str = "t"
    clipped: bool = False

    @property
    def half_width(self) -> Optional[float]:
        return None if self.low is None else (self.high - self.low) / 2.0

    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0.0 or self.high < 0.0)


def _variance_factor(n: int, n_train: Optional[float], n_test: Optional[float]) -> float:
    """Var(mean) / s^2: 1/n for independent values, 1/n + n_test/n_train for resampled ones."""
    if (n_train is None) != (n_test is None):
        raise ValueError("the corrected resampled t needs both n_train and n_test (or neither)")
    if n_train is None:
        return 1.0 / n
    if n_train <= 0 or n_test <= 0:
        raise ValueError(f"n_train and n_test must be positive, got {n_train} and {n_test}")
    return 1.0 / n + n_test / n_train


def _resolve_bounds(bounds: Optional[Bounds], metric: Optional[str]) -> Bounds:
    if bounds is not None:
        if not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
        return bounds
    return metric_bounds(metric) if metric is not None else UNBOUNDED


def mean_interval(values: Sequence[float], level: float = 0.95, *, bounds: Optional[Bounds] = None,
                  metric: Optional[str] = None, n_train: Optional[float] = None,
                  n_test: Optional[float] = None) -> Interval:
    """Mean and two-sided t-interval: mean ± t(1-α/2, n-1) · s · √factor, clipped to ``bounds``.

    ``factor`` is 1/n for independent values (seeds) and 1/n + n_test/n_train for the scores of
    k folds x r repeats (the corrected resampled t; pass the images of one fold). ``metric``
    (a name of ``cnnlab.metrics``) gives the bounds: ``mean_interval(values, metric="val_accuracy")``
    never leaves [0, 1]."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    low_bound, high_bound = _resolve_bounds(bounds, metric)
    factor = _variance_factor(n, n_train, n_test)
    method = "t" if n_train is None else "corrected resampled t"
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, None, None, n, None, level, method)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * std * math.sqrt(factor)
    low, high = max(mean - half, low_bound), min(mean + half, high_bound)
    return Interval(mean, low, high, n, std, level, method, low != mean - half or high != mean + half)


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test of ``b - a``: the mean difference with its interval and a two-sided p.

    Keeps the differences and the correction so the interval can be redrawn at another level
    (``interval``: the Holm-adjusted one) and the power worked out (``detectable``)."""

    difference: Interval
    t: Optional[float]
    p: Optional[float]
    differences: tuple[float, ...] = ()
    n_train: Optional[float] = None
    n_test: Optional[float] = None
    bounds: Bounds = UNBOUNDED

    @property
    def method(self) -> str:
        return self.difference.method

    def interval(self, level: float) -> Interval:
        """The interval of the mean difference at ``level`` (same correction and bounds)."""
        return mean_interval(self.differences, level, bounds=self.bounds, n_train=self.n_train, n_test=self.n_test)

    def detectable(self, alpha: float = 0.05, power: float = POWER) -> Optional[float]:
        """The smallest true difference this test would find at ``power`` (see ``detectable_difference``)."""
        return detectable_difference(self.difference.std, self.difference.n, alpha, power,
                                     n_train=self.n_train, n_test=self.n_test)


def paired_t_test(a: Sequence[float], b: Sequence[float], level: float = 0.95, *, bounds: Optional[Bounds] = None,
                  n_train: Optional[float] = None, n_test: Optional[float] = None) -> PairedTest:
    """Student's paired t-test on the differences ``b[i] - a[i]`` (two-sided); the corrected
    resampled t when ``n_train``/``n_test`` are given (the pairs are folds). ``bounds``: the
    range of a difference (``difference_bounds(metric)``), to clip the interval to."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    differences = tuple(float(y) - float(x) for x, y in zip(a, b))
    bounds = _resolve_bounds(bounds, None)
    interval = mean_interval(differences, level, bounds=bounds, n_train=n_train, n_test=n_test)
    n = len(differences)
    keep = {"differences": differences, "n_train": n_train, "n_test": n_test, "bounds": bounds}
    if n < 2:
        return PairedTest(interval, None, None, **keep)
    if interval.std == 0.0:
        # Every pair moved by exactly the same amount (common with accuracies on small splits,
        # which move in steps of 1/n). The t statistic is then infinite, which would claim
        # certainty from three seeds; fall back to the exact two-sided sign test instead.
        if interval.mean == 0.0:
            return PairedTest(interval, 0.0, 1.0, **keep)
        return PairedTest(interval, math.copysign(math.inf, interval.mean), min(1.0, 2.0 * 0.5 ** n), **keep)
    t = interval.mean / (interval.std * math.sqrt(_variance_factor(n, n_train, n_test)))
    p = 2.0 * float(stats.t.sf(abs(t), n - 1))
    return PairedTest(interval, t, min(max(p, 0.0), 1.0), **keep)


def holm(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm-Bonferroni adjusted p-values (None stays None and does not count as a test).

    Hand-written: scipy has no Holm (``false_discovery_control`` is Benjamini-Hochberg)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    adjusted: list[Optional[float]] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def holm_level(p: Optional[float], p_holm: Optional[float], alpha: float = 0.05) -> Optional[float]:
    """The confidence level of the interval that agrees with Holm's verdict: 1 - α·p/p_Holm.

    A t-interval at level 1 - γ excludes zero exactly when p < γ; with γ = α·p/p_Holm that is
    p_Holm < α, Holm's own rule. So this interval excludes zero exactly when the comparison is
    called clear (None where there is no test)."""
    if p is None or p_holm is None:
        return None
    if p_holm <= 0.0:
        return 1.0 - alpha  # p underflowed to 0: no adjustment can make it large
    return 1.0 - alpha * min(1.0, p / p_holm)


def probability_of_improvement(differences: Sequence[float], higher_is_better: bool = True) -> Optional[float]:
    """P(the variant beats the baseline on a paired seed), estimated as the share of pairs where
    it did, ties counting half (rliable's probability of improvement, for paired runs)."""
    if not differences:
        return None
    sign = 1.0 if higher_is_better else -1.0
    wins = sum(1.0 if sign * d > 0 else 0.5 if d == 0 else 0.0 for d in differences)
    return wins / len(differences)


def paired_power(effect: float, std: float, n: int, alpha: float = 0.05, *, n_train: Optional[float] = None,
                 n_test: Optional[float] = None) -> float:
    """Power of the two-sided paired t-test (plain or corrected) to find a true mean difference
    ``effect`` when the differences have standard deviation ``std``: the noncentral t with
    noncentrality effect / (std · √factor) and n - 1 degrees of freedom."""
    if n < 2:
        raise ValueError(f"a paired t-test needs at least 2 pairs, got {n}")
    if std <= 0.0:
        raise ValueError(f"std must be positive, got {std}")
    df = n - 1
    critical = float(stats.t.ppf(1.0 - alpha / 2.0, df))
    noncentrality = abs(effect) / (std * math.sqrt(_variance_factor(n, n_train, n_test)))
    upper = float(stats.nct.sf(critical, df, noncentrality))
    # The wrong-sign tail: scipy's nct.cdf returns NaN far out (a large noncentrality, e.g.
    # df 556 and 11.8), where the true value underflows to 0.
    lower = float(stats.nct.cdf(-critical, df, noncentrality))
    return upper + (0.0 if math.isnan(lower) else lower)


def detectable_difference(std: Optional[float], n: int, alpha: float = 0.05, power: float = POWER, *,
                          n_train: Optional[float] = None, n_test: Optional[float] = None) -> Optional[float]:
    """The smallest true mean difference that ``n`` pairs with this ``std`` of differences find
    with probability ``power`` (two-sided, level ``alpha``, before any multiplicity adjustment);
    None with fewer than 2 pairs or no spread to go on."""
    if std is None or n < 2 or not std > 0.0:
        return None
    scale = std * math.sqrt(_variance_factor(n, n_train, n_test))

    def shortfall(effect: float) -> float:
        return paired_power(effect, std, n, alpha, n_train=n_train, n_test=n_test) - power

    high = scale
    while shortfall(high) < 0.0:
        high *= 2.0
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12 * scale))


def repeats_needed(effect: float, std: Optional[float], alpha: float = 0.05, power: float = POWER, *,
                   folds: int = 1, n_train: Optional[float] = None, n_test: Optional[float] = None) -> Optional[int]:
    """The fewest repeats (seeds; with ``folds`` > 1, repeats of the k folds) for which the paired
    test finds a true difference ``effect`` with probability ``power``, taking the observed
    ``std`` of differences as the truth. None when no number would do: no spread or no effect to
    go on, or (folds) the corrected variance's n_test/n_train floor stays too wide, or it would
    take more than MAX_REPEATS."""
    if std is None or not std > 0.0 or effect == 0.0:
        return None

    def enough(repeats: int) -> bool:
        n = repeats * folds
        return n >= 2 and paired_power(effect, std, n, alpha, n_train=n_train, n_test=n_test) >= power

    if not enough(MAX_REPEATS):
        return None
    # Power grows with the number of pairs: bisect for the first number that is enough.
    low, high = 0, MAX_REPEATS  # enough(low) is False (or low is 0), enough(high) is True
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return high
