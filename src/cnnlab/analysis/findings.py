"""Findings: short sentences generated from the statistics, each with its numbers and how sure it is.

A difference whose interval includes zero (or whose Holm-adjusted p is 0.05 or more) is
reported as "no clear difference", never as a win; one seed gives no interval and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from cnnlab.analysis.comparisons import Comparison, RunResult
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


def _seeds(n: int) -> str:
    return f"{n} paired seed{'s' if n != 1 else ''}"


def comparison_finding(c: Comparison) -> Finding:
    d = c.test.difference
    subject = f"On {c.architecture}" + ("".join(f", {k}={v}" for k, v in c.sweep.items()) if c.sweep else "")
    variant, baseline = c.variant_name, c.baseline_name
    said = words(c.metric)
    if c.n < 2:
        return Finding("comparison", f"{subject}, '{variant}' against '{baseline}': {'+' if d.mean >= 0 else '-'}"
                       f"{_points(c.metric, d.mean)} in {said}, one seed: no interval, no conclusion.", None)
    numbers = f"({_ci(c.metric, d)}, p = {c.p_holm:.2g} Holm-adjusted, {_seeds(c.n)})"
    if c.better is None:
        return Finding("comparison", f"{subject}, '{variant}' made no clear difference to {said} against "
                       f"'{baseline}': {'+' if d.mean >= 0 else '-'}{_points(c.metric, d.mean)} {numbers}.", False)
    direction = "raised" if d.mean > 0 else "lowered"
    return Finding("comparison", f"{subject}, '{variant}' {direction} {said} by {_points(c.metric, d.mean)} "
                   f"against '{baseline}' {numbers}.", True)


def selection_finding(selection: Selection) -> Finding:
    i = selection.interval
    spread = f" ({_ci(selection.metric, i)}, {i.n} runs)" if i.low is not None else " (one run: no interval)"
    return Finding("selection", f"Best on {words(selection.metric)}: {selection.configuration}, "
                   f"{_value(selection.metric, i.mean)}{spread}; chosen without looking at any test number.")


def final_finding(selection: Selection, final: RunResult) -> Finding:
    test = final.metrics.get("test_accuracy")
    if test is None:
        return Finding("note", "The final retrain has no test split to measure.")
    return Finding("final", f"{selection.configuration} retrained on train+val for {selection.epochs} epochs: "
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
        if not val_acc:
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
                   final: Optional[RunResult]) -> list[Finding]:
    """Everything worth saying, most important first: the choice, its test, the clear effects,
    the non-effects, then overfitting diagnoses."""
    out: list[Finding] = []
    if selection is not None:
        out.append(selection_finding(selection))
        if final is not None:
            out.append(final_finding(selection, final))
    # The gap is a secondary measure: only its clear effects are worth a sentence (the
    # comparison tables show every one).
    shown = [c for c in comparisons if c.metric != "gap" or c.better is not None]
    ranked = sorted(shown, key=lambda c: (c.better is None, c.n < 2, c.p_holm if c.p_holm is not None else 2.0))
    out += [comparison_finding(c) for c in ranked]
    out += overfitting_findings(results)
    return out


__all__ = ["Finding", "study_findings", "comparison_finding", "overfitting_findings"]
