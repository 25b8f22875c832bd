"""The best configuration beside its baseline (the spec's ``explain.confusion: [best, baseline]``):
which two runs, on which split both measured, read from their stored predictions.

Both matrices must come from one split, or the pair would compare two different exams. The
best run is the report's (its final retrain, when the study has one); a retrain measures only
the test split, so when the baseline did not measure it too, the best configuration's median
repeat stands in, on validation.
"""

from __future__ import annotations

from typing import Any, Optional

from cnnlab.analysis.representative import baseline_configuration, configuration_run_id
from cnnlab.errors import CnnlabError
from cnnlab.explain.confusion import RunConfusion, run_confusion

SPLITS = ("test", "val")


def confusion_pair(store: Any, data: Any) -> tuple[Optional[tuple[RunConfusion, RunConfusion]], Optional[str]]:
    """(best, baseline) confusions on one split, or None and why not (one line, for the report)."""
    evaluation, analysis = data.evaluation, data.analysis
    if evaluation is None or analysis is None or analysis.selection is None:
        return None, "no configuration is selected, so there is no best configuration to set beside its baseline"
    metric = analysis.selection.metric
    baseline = baseline_configuration(analysis.results, evaluation.configuration,
                                      data.study.setting("evaluate", "baseline"))
    if baseline is None:
        return None, (f"the best configuration, {evaluation.configuration}, is its architecture's baseline variant "
                      "(or the only one with finished runs), so there is no other to set beside it")
    try:
        baseline_id = configuration_run_id(analysis.results, baseline, metric)
        candidates = list(dict.fromkeys([evaluation.run_id,
                                         configuration_run_id(analysis.results, evaluation.configuration, metric)]))
        base_predictions = store.load_predictions(baseline_id)
        for run_id in candidates:
            predictions = store.load_predictions(run_id)
            split = next((s for s in SPLITS if _has(predictions, s) and _has(base_predictions, s)), None)
            if split is None:
                continue
            names = _names(data, run_id)
            best = run_confusion(predictions, names, f"best: {evaluation.configuration} (run {run_id})", (split,))
            other = run_confusion(base_predictions, _names(data, baseline_id), f"baseline: {baseline} (run {baseline_id})",
                                  (split,))
            return (best, other), None
    except CnnlabError as error:  # a damaged predictions file: the pair is left out, the report goes on
        return None, str(error).rstrip(".")
    return None, f"the best configuration and its baseline ({baseline}) have no split measured by both"


def _has(predictions: Any, split: str) -> bool:
    found = getattr(predictions, "splits", {}) if predictions is not None else {}
    return split in found and len(found[split].labels) > 0


def _names(data: Any, run_id: str) -> list[str]:
    run = next((r for r in data.runs if r.id == run_id), None)
    return [str(name) for name in (run.class_names if run is not None and run.class_names else [])]
