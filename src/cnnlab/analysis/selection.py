"""Choosing the best configuration on validation, the final retrain that is tested once, and the
one meaning of "the best run" that the report, ``cnnlab explain --best`` and any later command use.

Selection reads validation metrics only: test numbers never reach it (a test permutes the
test labels and checks the choice does not move).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Optional, Sequence, Union

from cnnlab.analysis.comparisons import RunResult, configuration_intervals, run_results
from cnnlab.analysis.statistics import Interval
from cnnlab.metrics import higher_is_better
from cnnlab.records import Results
from cnnlab.spec.plan import RunConfig
from cnnlab.spec.training import Schedule

# The one definition of "best run", as the report states it.
BEST_RUN_RULE = ("The best run, here and in 'cnnlab explain --best', is the final retrain of the configuration "
                 "chosen on validation when there is one, else that configuration's median repeat on the "
                 "selection metric: never the luckiest seed.")


@dataclass
class Selection:
    configuration: str
    metric: str
    interval: Interval
    epochs: int  # the retrain's epoch budget: the mean best epoch over the repeats (1-based)
    runs: list[RunResult]
    # The retrain's rate per epoch: the runs' per-epoch median rate for ``epochs`` epochs; None when
    # their rate never changed (the retrain then keeps that one rate).
    lr_path: Optional[list[float]] = None


@dataclass(frozen=True)
class SelectionRules:
    """What a study chooses by (its spec's ``evaluate`` and its variants' ``candidate``), read the same
    way by the conductor (from the Study) and by the report (from the stored spec)."""

    metric: str = "val_accuracy"
    finals: tuple[str, ...] = ()  # the metric each final is chosen by, in order
    max_params: Optional[float] = None
    max_train_seconds: Optional[float] = None
    excluded: frozenset[str] = frozenset()  # variants that are never candidates
    final_epochs: Union[int, str] = "mean_best"

    @classmethod
    def from_spec(cls, spec: Optional[dict]) -> "SelectionRules":
        """From a study's ``model_dump(mode="json")`` (what the store keeps as the study's spec)."""
        evaluate = (spec or {}).get("evaluate") or {}

        def choosable(name: object) -> str:
            # A stored spec may come from anyone: a metric no spec could name chooses as the default does.
            return name if isinstance(name, str) and (name.startswith("val_") or name == "gap") else "val_accuracy"

        metric = choosable(evaluate.get("select"))
        retrain = evaluate.get("retrain_on") or "none"
        finals = evaluate.get("finals")
        rules: tuple[str, ...] = ()
        if retrain != "none":
            count = finals if isinstance(finals, int) and not isinstance(finals, bool) and 0 < finals <= 20 else 1
            rules = tuple(map(choosable, finals[:20])) if isinstance(finals, list) else (metric,) * count
        constraint = evaluate.get("constraint") or {}
        excluded = frozenset(name for name, variant in ((spec or {}).get("variants") or {}).items()
                             if isinstance(variant, dict) and variant.get("candidate") is False)
        return cls(metric, rules, constraint.get("max_params"), constraint.get("max_train_seconds"), excluded,
                   evaluate.get("final_epochs") or "mean_best")

    def allows(self, runs: Sequence[RunResult]) -> bool:
        """Whether a configuration (its runs) meets the constraint."""
        for name, limit in (("params", self.max_params), ("train_seconds", self.max_train_seconds)):
            values = [r.metrics[name] for r in runs if name in r.metrics]
            if limit is not None and (not values or sum(values) / len(values) > limit):
                return False
        return True


def select_best(results: Sequence[RunResult], metric: str = "val_accuracy",
                rules: Optional[SelectionRules] = None, skip: Sequence[str] = ()) -> Optional[Selection]:
    """The configuration with the best mean ``metric`` over its repeats (first on ties), among the
    candidates ``rules`` allow and those not in ``skip``."""
    if not (metric.startswith("val_") or metric == "gap"):
        raise ValueError(f"selection must use a validation metric or the gap, not {metric!r}")
    rules = rules or SelectionRules(metric)
    candidates = [r for r in results if r.phase == "select" and r.variant not in rules.excluded]
    by_configuration: dict[str, list[RunResult]] = {}
    for r in candidates:
        by_configuration.setdefault(r.configuration, []).append(r)
    candidates = [r for r in candidates if r.configuration not in skip and rules.allows(by_configuration[r.configuration])]
    intervals = configuration_intervals(candidates, metric)
    if not intervals:
        return None
    sign = 1.0 if higher_is_better(metric) else -1.0
    order = list(dict.fromkeys(r.configuration for r in candidates))

    def score(name: str) -> float:
        # The smallest gap is the one closest to zero: validation above training (dropout active while
        # training is measured) is no better fit than training above validation.
        mean = intervals[name].mean
        return -abs(mean) if metric == "gap" else sign * mean

    best = max((name for name in order if name in intervals), key=lambda name: (score(name), -order.index(name)))
    runs = [r for r in candidates if r.configuration == best]
    # The gap has no best epoch of its own: the epochs come from the validation accuracy it is measured at.
    epoch_metric = "val_accuracy" if metric == "gap" else metric
    best_epochs = [_best_epoch(r, epoch_metric) + 1 for r in runs]
    epochs = max(1, round(sum(best_epochs) / len(best_epochs)))
    if isinstance(rules.final_epochs, int):
        epochs = rules.final_epochs
    return Selection(best, metric, intervals[best], epochs, runs, median_lr_path(runs, epochs))


def study_choice(results: Sequence[RunResult], rules: SelectionRules) -> tuple[Optional[Selection], list[Selection]]:
    """The study's choice and its finals: with finals, the first final is the choice (what the report
    and every "best" mean); without, the best on the selection metric."""
    finals = select_finals(results, rules) if rules.finals else []
    if finals:
        return finals[0], finals
    return select_best(results, rules.metric, rules), []


def select_finals(results: Sequence[RunResult], rules: SelectionRules) -> list[Selection]:
    """The configurations the finals retrain, in order: each rule's best among those not chosen yet
    (study B: the best on validation accuracy, then the smallest train-validation gap)."""
    chosen: list[Selection] = []
    for metric in rules.finals:
        selection = select_best(results, metric, rules, skip=[s.configuration for s in chosen])
        if selection is not None:
            chosen.append(selection)
    return chosen


def median_lr_path(runs: Sequence[RunResult], epochs: int) -> Optional[list[float]]:
    """The median over ``runs`` of each epoch's rate, for the first ``epochs`` epochs (the last rate
    carried on past the longest run); None when no run's rate changed while it trained.

    A plateau schedule watches validation data, which a train+val retrain does not have, and a
    cosine one stretches over its epoch budget: replaying the rates the selected runs actually
    followed is the one rule that holds for every schedule.
    """
    rates = [[float(e["lr"]) for e in r.history if e.get("lr") is not None] for r in runs]
    rates = [r for r in rates if r]
    if not rates or (all(len(set(r)) == 1 for r in rates) and len({r[0] for r in rates}) == 1):
        return None
    path: list[float] = []
    for epoch in range(epochs):
        reached = [r[epoch] for r in rates if epoch < len(r)]
        path.append(median(reached) if reached else path[-1])
    return path


def _best_epoch(result: RunResult, metric: str) -> int:
    values = [(e.get(metric), i) for i, e in enumerate(result.history) if e.get(metric) is not None]
    if not values:
        return len(result.history) - 1
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(values, key=lambda v: (sign * v[0], -v[1]))[1]


def final_config(selection: Selection, plan: Sequence[RunConfig], retrain_on: str = "train+val",
                 test_curve: bool = False) -> RunConfig:
    """The selected configuration retrained for the selected number of epochs, on train+val (or on
    its training split again with ``retrain_on="train"``), measuring the test split at its end
    (and after every epoch with ``test_curve``: plotted, never read by any choice)."""
    first = next(c for c in plan if c.label == selection.configuration and c.repeat == 0 and c.fold in (None, 0))
    # The selected runs' rate path, replayed (their schedule may watch validation data, which a train+val
    # retrain lacks); a rate that never changed stays that one rate.
    schedule = Schedule(name="path", values=selection.lr_path) if selection.lr_path else Schedule()
    train = first.train.model_copy(update={"epochs": selection.epochs, "early_stopping": None, "schedule": schedule})
    return first.model_copy(update={
        "phase": "final", "merge_val": retrain_on == "train+val", "train": train, "evaluate_test": True, "fold": None,
        "kfold": first.kfold, "test_curve": test_curve, "validate_on_test": False,
    })


def lr_path_words(train: Optional[dict]) -> str:
    """What a run's stored train settings say about its rate, in one phrase (for the report)."""
    schedule = (train or {}).get("schedule") or {}
    rate = ((train or {}).get("optimizer") or {}).get("lr")
    values = schedule.get("values") if schedule.get("name") == "path" else None
    if not values:
        return f"a constant learning rate of {rate:g}" if rate is not None else "a constant learning rate"
    spans, start = [], 0
    for epoch in range(1, len(values) + 1):
        if epoch == len(values) or values[epoch] != values[start]:
            where = f"epoch {start + 1}" if epoch - start == 1 else f"epochs {start + 1}-{epoch}"
            spans.append(f"{values[start]:.3g} for {where}")
            start = epoch
    return "the learning rate per epoch that the selected runs followed (their median): " + ", ".join(spans)


