"""The report's sections on how sure the conclusions are: findings (first), paired comparisons,
and k-fold cross-validation."""

from __future__ import annotations

from typing import Optional

from cnnlab.analysis.comparisons import (
    COMPARISON_COLUMNS,
    Comparison,
    comparison_cells,
    comparison_note,
    fold_correction,
    pairing_words,
)
from cnnlab.analysis.statistics import mean_interval
from cnnlab.metrics import words
from cnnlab.report import figures
from cnnlab.report.configuration_figures import draw_per_fold
from cnnlab.report.data import Curve, ReportData
from cnnlab.report.document import Block, Cell, Figure, Note, Paragraph, Section, Table, section, text
from cnnlab.report.known_effects import curve_context

HOW_TO_READ = ("Differences are paired over seeds (and folds): repeat k uses the same seed, data order and folds in "
               "every configuration. Over seeds, intervals are 95% Student t-intervals of the mean and p-values come "
               "from a paired t-test; over k folds x r repeats, whose scores share most of their training data, both "
               "use the corrected resampled t (Nadeau and Bengio 2003; Bouckaert and Frank 2004). p-values are "
               "Holm-adjusted over each table, and the Holm-adjusted interval (at the level Holm tested the "
               "comparison at) excludes zero exactly when the verdict is clear; a difference whose adjusted p is 0.05 "
               "or more is reported as no clear difference. Accuracy intervals are clipped to 0 to 100% (a clipped "
               "interval covers the true mean exactly when the unclipped one does). P(better) is the share of paired "
               "runs the variant won, ties counting half (the probability of improvement).")


@section(order=15)
def findings(data: ReportData) -> Section:
    title = "Findings"
    analysis = data.analysis
    if analysis is None or not analysis.findings:
        return Section.absent("findings", title, "no run has finished, so there is nothing to conclude yet.")
    blocks: list[Block] = []
    for kind in ("selection", "final", "comparison", "overfitting"):
        items = [f for f in analysis.findings if f.kind == kind]
        blocks += [Paragraph(("• " if kind in ("comparison", "overfitting") else "") + f.text) for f in items]
    if any(c.n < 2 for c in analysis.comparisons):
        blocks.append(Note("Single runs cannot tell an effect from seed noise: set repeats: 3 or more in the spec."))
    blocks.append(Note(HOW_TO_READ))
    return Section("findings", title, blocks)


def _comparison_table(comparisons: list[Comparison], metric: str, anchor: str) -> Table:
    rows = []
    for comparison in comparisons:
        cells = comparison_cells(comparison)
        d = comparison.test.difference
        rows.append([text(cells[0]), Cell(cells[1], comparison.n, True), Cell(cells[2], d.mean, True), text(cells[3]),
                     text(cells[4]), Cell(cells[5], comparison.test.p, True), Cell(cells[6], comparison.p_holm, True),
                     Cell(cells[7], comparison.probability, True), text(cells[8])])
    return Table(list(COMPARISON_COLUMNS), rows, anchor=anchor, sortable=True,
                 caption=comparison_note(comparisons, metric))


@section(order=25)
def comparisons(data: ReportData) -> Section:
    title = "Comparisons"
    analysis = data.analysis
    if analysis is None or not analysis.comparisons:
        return Section.absent("comparisons", title, "each architecture has a single configuration with finished runs, "
                              "so there is nothing to compare.")
    metric = analysis.comparisons[0].metric
    blocks: list[Block] = [
        Paragraph(f"Each variant against the baseline variant of the same architecture (and sweep point), "
                  f"on {words(metric)}."),
        _comparison_table(analysis.comparisons, metric, "comparisons-table"),
    ]
    if analysis.gap_comparisons:
        blocks += [Paragraph("The same on the overfitting gap: training minus validation accuracy at the best epoch "
                             "(lower is better)."),
                   _comparison_table(analysis.gap_comparisons, "gap", "gap-table")]
    blocks.append(Note(HOW_TO_READ))
    return Section("comparisons", title, blocks)


