"""Everything the analysis says about one study, computed from the store alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from cnnlab.analysis.comparisons import Comparison, RunResult, compare, run_results
from cnnlab.analysis.findings import Finding, study_findings
from cnnlab.analysis.selection import Selection, select_best
from cnnlab.analysis.tables import ResultRow, result_rows
from cnnlab.records import Results


@dataclass
class StudyAnalysis:
    study: str
    rows: list[ResultRow]
    results: list[RunResult]
    comparisons: list[Comparison]  # on the selection metric
    gap_comparisons: list[Comparison]  # on the train-validation gap at the best epoch
    selection: Optional[Selection]
    final: Optional[RunResult]
    findings: list[Finding]


def analyze(store: Results, study: Optional[str] = None, metric: Optional[str] = None) -> StudyAnalysis:
    """Tables, paired comparisons against each architecture's baseline variant, the selection on
    validation, the final test and the findings."""
    record = store.study(study)
    metric = metric or record.setting("evaluate", "select", default="val_accuracy")
    baseline = record.setting("evaluate", "baseline")
    results = run_results(store, record.name)
    pairs = [tuple(p) for p in record.setting("evaluate", "compare", default=[])]
    comparisons = compare(results, metric, baseline, pairs=pairs)
    gaps = compare(results, "gap", baseline)
    selection = select_best(results, metric if metric.startswith("val_") else "val_accuracy")
    final = next((r for r in results if r.phase == "final"), None)
    findings = study_findings(results, comparisons + gaps, selection, final)
    return StudyAnalysis(record.name, result_rows(store.runs(record.name)), results, comparisons, gaps,
                         selection, final, findings)
