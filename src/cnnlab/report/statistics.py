"""The report's sections on how sure the conclusions are: findings (first), paired comparisons,
and k-fold cross-validation."""

from __future__ import annotations

from typing import Optional

from cnnlab.analysis.comparisons import COMPARISON_COLUMNS, Comparison, comparison_cells
from cnnlab.analysis.statistics import mean_interval
from cnnlab.metrics import is_percent, words
from cnnlab.report import figures
from cnnlab.report.data import Curve, ReportData
from cnnlab.report.document import Block, Cell, Figure, Note, Paragraph, Section, Table, section, text

HOW_TO_READ = ("Differences are paired over seeds (and folds): repeat k uses the same seed, data order and folds in "
               "every configuration. Intervals are 95% Student t-intervals of the mean; p-values come from a paired "
               "t-test and are Holm-adjusted over each table. A difference whose interval includes zero, or whose "
               "adjusted p is 0.05 or more, is reported as no clear difference.")


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
                     Cell(cells[4], comparison.test.p, True), Cell(cells[5], comparison.p_holm, True), text(cells[6])])
    unit = "percentage points" if is_percent(metric) else "loss"
    return Table(list(COMPARISON_COLUMNS), rows, anchor=anchor, sortable=True,
                 caption=f"Difference in {words(metric)} ({unit}), variant minus baseline.")


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
    if kfold < 2:
        return Section.absent("kfold", title, "the study uses a fixed validation split (evaluate.kfold is 0).")
    results = [r for r in (data.analysis.results if data.analysis else []) if r.phase == "select" and r.fold is not None]
    if not results:
        return Section.absent("kfold", title, "no fold has finished yet.")
    by_config: dict[str, list] = {}
    for result in results:
        by_config.setdefault(result.configuration, []).append(result)
    rows, curves = [], []
    for name, members in by_config.items():
        values = [m.metrics["val_accuracy"] for m in members if "val_accuracy" in m.metrics]
        losses = [m.metrics["val_loss"] for m in members if "val_loss" in m.metrics]
        interval = mean_interval(values)
        spread = interval.std if interval.std is not None else 0.0
        rows.append([text(name), Cell(str(len(members)), len(members), True),
                     Cell(f"{100 * interval.mean:.2f}", interval.mean, True), Cell(f"{100 * spread:.2f}", spread, True),
                     _range(values), Cell(f"{sum(losses) / len(losses):.4f}" if losses else "", None, True)])
        for member in sorted(members, key=lambda m: (m.repeat, m.fold)):
            curves.append(_fold_curve(member, name))
    blocks: list[Block] = [
        Paragraph(f"{kfold}-fold stratified cross-validation: every fold is once the validation split; folds are the "
                  "same for every configuration."),
        Table(["configuration", "folds", "mean val acc %", "std (points)", "min to max", "mean val loss"], rows,
              anchor="kfold-table", sortable=True),
    ]
    if curves and len(curves) <= 60:
        blocks.append(Figure("kfold-curves", figures.draw_small_multiples(curves, "accuracy", columns=5),
                             "Per-fold learning curves", "Accuracy per fold: train (solid) and validation (dashed)."))
    elif curves:
        blocks.append(Note(f"{len(curves)} folds in all: too many to draw one panel each."))
    return Section("kfold", title, blocks)


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