@section(order=35)
def cross_validation(data: ReportData) -> Section:
    title = "Cross-validation"
    kfold = data.study.setting("evaluate", "kfold", default=0)
    # An int cross-validates every configuration; {folds, on} some of them, as an experiment (phase kfold).
    experiment = isinstance(kfold, dict) and bool(kfold.get("on"))
    kfold = int(kfold.get("folds") or 0) if isinstance(kfold, dict) else int(kfold or 0)
    if kfold < 2:
        return Section.absent("kfold", title, "the study uses a fixed validation split (evaluate.kfold is 0).")
    results = [r for r in (data.analysis.results if data.analysis else [])
               if r.phase in ("select", "kfold") and r.fold is not None]
    if not results:
        return Section.absent("kfold", title, "no fold has finished yet.")
    by_config: dict[str, list] = {}
    for result in results:
        by_config.setdefault(result.configuration, []).append(result)
    rows, curves, per_fold = [], [], []
    for name, members in by_config.items():
        values = [m.metrics["val_accuracy"] for m in members if "val_accuracy" in m.metrics]
        losses = [m.metrics["val_loss"] for m in members if "val_loss" in m.metrics]
        interval = mean_interval(values, metric="val_accuracy", **fold_correction(members))
        spread = interval.std if interval.std is not None else 0.0
        ci = "" if interval.low is None else f"{100 * interval.low:.2f} to {100 * interval.high:.2f}"
        rows.append([text(name), Cell(str(len(members)), len(members), True),
                     Cell(f"{100 * interval.mean:.2f}", interval.mean, True), text(ci),
                     Cell(f"{100 * spread:.2f}", spread, True),
                     _range(values), Cell(f"{sum(losses) / len(losses):.4f}" if losses else "", None, True)])
        for member in sorted(members, key=lambda m: (m.repeat, m.fold)):
            curves.append(_fold_curve(member, name))
            accuracy, loss = member.metrics.get("val_accuracy"), member.metrics.get("val_loss")
            per_fold.append([text(name), Cell(str(member.fold + 1), member.fold, True),
                             Cell(str(member.repeat), member.repeat, True),
                             Cell("" if accuracy is None else f"{100 * accuracy:.2f}", accuracy, True),
                             Cell("" if loss is None else f"{loss:.4f}", loss, True)])
    stratified = data.study.setting("dataset", "split", "stratify", default=True) is True
    repeats = len({r.repeat for r in results})
    blocks: list[Block] = [
        Paragraph(f"Cross-validation over {pairing_words(len(results), kfold, repeats, stratified)}: every fold is once the validation split; "
                  "folds are the same for every configuration. The folds share most of their training data, so the "
                  "interval is the corrected resampled t (Nadeau and Bengio 2003; for repeats, Bouckaert and Frank "
                  "2004: variance x (1/(k r) + n_val/n_train), k r - 1 degrees of freedom), clipped to 0 to 100%."),
        Table(["configuration", "folds", "mean val acc %", "95% CI (corrected)", "std (points)", "min to max",
               "mean val loss"], rows, anchor="kfold-table", sortable=True),
        Table(["configuration", "fold", "repeat", "val acc %", "val loss"], per_fold, anchor="kfold-folds",
              sortable=True),
    ]
    if experiment:
        blocks.insert(0, Paragraph("These configurations were cross-validated as an experiment beside the study "
                                   "(evaluate.kfold.on): the other configurations, and selection, use the fixed split."))
    if per_fold:
        blocks.append(Figure("kfold-per-fold", draw_per_fold(per_fold_points(results)).png,
                             "Accuracy and loss per fold",
                             "Validation accuracy and loss of each fold's final weights, one marker per fold; "
                             "the line is the mean over folds."))
    if curves and len(curves) <= 60:
        blocks.append(Figure("kfold-curves", figures.draw_small_multiples(curves, "accuracy", columns=5,
                                                                         context=curve_context(data)),
                             "Per-fold learning curves", "Accuracy per fold: train (solid) and validation (dashed)."))
    elif curves:
        blocks.append(Note(f"{len(curves)} folds in all: too many to draw one panel each."))
    return Section("kfold", title, blocks)


def per_fold_points(results: list) -> dict[str, list[tuple[int, float, float]]]:
    """(fold number from 1, val accuracy, val loss) per configuration, for the per-fold figure."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for r in sorted(results, key=lambda r: (r.repeat, r.fold)):
        if "val_accuracy" in r.metrics and "val_loss" in r.metrics:
            out.setdefault(r.configuration, []).append((r.fold + 1, r.metrics["val_accuracy"], r.metrics["val_loss"]))
    return out


def _range(values: list[float]) -> Cell:
    return Cell(f"{100 * min(values):.2f} to {100 * max(values):.2f}", min(values), False) if values else Cell("", None)


def _fold_curve(result, name: str) -> Curve:
    metrics = ("train_accuracy", "val_accuracy", "train_loss", "val_loss")
    mean = {m: [e.get(m) for e in result.history] for m in metrics}
    label = f"{name} fold {result.fold}" + (f" repeat {result.repeat}" if result.repeat else "")
    best: Optional[float] = None
    values = mean["val_accuracy"]
    if values and all(v is not None for v in values):
        best = float(max(range(len(values)), key=lambda e: (values[e], -e)) + 1)
    return Curve(label, result.architecture, result.variant, result.sweep, 1, list(range(1, len(result.history) + 1)),
                 mean, {}, {}, best)
