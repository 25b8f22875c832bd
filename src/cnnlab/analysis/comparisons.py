"""Paired comparisons between configurations: each variant against the baseline variant of the
same architecture (and sweep point), plus any pairs the user names.

Runs pair by (repeat, fold): repeat k uses the same seed, data order and folds in every
configuration, so the differences are paired. Over seeds the paired t-test applies; over k
folds x r repeats the fold scores share most of their training data, so intervals and p-values
use the corrected resampled t (``cnnlab.analysis.statistics``). p-values are Holm-adjusted over
every comparison of one call, and each comparison also carries the interval at the level Holm
tested it at, which excludes zero exactly when the verdict is clear.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from cnnlab.analysis.statistics import (
    Interval,
    PairedTest,
    difference_bounds,
    holm,
    holm_level,
    mean_interval,
    paired_t_test,
    probability_of_improvement,
    repeats_needed,
)
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
    # Images in this run's training and validation splits (the store's split_sizes; None for a
    # run stored without them): the corrected resampled t of k-fold results needs them.
    train_size: Optional[int] = None
    val_size: Optional[int] = None
    kfold: int = 0  # the spec's evaluate.kfold (0: a fixed validation split)
    stratified: Optional[bool] = None  # the spec's dataset.split.stratify, None where unknown

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
        # What a selection constraint reads (evaluate.constraint): never a score.
        if run.train_seconds is not None:
            metrics["train_seconds"] = float(run.train_seconds)
        if run.params_total is not None:
            metrics["params"] = float(run.params_total)
        best = run.best_epoch
        if best is not None and 0 <= best < len(history):
            at_best = history[best]
            if at_best.get("val_accuracy") is not None:
                metrics["gap"] = at_best["train_accuracy"] - at_best["val_accuracy"]
        sizes = run.split_sizes or {}
        config = run.config or {}
        split = (config.get("dataset") or {}).get("split") or {}
        results.append(RunResult(run.id, run.architecture, run.variant, run.sweep or {}, run.phase,
                                 run.repeat, run.fold, metrics, history,
                                 train_size=sizes.get("train"), val_size=sizes.get("val"),
                                 kfold=int(config.get("kfold") or 0), stratified=split.get("stratify")))
    return results


def _fold_sizes(run: Any) -> tuple[Optional[float], Optional[float], int]:
    """(training images, validation images, k) of one run: a RunResult or a store RunRecord."""
    if hasattr(run, "split_sizes"):
        sizes, config = run.split_sizes or {}, run.config or {}
        return sizes.get("train"), sizes.get("val"), int(config.get("kfold") or 0)
    return run.train_size, run.val_size, run.kfold


def fold_correction(runs: Sequence[Any]) -> dict[str, float]:
    """``n_train``/``n_test`` for ``mean_interval`` and ``paired_t_test`` when ``runs`` are folds
    (RunResults or store RunRecords), else {} (seeds are independent: the plain t).

    ``mean_interval(values, metric=name, **fold_correction(runs))`` gives the corrected resampled
    t over k folds x r repeats. The sizes are the mean training and validation images of a fold;
    runs stored without split sizes fall back to the k-fold ratio n_test/n_train = 1/(k-1)."""
    folded = [run for run in runs if run.fold is not None]
    if not folded:
        return {}
    sizes = [_fold_sizes(run) for run in folded]
    if all(train and val for train, val, _ in sizes):
        return {"n_train": sum(s[0] for s in sizes) / len(sizes), "n_test": sum(s[1] for s in sizes) / len(sizes)}
    k = max((s[2] for s in sizes), default=0) or len({run.fold for run in folded})
    if k < 2:
        return {}
    return {"n_train": float(k - 1), "n_test": 1.0}


def pairing_words(n: int, folds: int = 0, repeats: int = 0, stratified: Optional[bool] = None) -> str:
    """How the numbers pair: "3 paired seeds" or "5 stratified folds x 2 repeats"."""
    if not folds:
        return f"{n} paired seed{'s' if n != 1 else ''}"
    kind = "stratified folds" if stratified else "folds"
    return f"{folds} {kind} x {repeats} repeat{'s' if repeats != 1 else ''}"


def configuration_intervals(results: Sequence[RunResult], metric: str) -> dict[str, Interval]:
    """Mean and 95% interval of ``metric`` per configuration: the t-interval over seeds, the
    corrected resampled t over folds, clipped to the metric's range."""
    members: dict[str, list[RunResult]] = {}
    for result in results:
        if metric in result.metrics:
            members.setdefault(result.configuration, []).append(result)
    return {name: mean_interval([r.metrics[metric] for r in runs], metric=metric, **fold_correction(runs))
            for name, runs in members.items()}


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
    folds: int = 0  # distinct folds paired on (0: seeds, no folds)
    repeats: int = 0  # distinct repeats paired on
    stratified: Optional[bool] = None  # whether the folds were stratified
    same_group: bool = True  # False: the two configurations differ in architecture or sweep point

    @property
    def adjusted(self) -> Optional[Interval]:
        """The difference's interval at the level Holm tested it at (1 - 0.05·p/p_Holm): it
        excludes zero exactly when the verdict is clear. None before adjustment or for one pair."""
        level = holm_level(self.test.p, self.p_holm, ALPHA)
        return None if level is None else self.test.interval(level)

    @property
    def better(self) -> Optional[bool]:
        """True/False when the difference is clear (Holm p < 0.05, so the Holm-adjusted interval
        and the unadjusted one both exclude zero), else None."""
        if self.p_holm is None or not self.test.difference.excludes_zero() or self.p_holm >= ALPHA:
            return None
        return (self.test.difference.mean > 0) == higher_is_better(self.metric)

    @property
    def probability(self) -> Optional[float]:
        """P(the variant beats the baseline on a paired seed or fold): its share of wins, ties half."""
        return probability_of_improvement(self.test.differences, higher_is_better(self.metric))

    @property
    def detectable(self) -> Optional[float]:
        """The smallest difference these pairs find at 80% power (5% level, before Holm), from
        the observed spread of the differences."""
        return self.test.detectable(ALPHA)

    @property
    def repeats_needed(self) -> Optional[int]:
        """Repeats (seeds, or repeats of the k folds) that would find the observed difference at
        80% power, if the spread stays as observed; None when no number would."""
        return repeats_needed(self.test.difference.mean, self.test.difference.std, ALPHA, folds=max(self.folds, 1),
                              n_train=self.test.n_train, n_test=self.test.n_test)

    @property
    def pairing(self) -> str:
        """"3 paired seeds" or "5 stratified folds x 2 repeats"."""
        return pairing_words(self.n, self.folds, self.repeats, self.stratified)

    @property
    def verdict(self) -> str:
        if self.n < 2:
            return "one seed: no interval"
        if self.better is None:
            return "no clear difference"
        return "better" if self.better else "worse"


