"""What a study's results say: tables, the selection on validation, statistics over seeds,
paired comparisons and findings, computed from the store's records alone."""

from cnnlab.analysis.comparisons import Comparison, RunResult, compare, format_comparisons, run_results
from cnnlab.analysis.findings import Finding, study_findings
from cnnlab.analysis.selection import (
    BEST_RUN_RULE, Selection, SelectionRules, best_run_id, final_config, lr_path_words, median_lr_path, select_best,
    select_finals, study_choice,
    study_best_run_id,
)
from cnnlab.analysis.comparisons import comparison_dict, fold_correction, pairing_words
from cnnlab.analysis.statistics import (
    Interval, PairedTest, detectable_difference, difference_bounds, holm, holm_level, mean_interval, metric_bounds,
    paired_power, paired_t_test, probability_of_improvement, repeats_needed,
)
from cnnlab.analysis.study import StudyAnalysis, analyze
from cnnlab.analysis.tables import ResultRow, format_results, result_rows

__all__ = [
    "BEST_RUN_RULE", "best_run_id", "lr_path_words", "median_lr_path", "study_best_run_id",
    "Comparison", "Finding", "Interval", "PairedTest", "ResultRow", "RunResult", "Selection", "StudyAnalysis",
    "analyze", "compare", "final_config", "format_comparisons", "format_results", "holm", "mean_interval",
    "paired_t_test", "result_rows", "run_results", "select_best", "select_finals", "study_choice", "study_findings", "Selection",
    "SelectionRules",
    "comparison_dict", "detectable_difference", "difference_bounds", "fold_correction", "holm_level", "metric_bounds",
    "paired_power", "pairing_words", "probability_of_improvement", "repeats_needed",
]
