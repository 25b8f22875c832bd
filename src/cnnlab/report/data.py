"""Everything a report shows, gathered from the store into plain dataclasses (no drawing here).

The report is built from the store alone: the study record, the runs, their per-epoch metrics
and the prediction and example files each finished run left. Nothing is retrained; the only
model built is an untrained one per configuration, for its Keras-style summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

from cnnlab.analysis.classes import shows_top_k, top_k_accuracy
from cnnlab.analysis.selection import SelectionRules, best_run_id
from cnnlab.analysis.statistics import mean_interval
from cnnlab.analysis.study import analyze
from cnnlab.analysis.tables import ResultRow, result_rows
from cnnlab.errors import StoreError
from cnnlab.records import RunRecord, StudyRecord
from cnnlab.report.pairs import confusion_pair
from cnnlab.spec.plan import configuration_label
from cnnlab.store.artifacts import Examples

SPLIT_WORDS = {"val": "validation", "test": "test"}
LOSSES = ("train_loss", "val_loss", "test_loss")


def keras_loss(spec: Optional[dict[str, Any]]) -> bool:
    """Whether the report shows losses as Keras reports them, the kernel penalty added (``evaluate.keras_loss``)."""
    return bool(((spec or {}).get("evaluate") or {}).get("keras_loss"))


@dataclass
class Curve:
    """One configuration's per-epoch metrics: the mean over its finished repeats (1-based epochs),
    with the 95% t-interval of that mean where there are several."""

    configuration: str
    architecture: str
    variant: str
    sweep: dict[str, Any]
    runs: int
    epochs: list[int]
    mean: dict[str, list[Optional[float]]]  # metric -> value per epoch
    low: dict[str, list[Optional[float]]] = field(default_factory=dict)
    high: dict[str, list[Optional[float]]] = field(default_factory=dict)
    best_epoch: Optional[float] = None  # 1-based, mean over repeats


@dataclass
class Final:
    """One final retrain (``evaluate.finals``): the rule that chose it, what it trained on, its test."""

    number: int  # 1-based, in the order the rules chose them
    rule: str  # the metric that chose it: val_accuracy, val_loss or gap
    configuration: str  # the chosen configuration (its selection label)
    value: float  # its mean on ``rule`` over ``runs`` selection runs
    runs: int
    epochs: int  # the retrain's epochs
    explicit_epochs: bool  # evaluate.final_epochs set them; else the mean best epoch of the selected runs
    run_id: Optional[str] = None  # None while the retrain has not finished
    status: Optional[str] = None
    trained_on: str = "train+val"  # train+val or train
    train_images: Optional[int] = None
    test_accuracy: Optional[float] = None
    test_loss: Optional[float] = None  # with the penalty added when the report shows Keras-style losses
    curve: Optional[Curve] = None  # train (and test, when measured per epoch) per epoch

    @property
    def test_curve(self) -> bool:
        return self.curve is not None and any(v is not None for v in self.curve.mean.get("test_accuracy", []))


@dataclass
class ModelCard:
    """The Keras-style summary of one configuration's model (or why there is none)."""

    configuration: str
    text: Optional[str]
    params_total: Optional[int] = None
    params_trainable: Optional[int] = None
    params_non_trainable: Optional[int] = None
    reason: Optional[str] = None


