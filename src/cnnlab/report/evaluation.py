"""The report's section on the best configuration: confusion matrix, per-class scores, examples."""

from __future__ import annotations

from cnnlab.analysis.selection import BEST_RUN_RULE, lr_path_words
from cnnlab.metrics import format_value, words
from cnnlab.report import figures
from cnnlab.report.data import SPLIT_WORDS, ReportData
from cnnlab.report.document import Block, Figure, Note, Paragraph, Section, Subheading, section
from cnnlab.report.per_class import per_class_blocks


@section(order=50)
def best_configuration(data: ReportData) -> Section:
    title = "Best configuration"
    evaluation = data.evaluation
    if evaluation is None:
        return Section.absent("best", title, f"{data.evaluation_reason}, so there is no best configuration to examine.")
    metric_words = words(evaluation.metric)
    value = format_value(evaluation.metric, evaluation.value, percent_sign=True)
    what = "final retrain on train+val, run" if evaluation.retrained else "run"
    run_words = f"{what} {evaluation.run_id} (repeat {evaluation.repeat}" + (
        f", the median of its {evaluation.repeats} finished repeats on {metric_words})" if evaluation.repeats > 1 else ")")
    blocks: list[Block] = [Paragraph(
        f"{evaluation.configuration} has the best {metric_words} ({value}"
        + (f", mean of {evaluation.runs} runs" if evaluation.runs > 1 else "")
        + f"). The confusion matrix, per-class scores and examples below come from its {run_words}."),
        Note(BEST_RUN_RULE)]
    if evaluation.retrained:
        blocks.append(Note(_retrain_words(data, evaluation.run_id)))
    if evaluation.confusion is not None:
        split = SPLIT_WORDS[evaluation.split]
        blocks.append(Note(f"Chosen on validation; these are measured on the {split} split"
                           + (", which is never used to choose." if evaluation.split == "test" else ".")))
    else:
        blocks.append(Note(f"No confusion matrix: {evaluation.confusion_reason}."))
    # The confusion matrix with precision, recall and F1 beside it, the per-class table, top-5,
    # and the baseline's matrix beside the best's when the spec asks.
    blocks += per_class_blocks(data)
    examples = figures.draw_evaluation_examples(evaluation, figures.example_counts(data.spec))
    if examples is not None:
        split = SPLIT_WORDS.get(evaluation.examples_split or "", "evaluation")
        blocks.append(Subheading("Examples", "examples"))
        blocks.append(Figure("examples", examples.png_bytes,
                             f"Correctly and incorrectly classified {split} images with true and predicted class",
                             f"{split.capitalize()} images with their true class, the predicted class and the model's "
                             "confidence (softmax probability) in it; green when right, red when wrong.", scale=1.0))
        if "correct" in evaluation.examples and not any(k in evaluation.examples for k in ("wrong", "confident_wrong")):
            blocks.append(Note(f"No misclassified {split} images: every one was classified correctly."))
    else:
        blocks.append(Note(f"No example images: {evaluation.examples_reason}."))
    return Section("best", title, blocks)


def _retrain_words(data: ReportData, run_id: str) -> str:
    """What the final retrain did, read from its stored settings (epochs and learning rate)."""
    run = next((r for r in data.runs if r.id == run_id), None)
    train = ((run.config if run is not None else None) or {}).get("train") or {}
    epochs = train.get("epochs")
    budget = f" for {epochs} epochs (the selected runs' mean best epoch)" if epochs else ""
    return (f"The final retrain trained on train+val{budget}, without early stopping (no validation data "
            f"is left to watch), with {lr_path_words(train)}.")
