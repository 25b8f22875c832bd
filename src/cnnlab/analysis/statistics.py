"""Statistics over seeds: t-intervals, paired t-tests and Holm's correction.

Written out here (Student's t from the regularized incomplete beta function) rather than
taken from scipy so the analysis has no heavy dependency; the tests check every function
against scipy on fixed numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    if t * t < df:
        # Near the centre the tail form loses digits (1 - I with I close to 1); use the body.
        body = 0.5 * regularized_beta(0.5, df / 2.0, t * t / (df + t * t))
        return 0.5 + body if t > 0 else 0.5 - body
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value with P(T <= t) = p (bisection; exact enough for intervals)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    low, high = -1.0, 1.0
    while t_cdf(low, df) > p:
        low *= 2.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided t-interval (``low``/``high`` are None for fewer than 2 values)."""

    mean: float
    low: Optional[float]
    high: Optional[float]
    n: int
    std: Optional[float]
    level: float = 0.95

    @property
    def half_width(self) -> Optional[float]:
        return None if self.low is None else (self.high - self.low) / 2.0

    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0.0 or self.high < 0.0)


def mean_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean and t-interval: mean ± t(1-α/2, n-1) · s/√n."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, None, None, n, None, level)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, std, level)


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test of ``b - a``: the mean difference with its interval and a two-sided p."""

    difference: Interval
    t: Optional[float]
    p: Optional[float]


def paired_t_test(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedTest:
    """Student's paired t-test on the differences ``b[i] - a[i]`` (two-sided)."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    differences = [float(y) - float(x) for x, y in zip(a, b)]
    interval = mean_interval(differences, level)
    n = len(differences)
    if n < 2:
        return PairedTest(interval, None, None)
    if interval.std == 0.0:
        # Every pair moved by exactly the same amount (common with accuracies on small splits,
        # which move in steps of 1/n). The t statistic is then infinite, which would claim
        # certainty from three seeds; fall back to the exact two-sided sign test instead.
        if interval.mean == 0.0:
            return PairedTest(interval, 0.0, 1.0)
        return PairedTest(interval, math.copysign(math.inf, interval.mean), min(1.0, 2.0 * 0.5 ** n))
    t = interval.mean / (interval.std / math.sqrt(n))
    p = 2.0 * (1.0 - t_cdf(abs(t), n - 1))
    return PairedTest(interval, t, min(max(p, 0.0), 1.0))


def holm(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm-Bonferroni adjusted p-values (None stays None and does not count as a test)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    adjusted: list[Optional[float]] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