@dataclass
class Evaluation:
    """The best configuration's predictions on one split, from one representative run."""

    configuration: str
    metric: str  # what chose it: val_accuracy or val_loss
    value: Optional[float]
    runs: int  # finished runs that ``value`` is the mean of
    run_id: str  # the run the figures come from
    repeat: int
    repeats: int  # finished repeats it is the median of
    split: Optional[str] = None  # "test" or "val": where the confusion matrix comes from
    class_names: list[str] = field(default_factory=list)
    confusion: Optional[np.ndarray] = None  # counts, rows = true class, columns = predicted
    examples_split: Optional[str] = None
    examples: dict[str, Examples] = field(default_factory=dict)
    confusion_reason: Optional[str] = None
    examples_reason: Optional[str] = None
    measured_test: bool = True  # False when the run did not measure the test split: never show it
    retrained: bool = False  # the run is the final retrain of the configuration (on train+val)
    top_k: Optional[float] = None  # top-5 accuracy on ``split``, where there are more than 10 classes

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits whose predictions the report may show, preferred first."""
        return ("test", "val") if self.measured_test else ("val",)


@dataclass
class ReportData:
    """One study's report inputs. Sections read this; later sections may open ``folder`` again."""

    folder: Path
    study: StudyRecord
    runs: list[RunRecord]
    rows: list[ResultRow]
    curves: list[Curve]
    models: list[ModelCard]
    evaluation: Optional[Evaluation]
    evaluation_reason: Optional[str]
    built_at: str
    versions: dict[str, str]
    analysis: Any = None  # cnnlab.analysis.study.StudyAnalysis: comparisons, selection, findings
    data_dir: Optional[Path] = None  # where the dataset is, for explain figures that feed images
    earlier_runs: int = 0  # runs of earlier versions of the study: kept in the store, counted nowhere
    # The best configuration's confusion beside its baseline's (explain.confusion: [best, baseline]):
    # cnnlab.explain.confusion.RunConfusion (best, baseline), or None and why not.
    confusion_pair: Optional[tuple[Any, Any]] = None
    confusion_pair_reason: Optional[str] = None
    damaged_runs: list[str] = field(default_factory=list)  # why each unreadable run row was left out
    finals: list[Final] = field(default_factory=list)  # every final retrain, in the order chosen
    rules: SelectionRules = field(default_factory=SelectionRules)  # what selection chose by

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def spec(self) -> dict[str, Any]:
        return self.study.spec or {}

    def first_with(self, key: str) -> Any:
        """The first run's value of ``key`` that is set (split sizes, class names, input shape)."""
        for run in self.runs:
            if getattr(run, key):
                return getattr(run, key)
        return None


# test_*: a final's per-epoch test (evaluate.test_curves), measured after the choice; only the final's own figure draws it.
CURVE_METRICS = ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss")


