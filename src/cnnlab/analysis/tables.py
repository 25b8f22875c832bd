"""Result tables from the store: one row per configuration, sorted by validation accuracy.

A configuration is an architecture, a variant and a sweep point; its repeats (and folds) are
averaged here. Computing rows is apart from drawing them (``format_results``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from cnnlab.analysis.comparisons import fold_correction
from cnnlab.analysis.statistics import mean_interval
from cnnlab.analysis.text import text_table
from cnnlab.records import RunRecord
from cnnlab.spec.plan import configuration_label


@dataclass
class ResultRow:
    configuration: str
    architecture: str
    variant: str
    sweep: dict[str, Any]
    runs: int
    done: int
    statuses: dict[str, int]
    params_total: Optional[int] = None
    params_trainable: Optional[int] = None
    params_non_trainable: Optional[int] = None
    train_seconds: Optional[float] = None
    best_epoch: Optional[float] = None
    epochs: Optional[float] = None
    train_accuracy: Optional[float] = None
    val_accuracy: Optional[float] = None
    test_accuracy: Optional[float] = None
    train_loss: Optional[float] = None
    val_loss: Optional[float] = None
    test_loss: Optional[float] = None
    gap: Optional[float] = None  # train - val accuracy of the final weights
    # The highest accuracy of any epoch (study B's table), mean over the finished runs; the train
    # one needs the runs' epoch rows, so it stays None where result_rows was not given them.
    best_train_accuracy: Optional[float] = None
    best_val_accuracy: Optional[float] = None
    conv_layers: Optional[int] = None  # in the configuration's model (a variant may remove layers)
    # The kernel penalty of the last epoch, mean over the finished runs (what a Keras loss adds);
    # None where result_rows was not given the epoch rows.
    penalty: Optional[float] = None
    run_ids: list[str] = field(default_factory=list)
    phase: str = "select"
    # 95% t-interval (low, high) per metric over the finished repeats/folds; absent for one run.
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(present) / len(present) if present else None




EpochRows = Callable[[str], Sequence[Mapping[str, Any]]]  # run id -> its per-epoch metrics (Store.epochs)


def conv_layer_count(config: Optional[Mapping[str, Any]]) -> Optional[int]:
    """How many conv layers a run's model has: its configuration's layer list holds the base
    layers less any a variant removed (variants insert no conv layer), one-key items."""
    layers = (config or {}).get("layers")
    if not isinstance(layers, list):
        return None
    return sum(1 for item in layers if isinstance(item, Mapping) and "conv" in item)


def add_epoch_bests(rows: Sequence[ResultRow], runs: Sequence[RunRecord], epochs: EpochRows) -> None:
    """Set each row's best train accuracy over epochs, and its last epoch's penalty, from its finished
    runs' epoch rows."""
    by_id = {run.id: run for run in runs}
    for row in rows:
        bests, penalties = [], []
        for run_id in row.run_ids:
            if run_id in by_id and by_id[run_id].done:
                history = epochs(run_id)
                values = [e.get("train_accuracy") for e in history]
                bests.append(max((v for v in values if v is not None and math.isfinite(v)), default=None))
                penalties.append(history[-1].get("penalty") if history else None)
        row.best_train_accuracy = _mean(bests)
        row.penalty = _mean(penalties)