def _pair(a: Sequence[RunResult], b: Sequence[RunResult],
          metric: str) -> tuple[list[float], list[float], list[tuple[int, Optional[int]]]]:
    first = {r.pair_key: r.metrics[metric] for r in a if metric in r.metrics}
    second = {r.pair_key: r.metrics[metric] for r in b if metric in r.metrics}
    keys = sorted(set(first) & set(second), key=lambda k: (k[0], -1 if k[1] is None else k[1]))
    return [first[k] for k in keys], [second[k] for k in keys], keys


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
    a, b, keys = _pair(by_config[base], by_config[other], metric)
    first, reference = by_config[other][0], by_config[base][0]
    if not a:
        raise StoreError(f"'{base}' and '{other}' share no seed to pair on")
    shared = set(keys)
    paired = [r for r in by_config[base] + by_config[other] if r.pair_key in shared]
    folds = len({fold for _, fold in keys if fold is not None})
    test = paired_t_test(a, b, bounds=difference_bounds(metric), **fold_correction(paired))
    stratified = None if not folds else all(r.stratified is True for r in paired if r.fold is not None)
    return Comparison(first.architecture, first.sweep, base, other, metric, len(a), test,
                      baseline_name=reference.variant, variant_name=first.variant,
                      folds=folds, repeats=len({repeat for repeat, _ in keys}), stratified=stratified,
                      same_group=first.group == reference.group)


