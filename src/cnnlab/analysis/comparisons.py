"""Paired comparisons between configurations: each variant against the baseline variant of the
same architecture (and sweep point), plus any pairs the user names.

Runs pair by (repeat, fold): repeat k uses the same seed, data order and folds in every
configuration, so the differences are paired and the paired t-test applies. p-values are
Holm-adjusted over every comparison of one metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from cnnlab.analysis.statistics import Interval, PairedTest, holm, mean_interval, paired_t_test
from cnnlab.analysis.text import text_table
from cnnlab.errors import StoreError
from cnnlab.metrics import format_value, higher_is_better, is_percent, words
from cnnlab.records import Results
from cnnlab.registry import did_you_mean
from cnnlab.spec.plan import configuration_label

ALPHA = 0.05


@dataclass
class RunResult:
    """One finished run, flattened for statistics."""

    run_id: str
    architecture: str
    variant: str
    sweep: dict[str, Any]
    phase: str
    repeat: int
    fold: Optional[int]
    metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def configuration(self) -> str:
        return configuration_label(self.architecture, self.variant, self.sweep, self.phase)

    @property
    def pair_key(self) -> tuple[int, Optional[int]]:
        return (self.repeat, self.fold)

    @property
    def group(self) -> str:
        """Architecture and sweep point: the variants of one group are compared."""
        return json.dumps([self.architecture, self.sweep], sort_keys=True, default=str)


def run_results(store: Results, study: str) -> list[RunResult]:
    """The study's finished runs with their metrics (``gap``: train - val accuracy at the best epoch)."""
    results = []
    for run in store.runs(study, status="done"):
        history = store.epochs(run.id)
        metrics = {name: getattr(run, name) for name in ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss",
                                                         "val_loss", "test_loss", "best_val_accuracy", "best_val_loss")
                   if getattr(run, name) is not None}
        best = run.best_epoch
        if best is not None and 0 <= best < len(history):
            at_best = history[best]
            if at_best.get("val_accuracy") is not None:
                metrics["gap"] = at_best["train_accuracy"] - at_best["val_accuracy"]
        results.append(RunResult(run.id, run.architecture, run.variant, run.sweep or {}, run.phase,
                                 run.repeat, run.fold, metrics, history))
    return results


def configuration_intervals(results: Sequence[RunResult], metric: str) -> dict[str, Interval]:
    """Mean and 95% t-interval of ``metric`` per configuration (over repeats and folds)."""
    values: dict[str, list[float]] = {}
    for result in results:
        if metric in result.metrics:
            values.setdefault(result.configuration, []).append(result.metrics[metric])
    return {name: mean_interval(v) for name, v in values.items()}


@dataclass
class Comparison:
    """``variant`` minus ``baseline`` on one metric, paired over seeds (and folds)."""

    architecture: str
    sweep: dict[str, Any]
    baseline: str  # configuration labels
    variant: str
    metric: str
    n: int
    test: PairedTest
    p_holm: Optional[float] = None
    baseline_name: str = ""  # the variant names, for sentences
    variant_name: str = ""

    @property
    def better(self) -> Optional[bool]:
        """True/False when the difference is clear (interval excludes zero and Holm p < 0.05), else None."""
        if self.p_holm is None or not self.test.difference.excludes_zero() or self.p_holm >= ALPHA:
            return None
        return (self.test.difference.mean > 0) == higher_is_better(self.metric)

    @property
    def verdict(self) -> str:
        if self.n < 2:
            return "one seed: no interval"
        if self.better is None:
            return "no clear difference"
        return "better" if self.better else "worse"


def _pair(a: Sequence[RunResult], b: Sequence[RunResult], metric: str) -> tuple[list[float], list[float]]:
    first = {r.pair_key: r.metrics[metric] for r in a if metric in r.metrics}
    second = {r.pair_key: r.metrics[metric] for r in b if metric in r.metrics}
    keys = sorted(set(first) & set(second), key=lambda k: (k[0], -1 if k[1] is None else k[1]))
    return [first[k] for k in keys], [second[k] for k in keys]


def compare(results: Sequence[RunResult], metric: str = "val_accuracy", baseline: Optional[str] = None,
            variants_order: Optional[Sequence[str]] = None,
            pairs: Sequence[tuple[str, str]] = ()) -> list[Comparison]:
    """Every variant against the baseline variant within each architecture and sweep point, plus
    the named pairs of configuration labels; Holm-adjusted together."""
    selection = [r for r in results if r.phase == "select"]
    by_config: dict[str, list[RunResult]] = {}
    groups: dict[str, dict[str, str]] = {}  # group -> variant -> configuration label
    for result in selection:
        by_config.setdefault(result.configuration, []).append(result)
        groups.setdefault(result.group, {}).setdefault(result.variant, result.configuration)
    # Default order: the plan's (results come from the store in plan order), so the baseline is
    # the first variant the spec lists.
    order = list(variants_order or dict.fromkeys(r.variant for r in selection))
    comparisons: list[Comparison] = []
    for variants in groups.values():
        names = sorted(variants, key=lambda v: order.index(v) if v in order else len(order))
        base = baseline if baseline is not None else names[0]
        if base not in variants:
            continue
        for name in names:
            if name == base:
                continue
            comparisons.append(_comparison(by_config, variants[base], variants[name], metric))
    for a, b in pairs:
        for label in (a, b):
            if label not in by_config:
                raise StoreError(f"no finished configuration '{label}'{did_you_mean(label, list(by_config))}; "
                                 f"configurations: {', '.join(by_config)}")
        comparisons.append(_comparison(by_config, a, b, metric))
    for comparison, adjusted in zip(comparisons, holm([c.test.p for c in comparisons])):
        comparison.p_holm = adjusted
    return comparisons


def _comparison(by_config: dict[str, list[RunResult]], base: str, other: str, metric: str) -> Comparison:
    a, b = _pair(by_config[base], by_config[other], metric)
    first = by_config[other][0]
    if not a:
        raise StoreError(f"'{base}' and '{other}' share no seed to pair on")
    return Comparison(first.architecture, first.sweep, base, other, metric, len(a), paired_t_test(a, b),
                      baseline_name=by_config[base][0].variant, variant_name=first.variant)


def _points(metric: str, value: float) -> str:
    return format_value(metric, value, signed=True)


COMPARISON_COLUMNS = ("comparison", "n", "difference", "95% CI", "p (paired t)", "p (Holm)", "verdict")


def comparison_cells(c: Comparison) -> list[str]:
    d = c.test.difference
    ci = "" if d.low is None else f"{_points(c.metric, d.low)} to {_points(c.metric, d.high)}"
    return [f"{c.variant} vs {c.baseline}", str(c.n), _points(c.metric, d.mean), ci,
            "" if c.test.p is None else f"{c.test.p:.3g}", "" if c.p_holm is None else f"{c.p_holm:.3g}", c.verdict]


def format_comparisons(comparisons: Sequence[Comparison], metric: str) -> str:
    """A text table of comparisons (accuracy differences in percentage points)."""
    if not comparisons:
        return "Nothing to compare: each architecture has a single variant with finished runs."
    lines = text_table(COMPARISON_COLUMNS, [comparison_cells(c) for c in comparisons])
    unit = "percentage points" if is_percent(metric) else "loss units"
    lines.append(f"Difference in {words(metric)} ({unit}), paired over seeds and folds; 95% t-interval; "
                 "paired t-test, Holm-adjusted over the table. 'no clear difference' when the interval includes zero "
                 "or the adjusted p is 0.05 or more.")
    return "\n".join(lines)
