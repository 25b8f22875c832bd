"""Everything the analysis says about one study, computed from the store alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from cnnlab.analysis.comparisons import Comparison, RunResult, compare, run_results
from cnnlab.analysis.findings import Finding, study_findings
from cnnlab.analysis.selection import Selection, SelectionRules, select_best, study_choice
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
    final: Optional[RunResult]  # the first final's run (the retrain of ``selection``)
    findings: list[Finding]
    # Every final, in the order the spec's rules chose them (study B retrains two), and their runs.
    finals: list[Selection] = field(default_factory=list)
    final_runs: list[RunResult] = field(default_factory=list)


def analyze(store: Results, study: Optional[str] = None, metric: Optional[str] = None) -> StudyAnalysis:
    """Tables, paired comparisons against each architecture's baseline variant, the selection on
    validation, the final test and the findings."""
    record = store.study(study)
    metric = metric or record.setting("evaluate", "select", default="val_accuracy")
    baseline = record.setting("evaluate", "baseline")
    results = run_results(store, record.name)
    pairs = [tuple(p) for p in record.setting("evaluate", "compare", default=[])]
    comparisons = compare(results, metric, baseline, pairs=pairs)
    gaps = compare(results, "gap", baseline) if metric != "gap" else []
    rules = SelectionRules.from_spec(record.spec)
    if metric == rules.metric:
        selection, finals = study_choice(results, rules)
    else:  # another metric asked for (cnnlab compare --metric): its best, and the study's finals
        chosen = metric if metric.startswith("val_") or metric == "gap" else "val_accuracy"
        selection, finals = select_best(results, chosen, rules), study_choice(results, rules)[1]
    final_runs = [run for choice in finals for run in results if run.phase == "final" and run.configuration ==
                  choice.configuration + " (final)"]
    # The final of the chosen configuration, never another one's: its test number is the choice's.
    final = next((r for r in results if selection is not None and r.phase == "final"
                  and r.configuration == selection.configuration + " (final)"), None)
    findings = study_findings(results, comparisons + gaps, selection, final,
                              record.setting("evaluate", "validate_on") == "test")
    return StudyAnalysis(record.name, result_rows(store.runs(record.name), store.epochs), results, comparisons, gaps,
                         selection, final, findings, finals, final_runs)