def _points(metric: str, value: float) -> str:
    return format_value(metric, value, signed=True)


COMPARISON_COLUMNS = ("comparison", "n", "difference", "95% CI (unadjusted)", "95% CI (Holm-adjusted)", "p (paired t)",
                      "p (Holm)", "P(better)", "verdict")


def _range(metric: str, interval: Optional[Interval]) -> str:
    if interval is None or interval.low is None:
        return ""
    if interval.std == 0.0:
        return "all pairs equal"  # a zero-width interval says nothing: the sign test decides
    return f"{_points(metric, interval.low)} to {_points(metric, interval.high)}"


def comparison_cells(c: Comparison) -> list[str]:
    """The table's cells of one comparison, in COMPARISON_COLUMNS order."""
    d = c.test.difference
    win = c.probability
    return [f"{c.variant} vs {c.baseline}", str(c.n), _points(c.metric, d.mean), _range(c.metric, d),
            _range(c.metric, c.adjusted), "" if c.test.p is None else f"{c.test.p:.3g}",
            "" if c.p_holm is None else f"{c.p_holm:.3g}", "" if win is None or c.n < 2 else f"{win:.2f}", c.verdict]


def comparison_note(comparisons: Sequence[Comparison], metric: str) -> str:
    """What the comparison table's columns are (for the terminal and the report)."""
    unit = "percentage points" if is_percent(metric) else "loss units"
    folded = any(c.folds for c in comparisons)
    pairing = ("paired over seeds" if not folded else
               "paired over folds and repeats (corrected resampled t: the folds share training data)"
               if all(c.folds for c in comparisons) else "paired over seeds, or over folds with the corrected resampled t")
    return (f"Difference in {words(metric)} ({unit}), variant minus baseline, {pairing}. "
            "Two 95% intervals: unadjusted (this comparison alone), and Holm-adjusted (at the level Holm's "
            "correction tested it at, 1 - 0.05 x p / p(Holm); it excludes zero exactly when the verdict is clear)"
            + ("; intervals are clipped to the possible range" if is_percent(metric) else "")
            + ". p-values from the paired t-test, Holm-adjusted over the table. P(better): the share of paired "
            "runs where the variant did better, ties counting half. 'no clear difference' when the Holm-adjusted "
            "p is 0.05 or more.")


def format_comparisons(comparisons: Sequence[Comparison], metric: str) -> str:
    """A text table of comparisons (accuracy differences in percentage points)."""
    if not comparisons:
        return "Nothing to compare: each architecture has a single variant with finished runs."
    lines = text_table(COMPARISON_COLUMNS, [comparison_cells(c) for c in comparisons])
    lines.append(comparison_note(comparisons, metric))
    return "\n".join(lines)


def comparison_dict(c: Comparison) -> dict[str, Any]:
    """One comparison as plain data (``cnnlab compare --json``)."""
    d, adjusted = c.test.difference, c.adjusted
    return {
        "baseline": c.baseline, "configuration": c.variant, "metric": c.metric, "n": c.n,
        "folds": c.folds, "repeats": c.repeats, "method": d.method,
        "difference": d.mean, "ci_low": d.low, "ci_high": d.high,
        "holm_ci_low": None if adjusted is None else adjusted.low,
        "holm_ci_high": None if adjusted is None else adjusted.high,
        "holm_level": None if adjusted is None else adjusted.level,
        "p": c.test.p, "p_holm": c.p_holm, "probability_of_improvement": c.probability,
        "detectable_difference": c.detectable, "repeats_needed": c.repeats_needed, "verdict": c.verdict,
    }