class _ReadableRuns:
    """The store, with the runs whose rows cannot be read left out and the reasons kept: a
    report of what can still be read, which names what cannot."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.damaged: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def runs(self, study: Optional[str] = None, status: Optional[str] = None, **options: Any) -> list[RunRecord]:
        errors: list[StoreError] = []
        records = self._store.runs(study, status, damaged=errors, **options)
        self.damaged += [str(error) for error in errors if str(error) not in self.damaged]
        return records


def gather(store: Any, study: Optional[str] = None) -> ReportData:
    """Read one study (the only one when ``study`` is None) and everything its report needs; a
    run whose row is damaged is left out and named in ``damaged_runs``."""
    store = _ReadableRuns(store)
    record = store.study(study)
    runs = store.runs(record.name)
    histories = {run.id: store.epochs(run.id) for run in runs if run.done}
    rows = result_rows(runs, lambda run_id: histories.get(run_id, []))
    by_id = {run.id: run for run in runs}
    keras = keras_loss(record.spec)
    curves = [curve for row in rows if (curve := _curve(row, by_id, histories, keras)) is not None]
    analysis = analyze(store, record.name)
    metric = analysis.selection.metric if analysis.selection else "val_accuracy"
    evaluation, reason = _evaluation(store, rows, by_id, metric, analysis)
    data = ReportData(
        folder=Path(store.folder), study=record, runs=runs, rows=rows, curves=curves,
        models=_model_cards(rows, by_id), evaluation=evaluation, evaluation_reason=reason,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), versions=_versions(),
        analysis=analysis, earlier_runs=len(store.runs(record.name, earlier=True)),
    )
    data.damaged_runs = store.damaged
    data.rules = SelectionRules.from_spec(record.spec)
    data.finals = _finals(analysis, runs, curves, data.rules, keras, histories)
    if "baseline" in (record.setting("explain", "confusion", default=None) or []):
        data.confusion_pair, data.confusion_pair_reason = confusion_pair(store, data)
    return data


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("cnnlab", "matplotlib", "jinja2"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _curve(row: ResultRow, by_id: dict[str, dict], histories: dict[str, list[dict]],
           keras: bool = False) -> Optional[Curve]:
    """The one place the report reads per-epoch metrics; with ``keras`` each epoch's losses get its
    penalty added (the stored losses are the cross-entropy alone)."""
    members = [histories[run_id] for run_id in row.run_ids if histories.get(run_id)]
    if keras:
        members = [[_with_penalty(epoch) for epoch in history] for history in members]
    if not members:
        return None
    length = max(len(history) for history in members)
    mean: dict[str, list[Optional[float]]] = {metric: [] for metric in CURVE_METRICS}
    low: dict[str, list[Optional[float]]] = {metric: [] for metric in CURVE_METRICS}
    high: dict[str, list[Optional[float]]] = {metric: [] for metric in CURVE_METRICS}
    for epoch in range(length):
        for metric in CURVE_METRICS:
            values = [h[epoch][metric] for h in members if epoch < len(h) and h[epoch].get(metric) is not None]
            values = [v for v in values if np.isfinite(v)]
            interval = mean_interval(values, metric=metric) if values else None  # bands stay in range
            mean[metric].append(interval.mean if interval else None)
            low[metric].append(interval.low if interval else None)
            high[metric].append(interval.high if interval else None)
    several = len(members) > 1
    return Curve(row.configuration, row.architecture, row.variant, row.sweep, len(members), list(range(1, length + 1)),
                 mean, low if several else {}, high if several else {}, row.best_epoch)


def _with_penalty(epoch: dict[str, Any]) -> dict[str, Any]:
    penalty = epoch.get("penalty") or 0.0
    return {**epoch, **{key: epoch[key] + penalty for key in LOSSES if epoch.get(key) is not None}}


def _finals(analysis: Any, runs: list[RunRecord], curves: list[Curve], rules: SelectionRules, keras: bool,
            histories: dict[str, list[dict]]) -> list[Final]:
    """Each final the spec's rules chose (analysis.finals), with its retrain run where it finished."""
    finals = []
    for number, choice in enumerate(analysis.finals if analysis is not None else [], start=1):
        label = f"{choice.configuration} (final)"
        final = Final(number, choice.metric, choice.configuration, choice.interval.mean, choice.interval.n,
                      choice.epochs, isinstance(rules.final_epochs, int))
        tried = [r for r in runs if r.phase == "final" and configuration_label(r.architecture, r.variant, r.sweep or {},
                                                                               r.phase) == label]
        run = next((r for r in tried if r.done), tried[0] if tried else None)
        if run is not None:
            config = run.config or {}
            final.run_id, final.status = run.id, run.status
            final.trained_on = "train+val" if config.get("merge_val", True) else "train"
            final.epochs = (config.get("train") or {}).get("epochs") or final.epochs
            final.train_images = (run.split_sizes or {}).get("train")
            final.test_accuracy, final.test_loss = run.test_accuracy, run.test_loss
            if keras and final.test_loss is not None:  # the last epoch's penalty: the weights it was measured with
                final.test_loss += (histories.get(run.id) or [{}])[-1].get("penalty") or 0.0
        final.curve = next((c for c in curves if c.configuration == label), None)
        finals.append(final)
    return finals


def _model_cards(rows: list[ResultRow], by_id: dict[str, RunRecord]) -> list[ModelCard]:
    from cnnlab.models import build_model, format_summary, summarize
    from cnnlab.spec.plan import RunConfig

    cards, first_position = [], {}
    for row in rows:
        started = [by_id[r] for r in row.run_ids if by_id[r].input_shape and by_id[r].class_names]
        first_position[row.configuration] = min(by_id[r].position for r in row.run_ids)
        if not started:
            cards.append(ModelCard(row.configuration, None, reason="no run of it has started, so its input shape is unknown"))
            continue
        run = started[0]
        try:
            config = RunConfig.model_validate(run.config)
            built = build_model(config.layer_list(), tuple(run.input_shape), len(run.class_names),
                                variant=config.variant_spec)
        except Exception as error:  # a config that cannot be built failed its runs too; say so, don't stop
            cards.append(ModelCard(row.configuration, None, reason=f"the model cannot be built: {error}"))
            continue
        summary = summarize(built)
        cards.append(ModelCard(row.configuration, format_summary(summary, row.configuration), summary.total_params,
                               summary.trainable_params, summary.non_trainable_params))
    cards.sort(key=lambda card: first_position[card.configuration])  # plan order reads best here
    return cards


