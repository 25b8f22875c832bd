"""What a study's results say: tables, the selection on validation, statistics over seeds,
paired comparisons and findings, computed from the store's records alone."""

from cnnlab.analysis.comparisons import Comparison, RunResult, compare, format_comparisons, run_results
from cnnlab.analysis.findings import Finding, study_findings
from cnnlab.analysis.selection import Selection, final_config, select_best
from cnnlab.analysis.statistics import Interval, PairedTest, holm, mean_interval, paired_t_test
from cnnlab.analysis.study import StudyAnalysis, analyze
from cnnlab.analysis.tables import ResultRow, format_results, result_rows

__all__ = [
    "Comparison", "Finding", "Interval", "PairedTest", "ResultRow", "RunResult", "Selection", "StudyAnalysis",
    "analyze", "compare", "final_config", "format_comparisons", "format_results", "holm", "mean_interval",
    "paired_t_test", "result_rows", "run_results", "select_best", "study_findings",
]
