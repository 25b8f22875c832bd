"""The report's section on the best configuration: the rule that chose it, each final retrain
(study B has two) with its test result and its train and test curves, then the best's confusion
matrix, per-class scores and examples."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from cnnlab.analysis.selection import BEST_RUN_RULE, lr_path_words
from cnnlab.metrics import format_value, words
from cnnlab.report import figures
from cnnlab.report.data import SPLIT_WORDS, Final, ReportData, keras_loss
from cnnlab.report.document import Block, Caution, Facts, Figure, Note, Paragraph, Section, Subheading, section, slug
from cnnlab.report.known_effects import curve_context, loss_words, penalty_words, validation_warning
from cnnlab.report.per_class import per_class_blocks

# Said wherever a final's test curve is shown: it is drawn, never read.
TEST_AFTER_CHOICE = ("The test curve was measured after the choice was made (configuration, epochs and learning "
                     "rate were fixed on validation before the retrain began) and was never used for any choice.")
RULE_WORDS = {"val_accuracy": "the best validation accuracy", "val_loss": "the lowest validation loss",
              "gap": "the smallest train-validation gap (train minus validation accuracy at the best epoch, closest to zero either way)"}


@section(order=50)
def best_configuration(data: ReportData) -> Section:
    title = "Best configuration"
    evaluation = data.evaluation
    if evaluation is None:
        return Section.absent("best", title, f"{data.evaluation_reason}, so there is no best configuration to examine.")
    metric_words = words(evaluation.metric)
    value = format_value(evaluation.metric, evaluation.value, percent_sign=True)
    trained_on = next((f.trained_on for f in data.finals if f.run_id == evaluation.run_id), "train+val")
    what = f"final retrain on {trained_on}, run" if evaluation.retrained else "run"
    run_words = f"{what} {evaluation.run_id} (repeat {evaluation.repeat}" + (
        f", the median of its {evaluation.repeats} finished repeats on {metric_words})" if evaluation.repeats > 1 else ")")
    blocks: list[Block] = [Paragraph(
        f"{evaluation.configuration} has the best {metric_words} ({value}"
        + (f", mean of {evaluation.runs} runs" if evaluation.runs > 1 else "")
        + f"). The confusion matrix, per-class scores and examples below come from its {run_words}."),
        Note(BEST_RUN_RULE), Note(candidates_words(data))]
    warning = validation_warning(data.spec)
    if warning:
        blocks.insert(0, Caution(warning))
    blocks += final_blocks(data)
    if evaluation.retrained and not data.finals:  # a store whose spec names no finals: its one retrain
        blocks.append(Note(_retrain_words(data, evaluation.run_id)))
    if data.finals:
        blocks.append(Subheading(f"The best configuration: {evaluation.configuration}", "best-details"))
    if evaluation.confusion is not None:
        split = SPLIT_WORDS[evaluation.split]
        if warning:  # chosen on the test split, measured on it again
            blocks.append(Note(f"Chosen on validation, which was the test split; these are measured on the {split} "
                               "split, which the choice saw."))
        else:
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


def _retrain_words(data: ReportData, run_id: Optional[str], final: Optional[Final] = None) -> str:
    """What a final retrain did, read from its stored settings (data, epochs and learning rate)."""
    run = next((r for r in data.runs if r.id == run_id), None)
    config = (run.config if run is not None else None) or {}
    train = config.get("train") or {}
    epochs = train.get("epochs") or (final.epochs if final else None)
    source = ("as evaluate.final_epochs says" if final is not None and final.explicit_epochs
              else "the selected runs' mean best epoch")
    budget = f" for {epochs} epochs ({source})" if epochs else ""
    merged = final.trained_on == "train+val" if final is not None else config.get("merge_val", True)
    images = f" ({final.train_images:,} images)" if final is not None and final.train_images else ""
    on = ("train+val" + budget + ", without early stopping (no validation data is left to watch)"
          if merged else "train again" + budget + ", without early stopping")
    return f"The final retrain trained on {on}, with {lr_path_words(train)}{images}."


def candidates_words(data: ReportData) -> str:
    """Which configurations selection could choose: every one, less the variants that are never
    candidates and those outside the constraint."""
    rules = data.rules
    text = (f"Selection ranks the configurations by {words(rules.metric)} (the mean over their selection runs; "
            "no test number ever counts)")
    if rules.excluded:
        names = ", ".join(sorted(rules.excluded))
        text += f"; never candidates (candidate: false), trained and shown but never chosen: {names}"
    limits = ([f"at most {rules.max_params:,.0f} parameters"] if rules.max_params is not None else []) + (
        [f"at most {rules.max_train_seconds:g} s of training per run (mean over repeats)"]
        if rules.max_train_seconds is not None else [])
    if limits:
        text += "; the constraint (evaluate.constraint) leaves only configurations with " + " and ".join(limits)
    return text + "."


def final_blocks(data: ReportData) -> list[Block]:
    """One block per final retrain: the rule that chose it, what it trained on, its test result and
    its train and test curves."""
    if not data.finals:
        return []
    blocks: list[Block] = []
    if len(data.finals) > 1:
        rules = ", then ".join(RULE_WORDS.get(f.rule, words(f.rule)).split(" (")[0] for f in data.finals)
        blocks.append(Paragraph(f"{len(data.finals)} finals, each chosen on validation by its rule among the "
                                f"candidates not chosen before: {rules}. Each was retrained and its test split "
                                "measured; none of its test numbers was used for any choice."))
    context = curve_context(data)
    context = replace(context, labels={**context.labels, "test": "test (dotted), measured after the choice"})
    for final in data.finals:
        blocks += _final_block(data, final, context)
    return blocks


def _final_block(data: ReportData, final: Final, context) -> list[Block]:
    several = len(data.finals) > 1
    heading = f"Final {final.number} of {len(data.finals)}: {final.configuration}" if several \
        else f"Final retrain: {final.configuration}"
    rule = RULE_WORDS.get(final.rule, words(final.rule))
    gap = final.rule == "gap"
    shown = format_value(final.rule, final.value, sentence=True, signed=gap, percent_sign=not gap) \
        + (" points" if gap else "")
    runs = f"the mean of {final.runs} runs" if final.runs > 1 else "one run"
    limited = data.rules.max_params is not None or data.rules.max_train_seconds is not None
    limits = (["within the constraint"] if limited else []) + (["not chosen before"] if final.number > 1 else [])
    among = f"among the candidates {' and '.join(limits)}".strip()
    facts = [("Chosen by", f"{rule}, {among}: {shown} ({runs}); on validation only")]
    if final.run_id is None or final.status != "done":
        state = f"its retrain is {final.status}" if final.status else "its retrain has not run"
        facts.append(("Retrain", f"{state}, so it has no test result yet ('cnnlab run' again finishes it)."))
        return [Subheading(heading, f"final-{final.number}"), Facts(facts)]
    facts.append(("Trained", _retrain_words(data, final.run_id, final)))
    if final.test_accuracy is not None:
        loss = "" if final.test_loss is None else (
            f", test loss {final.test_loss:.4f}" + (f" (incl. {penalty_words(data.spec)}, as Keras reports it)"
                                                   if keras_loss(data.spec) else ""))
        saw = "; but the choice saw the test split, as its validation data" if validation_warning(data.spec) else ""
        facts.append(("Test", f"accuracy {100 * final.test_accuracy:.2f}%{loss}; measured after the choice, never "
                              f"used for any choice{saw}"))
    facts.append(("Run", final.run_id))
    blocks: list[Block] = [Subheading(heading, f"final-{final.number}"), Facts(facts)]
    if final.curve is not None:
        trained = f"retrained on {final.trained_on}"
        validation = any(v is not None for v in final.curve.mean.get("val_accuracy", []))
        splits = ["train"] + (["val"] if validation else []) + (["test"] if final.test_curve else [])
        png = figures.draw_overlay(final.curve.architecture, [final.curve], context, splits=splits,
                                   title=f"Final {final.number}: {final.configuration}, {trained}",
                                   notes=[TEST_AFTER_CHOICE] if final.test_curve else [])
        named = [context.labels[split] if split != "test" else "test (dotted)" for split in splits]
        curves = " and ".join([", ".join(named[:-1]), named[-1]]) if len(named) > 1 else named[0]
        caption = (f"Final {final.number}, {final.configuration} {trained}: {curves} accuracy and "
                   f"{loss_words(data.spec)}, per epoch. ")
        caption += TEST_AFTER_CHOICE if final.test_curve else (
            "No per-epoch test curve: the retrain measured the test split once, at its end.")
        blocks.append(Figure(f"final-{final.number}-{slug(final.configuration, 'final')}", png,
                             f"Train and test curves of final {final.number}, {final.configuration}", caption))
    return blocks