def best_run_id(results: Sequence[RunResult], selection: Optional[Selection]) -> Optional[str]:
    """The best run (``BEST_RUN_RULE``): the final retrain of the selected configuration when there is
    one, else the selected configuration's median repeat by the selection metric; None with no selection.

    With an even number of repeats the median is the lower middle one (the worse of the two), so the
    run explained never flatters the configuration.
    """
    if selection is None or not selection.runs:
        return None
    chosen = selection.runs[0]
    finals = [r for r in results if r.phase == "final" and r.architecture == chosen.architecture
              and r.variant == chosen.variant and r.sweep == chosen.sweep]
    if finals:
        return finals[0].run_id
    sign = 1.0 if higher_is_better(selection.metric) else -1.0

    def worst_first(run: RunResult) -> tuple[float, int, int]:
        value = run.metrics.get(selection.metric)
        return (sign * value if value is not None else float("-inf"), run.repeat, run.fold or 0)

    ranked = sorted(selection.runs, key=worst_first)
    return ranked[(len(ranked) - 1) // 2].run_id


def study_best_run_id(store: Results, study: Optional[str] = None) -> Optional[str]:
    """The best run of a stored study (``BEST_RUN_RULE``), on the metric the study selects with, as
    ``analysis.analyze`` selects; without computing comparisons and findings (``cnnlab explain --best``)."""
    record = store.study(study)
    results = run_results(store, record.name)
    return best_run_id(results, study_choice(results, SelectionRules.from_spec(record.spec))[0])