def _evaluation(store: Any, rows: list[ResultRow], by_id: dict[str, RunRecord], metric: str,
                analysis: Any) -> tuple[Optional[Evaluation], Optional[str]]:
    # One definition of "best" (analysis.selection.best_run_id, the one explain --best uses): the
    # configuration selected on validation (never on test), its final retrain when there is one (that
    # retrain is what the test split measures), else its median repeat.
    selection = analysis.selection if analysis is not None else None
    best = next((row for row in rows if selection is not None and row.phase == "select"
                 and row.configuration == selection.configuration), None)
    run_id = best_run_id(analysis.results, selection) if best is not None else None
    if best is None or run_id not in by_id:
        return None, "no configuration has a finished run with validation metrics"
    run = by_id[run_id]
    retrained = run.phase == "final"
    repeats = 1 if retrained else sum(1 for r in best.run_ids if by_id[r].done)
    evaluation = Evaluation(best.configuration, metric, getattr(best, metric), best.done, run.id, run.repeat, repeats,
                            class_names=[str(name) for name in run.class_names or []],
                            measured_test=run.test_accuracy is not None, retrained=retrained)
    _load_confusion(store, evaluation)
    _load_examples(store, evaluation)
    return evaluation, None


def _read(load: Any, run_id: str, what: str) -> tuple[Any, Optional[str]]:
    """A run's evaluation file through the store's reader (``load``: checked against its recorded
    sha256, then parsed), or None and why not: a missing, damaged or changed file leaves its figure
    out with a note naming the file, and the report goes on."""
    try:
        found = load(run_id)
    except StoreError as error:
        return None, str(error).rstrip(".")  # it names the file, what is wrong and what to do
    return found, None if found is not None else f"the run has no {what} file"


def _load_confusion(store: Any, evaluation: Evaluation) -> None:
    predictions, reason = _read(store.load_predictions, evaluation.run_id, "predictions")
    if predictions is None:
        evaluation.confusion_reason = reason
        return
    split = next((s for s in evaluation.splits if s in predictions.splits and len(predictions.splits[s].labels)), None)
    if split is None:
        evaluation.confusion_reason = "the run has no predictions on a test or validation split"
        return
    labels, probabilities = predictions.splits[split].labels, predictions.splits[split].probabilities
    classes = max(len(evaluation.class_names), probabilities.shape[1], int(labels.max()) + 1)
    if len(evaluation.class_names) < classes:
        evaluation.class_names += [str(i) for i in range(len(evaluation.class_names), classes)]
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels, probabilities.argmax(1)), 1)
    evaluation.split, evaluation.confusion = split, confusion
    if shows_top_k(classes):
        evaluation.top_k = top_k_accuracy(labels, probabilities)


def _load_examples(store: Any, evaluation: Evaluation) -> None:
    examples, reason = _read(store.load_examples, evaluation.run_id, "example-images")
    if examples is None or examples.split is None:
        evaluation.examples_reason = reason or "the run evaluated no split, so it kept no example images"
        return
    evaluation.examples_split = examples.split
    if evaluation.examples_split not in evaluation.splits:
        evaluation.examples_reason = (f"the run kept example images of the {SPLIT_WORDS.get(evaluation.examples_split, 'unknown')}"
                                      " split only, which this study does not measure")
        return
    evaluation.examples.update((kind, group) for kind, group in examples.kinds.items() if len(group.images))
    if not evaluation.examples:
        evaluation.examples_reason = "the run kept no example images"
