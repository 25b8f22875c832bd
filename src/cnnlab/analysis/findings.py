"""Findings: short sentences generated from the statistics, each with its numbers and how sure it is.

A difference whose Holm-adjusted p is 0.05 or more (so its Holm-adjusted interval includes
zero) is reported as "no clear difference", never as a win, with the smallest difference the
pairs could have found at 80% power and the repeats the observed difference would need, so
"no effect" reads apart from "too few seeds"; one seed gives no interval and says so. Folds are
counted as folds and repeats, never as seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from cnnlab.analysis.comparisons import Comparison, RunResult, pairing_words
from cnnlab.analysis.selection import Selection
from cnnlab.analysis.statistics import Interval
from cnnlab.metrics import format_value, is_percent, words

# Validation loss this much above its minimum by the end counts as having risen.
RISE = 0.05


@dataclass(frozen=True)
class Finding:
    kind: str  # selection | final | comparison | overfitting | note
    text: str
    clear: Optional[bool] = None  # True: a clear effect; False: none found; None: not a test


def _value(metric: str, value: float) -> str:
    return format_value(metric, value, sentence=True, percent_sign=True)


def _points(metric: str, value: float) -> str:
    return format_value(metric, abs(value), sentence=True) + (" points" if is_percent(metric) else "")


def _ci(metric: str, interval: Interval) -> str:
    return (f"95% CI {format_value(metric, interval.low, sentence=True)} to "
            f"{format_value(metric, interval.high, sentence=True)}")


def _power(c: Comparison) -> str:
    """For a "no clear difference": what these pairs could have found, and what would find this one."""
    detectable = c.detectable
    if detectable is None:
        return ""
    unit = "seeds" if not c.folds else "repeats of the folds"
    text = (f" These {c.pairing} would find a true difference of {_points(c.metric, detectable)} with 80% "
            f"probability (5% level, before Holm)")
    needed = c.repeats_needed
    if c.test.difference.mean == 0.0:
        return text + "."
    observed = _points(c.metric, c.test.difference.mean)
    if needed is None:
        floor = " (more repeats cannot remove the spread the folds' shared training data leaves)" if c.folds else ""
        return text + f"; no number of {unit} up to 1000 would find the observed {observed} that often{floor}."
    if needed <= max(c.repeats, 1):
        return text + "."
    return text + f"; finding the observed {observed} that often would take about {needed} {unit}."


def _chance(c: Comparison) -> str:
    win = c.probability
    return "" if win is None else f"; it did better on {100 * win:.0f}% of the {'pairs' if c.folds else 'seeds'}"


def comparison_finding(c: Comparison) -> Finding:
    d = c.test.difference
    said = words(c.metric)
    if c.same_group:
        subject = "On " + c.architecture + ("".join(f", {k}={v}" for k, v in c.sweep.items()) if c.sweep else "") + ", "
        variant, baseline = c.variant_name, c.baseline_name
    else:
        # Two architectures (or sweep points): a variant name alone would not say which is which.
        subject, variant, baseline = "", c.variant, c.baseline
    if c.n < 2:
        return Finding("comparison", f"{subject}'{variant}' against '{baseline}': {'+' if d.mean >= 0 else '-'}"
                       f"{_points(c.metric, d.mean)} in {said}, one seed: no interval, no conclusion.", None)
    adjusted = c.adjusted
    # Both intervals, labelled: the unadjusted one can exclude zero while Holm's verdict is
    # "no clear difference"; the Holm-adjusted one agrees with the verdict.
    holm_ci = "" if adjusted is None or adjusted.low is None or d.std == 0.0 else (
        f" unadjusted, {format_value(c.metric, adjusted.low, sentence=True)} to "
        f"{format_value(c.metric, adjusted.high, sentence=True)} Holm-adjusted")
    # A zero-width interval (every pair moved by the same amount) says nothing; the sign test decides.
    spread = "every pair differed by the same amount, sign test" if d.std == 0.0 else _ci(c.metric, d) + holm_ci
    numbers = f"({spread}, p = {c.p_holm:.2g} Holm-adjusted, {c.pairing}{_chance(c)})"
    if c.better is None:
        return Finding("comparison", f"{subject}'{variant}' made no clear difference to {said} against "
                       f"'{baseline}': {'+' if d.mean >= 0 else '-'}{_points(c.metric, d.mean)} {numbers}."
                       + _power(c), False)
    direction = "raised" if d.mean > 0 else "lowered"
    return Finding("comparison", f"{subject}'{variant}' {direction} {said} by {_points(c.metric, d.mean)} "
                   f"against '{baseline}' {numbers}.", True)


def selection_finding(selection: Selection, validated_on_test: bool = False) -> Finding:
    i = selection.interval
    runs = f"{i.n} runs"
    folded = [r for r in selection.runs if r.fold is not None]
    if folded:
        runs = pairing_words(i.n, len({r.fold for r in folded}), len({r.repeat for r in folded}),
                             all(r.stratified is True for r in folded)) + ", corrected resampled t"
    spread = f" ({_ci(selection.metric, i)}, {runs})" if i.low is not None else " (one run: no interval)"
    return Finding("selection", f"Best on {words(selection.metric)}: {selection.configuration}, "
                   f"{_value(selection.metric, i.mean)}{spread}; " + (
                       "chosen on the test split, which served as validation data (evaluate.validate_on: test), so "
                       "this number is optimistic." if validated_on_test else "chosen without looking at any test number."))


def final_finding(selection: Selection, final: RunResult) -> Finding:
    return _final_words(selection.configuration, selection.epochs, bool(selection.lr_path), final)


def later_final_finding(final: RunResult) -> Finding:
    """A further final (study B's second, chosen by its own rule among the rest), from its run alone."""
    rates = {epoch.get("lr") for epoch in final.history} - {None}
    return _final_words(final.configuration.removesuffix(" (final)") + " (a further final)", len(final.history),
                        len(rates) > 1, final)


def _final_words(configuration: str, epochs: int, varying_rate: bool, final: RunResult) -> Finding:
    test = final.metrics.get("test_accuracy")
    if test is None:
        return Finding("note", "The final retrain has no test split to measure.")
    rate = "at the per-epoch median learning rate of the selected runs" if varying_rate else "at a constant learning rate"
    # A retrain that kept a validation split trained on train alone (evaluate.retrain_on: train).
    on = "train" if final.val_size else "train+val"
    return Finding("final", f"{configuration} retrained on {on} for {epochs} epochs {rate}: "
                   f"test accuracy {_value('test_accuracy', test)} (measured once, on the test split no choice saw).")


def _mean_curve(histories: Sequence[list[dict]], key: str) -> list[float]:
    length = min(len(h) for h in histories)
    curve = []
    for epoch in range(length):
        values = [h[epoch].get(key) for h in histories]
        if any(v is None for v in values):
            return []
        curve.append(sum(values) / len(values))
    return curve


def overfitting_findings(results: Sequence[RunResult]) -> list[Finding]:
    """Per configuration: epoch of best validation accuracy, the gap there, and whether validation
    loss rose while training loss fell (averaged over repeats)."""
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        if result.phase == "select" and result.history:
            groups.setdefault(result.configuration, []).append(result)
    findings, steady = [], []
    for name, members in groups.items():
        histories = [m.history for m in members]
        val_acc, train_acc = _mean_curve(histories, "val_accuracy"), _mean_curve(histories, "train_accuracy")
        val_loss, train_loss = _mean_curve(histories, "val_loss"), _mean_curve(histories, "train_loss")
        if not (val_acc and train_acc and val_loss and train_loss):  # a curve some epoch lacks: nothing to say
            continue
        best = max(range(len(val_acc)), key=lambda e: (val_acc[e], -e))
        gap = train_acc[best] - val_acc[best]
        low = min(range(len(val_loss)), key=lambda e: val_loss[e])
        rose = val_loss[-1] > val_loss[low] * (1 + RISE) and train_loss[-1] < train_loss[low]
        where = f"best validation accuracy at epoch {best + 1} of {len(val_acc)}, gap there {100 * gap:.1f} points"
        if rose:
            findings.append(Finding("overfitting", (
                f"{name} overfits: validation loss rose from {val_loss[low]:.3g} (epoch {low + 1}) to {val_loss[-1]:.3g} "
                f"while training loss fell from {train_loss[low]:.3g} to {train_loss[-1]:.3g}; {where}"
                + (f" (mean of {len(members)} runs)." if len(members) > 1 else "."))))
        else:
            steady.append(f"{name} ({where})")
    if steady:
        findings.append(Finding("overfitting", "No overfitting seen (validation loss did not rise while training loss "
                                "fell) in: " + "; ".join(steady) + "."))
    return findings


def study_findings(results: Sequence[RunResult], comparisons: Sequence[Comparison], selection: Optional[Selection],
                   final: Optional[RunResult], validated_on_test: bool = False) -> list[Finding]:
    """Everything worth saying, most important first: the choice, its test, the clear effects,
    the non-effects, then overfitting diagnoses."""
    out: list[Finding] = []
    if selection is not None:
        out.append(selection_finding(selection, validated_on_test))
        if final is not None:
            out.append(final_finding(selection, final))
            out += [later_final_finding(r) for r in results if r.phase == "final" and r.run_id != final.run_id]
    # The gap is a secondary measure: only its clear effects are worth a sentence (the
    # comparison tables show every one).
    shown = [c for c in comparisons if c.metric != "gap" or c.better is not None]
    ranked = sorted(shown, key=lambda c: (c.better is None, c.n < 2, c.p_holm if c.p_holm is not None else 2.0))
    out += [comparison_finding(c) for c in ranked]
    out += overfitting_findings(results)
    return out


__all__ = ["Finding", "study_findings", "comparison_finding", "overfitting_findings"]
