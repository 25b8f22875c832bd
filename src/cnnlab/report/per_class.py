"""The best configuration's scores per class, placed under its confusion matrix: precision, recall
and F1 beside the matrix (a figure and a table), top-5 accuracy past 10 classes, and, when the
spec asks (``explain.confusion: [best, baseline]``), its matrix beside its baseline's.
"""

from __future__ import annotations

from cnnlab.analysis.classes import TOP_K, class_scores
from cnnlab.explain.confusion import RunConfusion, accuracy_words, draw_class_scores, draw_confusion_pair
from cnnlab.report.data import SPLIT_WORDS, ReportData
from cnnlab.report.document import Block, Cell, Figure, Note, Paragraph, Subheading, Table, count, percent, text


def per_class_blocks(data: ReportData) -> list[Block]:
    """The blocks, or none when the best run has no confusion matrix (the section says why)."""
    evaluation = data.evaluation
    if evaluation is None:
        return []
    blocks: list[Block] = []
    if evaluation.confusion is not None:
        run = RunConfusion(f"{evaluation.configuration} (run {evaluation.run_id})", evaluation.split or "",
                           list(evaluation.class_names), evaluation.confusion, evaluation.top_k)
        split = SPLIT_WORDS.get(run.split, run.split)
        blocks.append(Subheading("Confusion matrix and precision, recall and F1 per class", "class-scores"))
        if run.top_k is not None:
            blocks.append(Paragraph(f"With {len(run.class_names)} classes, top-{TOP_K} accuracy (the true class among "
                                    f"the {TOP_K} most probable) says how near the misses are: {accuracy_words(run)}."))
        blocks.append(Figure("class-scores", draw_class_scores(run).png,
                             f"Confusion matrix of {evaluation.configuration} on the {split} split, row-normalized, with "
                             "each class's precision, recall and F1", f"Confusion matrix on the {split} split "
                             f"({int(run.confusion.sum()):,} images), rows the true class in % of its images "
                             "(the diagonal is each class's recall); beside it, per class, precision (of the images "
                             "predicted as it, the share right), recall and F1 (their harmonic mean)."))
        blocks.append(_scores_table(run, split))
        blocks += _frequent_confusions(run)
    blocks += _pair_blocks(data)
    return blocks


def _most_confused_with(run: RunConfusion, index: int) -> str:
    mistakes = run.confusion[index].copy()
    mistakes[index] = 0
    other = int(mistakes.argmax())
    return f"{run.class_names[other]} ({int(mistakes[other])})" if mistakes[other] else ""


def _scores_table(run: RunConfusion, split: str) -> Table:
    scores = class_scores(run.confusion)
    rows = [[text(name), count(int(scores.support[i])), count(int(scores.predicted[i])),
             percent(float(scores.precision[i]), 1), percent(float(scores.recall[i]), 1), percent(float(scores.f1[i]), 1),
             text(_most_confused_with(run, i))]
            for i, name in enumerate(run.class_names)]
    macro = scores.macro
    rows.append([Cell("macro average", None), count(int(scores.support.sum())), count(int(scores.predicted.sum())),
                 percent(macro["precision"], 1), percent(macro["recall"], 1), percent(macro["f1"], 1), text("")])
    return Table(["class", "images", "predicted as it", "precision %", "recall %", "F1 %", "most often predicted instead"],
                 rows, anchor="class-scores-table", sortable=True,
                 caption=f"Per-class precision, recall (the class's accuracy) and F1 on the {split} split",
                 titles={"precision %": "of the images predicted as this class, the share that are it",
                         "recall %": "of this class's images, the share predicted as it",
                         "F1 %": "the harmonic mean of precision and recall",
                         "predicted as it": "images the model assigned to this class"})


def _frequent_confusions(run: RunConfusion) -> list[Block]:
    names = run.class_names
    pairs = sorted(((int(run.confusion[t, p]), names[t], names[p]) for t in range(len(names))
                    for p in range(len(names)) if t != p and run.confusion[t, p]), key=lambda item: -item[0])
    if not pairs:
        return []
    top = ", ".join(f"{true} as {predicted} ({n})" for n, true, predicted in pairs[:5])
    return [Note(f"Most frequent confusions (true as predicted): {top}.")]


def _pair_blocks(data: ReportData) -> list[Block]:
    if data.confusion_pair is None:
        reason = data.confusion_pair_reason
        return [Note(f"No side-by-side confusion matrices: {reason}.")] if reason else []
    best, baseline = data.confusion_pair
    split = SPLIT_WORDS.get(best.split, best.split)
    return [Subheading("The best configuration beside its baseline", "confusion-pair"),
            Figure("confusion-best-baseline", draw_confusion_pair(best, baseline).png,
                   f"Confusion matrices of {best.label} and {baseline.label} side by side",
                   f"Both on the {split} split, rows the true class in % of its images, one colour scale: where the "
                   "best configuration gains on its baseline shows as a darker diagonal."),
            Note("Each run stands for its configuration by the best-run rule: its final retrain, else its median "
                 "repeat; the matrices share a split, so the same images are counted in both.")]