def result_rows(runs: Sequence[RunRecord], epochs: Optional[EpochRows] = None) -> list[ResultRow]:
    """Group runs by configuration and average what finished; best validation accuracy first.
    ``epochs`` (``store.epochs``) gives each row its best train accuracy over epochs."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        key = json.dumps([run.architecture, run.variant, run.sweep, run.phase], sort_keys=True, default=str)
        groups.setdefault(key, []).append(run)
    rows = []
    for members in groups.values():
        done = [r for r in members if r.done]
        statuses: dict[str, int] = {}
        for r in members:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        first = members[0]
        row = ResultRow(
            configuration=configuration_label(first.architecture, first.variant, first.sweep or {}, first.phase),
            architecture=first.architecture, variant=first.variant,
            sweep=first.sweep or {}, runs=len(members), done=len(done), statuses=statuses,
            params_total=first.params_total, params_trainable=first.params_trainable,
            params_non_trainable=first.params_non_trainable, run_ids=[r.id for r in members],
            conv_layers=conv_layer_count(first.config),
        )
        row.phase = first.phase
        if done:
            for name in ("train_seconds", "train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss"):
                setattr(row, name, _mean([getattr(r, name) for r in done]))
                values = [getattr(r, name) for r in done if getattr(r, name) is not None]
                if len(values) > 1 and name != "train_seconds":
                    # Clipped to the metric's range; the corrected resampled t over folds.
                    interval = mean_interval(values, metric=name, **fold_correction(done))
                    row.ci[name] = (interval.low, interval.high)
            row.best_epoch = _mean([r.best_epoch + 1 if r.best_epoch is not None else None for r in done])
            row.epochs = _mean([r.epochs_done for r in done])
            row.best_val_accuracy = _mean([r.best_val_accuracy for r in done])
            if row.train_accuracy is not None and row.val_accuracy is not None:
                row.gap = row.train_accuracy - row.val_accuracy
        rows.append(row)
    if epochs is not None:
        add_epoch_bests(rows, runs, epochs)
    rows.sort(key=lambda r: (r.phase != "select", r.val_accuracy is None, -(r.val_accuracy or 0.0), -(r.train_accuracy or 0.0)))
    return rows


def interval_suffix(value: float, ci: Optional[tuple[float, float]], scale: float = 100.0) -> str:
    """`` ± h`` after a mean whose interval is symmetric, `` (low to high)`` after one the
    metric's range clipped (an accuracy interval never passes 100%)."""
    if ci is None:
        return ""
    low, high = scale * ci[0], scale * ci[1]
    half = (high - low) / 2
    if abs((scale * value - low) - half) < 1e-9 * max(1.0, abs(scale * value)):
        return f" ± {half:.2f}"
    return f" ({low:.2f} to {high:.2f})"


def _percent(value: Optional[float], ci: Optional[tuple[float, float]] = None) -> str:
    if value is None:
        return ""
    return f"{100 * value:.2f}" + interval_suffix(value, ci)


def _number(value: Optional[float], digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _status_text(row: ResultRow) -> str:
    if row.done == row.runs:
        return str(row.runs)
    others = ", ".join(f"{n} {s}" for s, n in sorted(row.statuses.items()) if s != "done")
    return f"{row.done}/{row.runs} ({others})"


RESULT_COLUMNS = ("configuration", "runs", "params", "time s", "best ep", "train acc %", "val acc %", "test acc %",
                  "train loss", "val loss", "gap pts")


def result_cells(row: ResultRow) -> list[str]:
    return [
        row.configuration, _status_text(row),
        "" if row.params_total is None else f"{row.params_total:,}",
        _number(row.train_seconds, 1), _number(row.best_epoch, 1),
        _percent(row.train_accuracy, row.ci.get("train_accuracy")), _percent(row.val_accuracy, row.ci.get("val_accuracy")),
        _percent(row.test_accuracy, row.ci.get("test_accuracy")),
        _number(row.train_loss), _number(row.val_loss),
        "" if row.gap is None else f"{100 * row.gap:+.2f}",
    ]


def format_results(rows: list[ResultRow], title: str = "", validated_on_test: bool = False) -> str:
    """A fixed-width text table (for terminals, logs and golden tests); ``validated_on_test``: the
    study's validation data was its test split (evaluate.validate_on: test), and the note says so."""
    lines = ([title] if title else []) + text_table(RESULT_COLUMNS, [result_cells(row) for row in rows])
    notes = ["Sorted by validation accuracy"]
    if any(row.ci for row in rows):
        notes.append("accuracies are means ± the half-width of a 95% t-interval over seeds (corrected resampled t "
                     "over folds), or the interval itself where 0-100% clips it")
    if validated_on_test:
        notes.append("validation = the test split (evaluate.validate_on: test), so every choice saw the test "
                     "numbers: they are optimistic")
    elif any(row.test_accuracy is not None for row in rows):
        notes.append("test numbers are never used to choose")
    lines.append("; ".join(notes) + ".")
    return "\n".join(lines)


def earlier_runs_note(count: int, folder: object) -> str:
    """The sentence that names the runs a table leaves out: those of earlier versions of the study."""
    if not count:
        return ""
    runs = "1 run" if count == 1 else f"{count} runs"
    return (f"{runs} from an earlier version of this study (another --epochs, --limit-train or --precision, or an "
            f"edited spec) {'is' if count == 1 else 'are'} kept and not counted: 'cnnlab ls {folder} --all' lists "
            f"them, 'cnnlab prune {folder}' removes them.")
