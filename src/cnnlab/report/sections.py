"""The report's first sections: study header, results, learning curves and model summaries.

Each builder turns ``ReportData`` into a ``Section`` of blocks, or an absent section with the
one line that says why (see ``document.py`` for how to add one).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional

from cnnlab.analysis.tables import ResultRow, earlier_runs_note, interval_suffix
from cnnlab.report import figures
from cnnlab.report.architecture_tables import add_best_columns, change_blocks, parameter_blocks
from cnnlab.report.configuration_blocks import rate_blocks, sweep_blocks
from cnnlab.report.data import SPLIT_WORDS, ReportData
from cnnlab.report.known_effects import curve_context, keras_loss, loss_words, validates_on_test, validation_warning
from cnnlab.report.document import (
    Block, Caution, Cell, Facts, Figure, Note, Preformatted, Section, Subheading, Table, count, number, percent, section,
    slug, text,
)

# ---------------------------------------------------------------- formatting


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _with_interval(cell: Cell, row: ResultRow, metric: str) -> Cell:
    """With several repeats, the half-width of the 95% interval after the mean (sorting by the mean)."""
    interval = row.ci.get(metric)
    if interval is not None and cell.text:
        cell.text += interval_suffix(getattr(row, metric), interval)
    return cell


def _plural(amount: int, word: str) -> str:
    return f"{amount} {word}" + ("" if amount == 1 else "s")


# ---------------------------------------------------------------- 1. the study


@section(order=10)
def study_header(data: ReportData) -> Section:
    env = data.study.environment or {}
    statuses = Counter(run.status for run in data.runs)
    facts: list[tuple[str, str]] = [("Study", data.name)]
    if data.study.spec_path:
        facts.append(("Spec file", str(data.study.spec_path)))
    if data.study.setting("overrides"):  # settings given on the command line over the file's (cnnlab.spec.overrides)
        facts.append(("Overrides", " ".join(data.study.setting("overrides")) + " (over the spec below)"))
    facts.append(("Runs", f"{len(data.runs)}" + (": " + ", ".join(f"{n} {s}" for s, n in statuses.most_common())
                                                 if data.runs else "")))
    facts += _dataset_facts(data)
    facts += _training_facts(data)
    facts += _repeats_advice(data)
    if env:
        cores = f", {env['cores']} cores" if env.get("cores") else ""
        facts.append(("Machine", f"{env.get('processor') or env.get('machine') or 'unknown'}{cores}; {env.get('platform', '')}".strip("; ")))
        device = env.get("device", "unknown")
        if env.get("gpu"):
            device += f" ({env['gpu']}, CUDA {env.get('cuda')})"
        if env.get("threads"):
            device += f", {env['threads']} CPU threads"
        facts.append(("Device", device))
    versions = [f"{name} {env[name]}" for name in ("python", "torch", "numpy") if env.get(name)]
    code = sorted({run.code_version for run in data.runs if run.code_version})
    if code:
        versions.append("cnnlab " + " / ".join(code))
    if versions:
        facts.append(("Versions", ", ".join(versions)))
    trained = sum(run.train_seconds or 0.0 for run in data.runs if run.done)
    facts.append(("Wall time", f"{duration(data.study.wall_seconds)} in total"
                  + (f" (training alone: {duration(trained)})" if trained else "")))
    facts.append(("Dates", f"created {data.study.created_at}, last run {data.study.updated_at}"))
    report = ", ".join(f"{name} {version}" for name, version in data.versions.items())
    facts.append(("This report", f"built {data.built_at} from the store alone ({report})"))
    blocks: list[Block] = [Facts(facts)]
    if validation_warning(data.spec):  # first thing read: every choice below saw the test split
        blocks.insert(0, Caution(validation_warning(data.spec)))
    if data.earlier_runs:
        blocks.append(Note(earlier_runs_note(data.earlier_runs, data.folder)))
    if data.damaged_runs:
        count = len(data.damaged_runs)
        blocks.append(Note(f"{count} run{'s' if count > 1 else ''} of this study could not be read and "
                           f"{'are' if count > 1 else 'is'} left out of every table, figure and comparison below: "
                           + " | ".join(data.damaged_runs)))
    environments = {_machine_key(run.environment) for run in data.runs if run.environment}
    if len(environments) > 1:
        blocks.append(Note(f"The runs were trained in {len(environments)} different environments (machine, device or "
                           "versions); the facts above are those of the latest 'cnnlab run'."))
    stacked = {(run.architecture, run.variant, str(run.sweep), run.phase) for run in data.runs
               if (run.environment or {}).get("stacked")}
    if stacked:
        blocks.append(Note(f"The seeds of {_plural(len(stacked), 'configuration')} trained together as one stacked "
                           "model each (cnnlab run --stack): each seed is still its own run, with the metrics it "
                           "would have alone, to float rounding; a stacked run's time is its group's."))
    lines = data.study.spec_text.count("\n") + 1
    blocks.append(Preformatted(data.study.spec_text, f"Spec, verbatim ({_plural(lines, 'line')})", collapsed=True))
    return Section("study", "Study", blocks)


def _repeats_advice(data: ReportData) -> list[tuple[str, str]]:
    """How many repeats the unclear comparisons would need to settle at 80% power, if any."""
    unclear = [c for c in (data.analysis.comparisons if data.analysis else []) if c.better is None and c.n >= 2]
    needed = [c.repeats_needed for c in unclear if c.repeats_needed]
    if not unclear:
        return []
    if not needed:
        return [("Power", f"{len(unclear)} comparison(s) show no clear difference; their differences are too "
                          "small against the spread for any practical number of repeats to settle them")]
    return [("Power", f"{len(unclear)} comparison(s) show no clear difference; about {max(needed)} repeats would "
                      "detect the largest of their observed differences at 80% power (5% level, before Holm)")]


def _machine_key(env: dict[str, Any]) -> tuple:
    return tuple(env.get(key) for key in ("processor", "platform", "device", "gpu", "python", "torch", "numpy"))


def _dataset_facts(data: ReportData) -> list[tuple[str, str]]:
    dataset = data.spec.get("dataset") or {}
    facts = []
    if dataset:
        augment = ", ".join(_compact(item) for item in dataset.get("augment") or []) or "none"
        where = f" ({dataset['path']})" if dataset.get("path") else ""
        facts.append(("Dataset", f"{dataset.get('name')}{where}; normalize: {dataset.get('normalize', 'unit')}; "
                                 f"augmentation: {augment}"))
    sizes = [run.split_sizes for run in data.runs if run.split_sizes]
    if sizes:
        distinct = {tuple(sorted(s.items())) for s in sizes}
        names = {**SPLIT_WORDS, "val": "validation = test split"} if validates_on_test(data.spec) else SPLIT_WORDS
        split = ", ".join(f"{names.get(name, name)} {size:,}" for name, size in
                          sorted(sizes[0].items(), key=lambda item: ("train", "val", "test").index(item[0])
                                 if item[0] in ("train", "val", "test") else 9) if size)
        facts.append(("Split sizes", split + (f" (the runs differ: {len(distinct)} different sizes)" if len(distinct) > 1 else "")))
    shape, classes = data.first_with("input_shape"), data.first_with("class_names")
    if shape and classes:
        names = ", ".join(str(c) for c in classes[:20]) + (", ..." if len(classes) > 20 else "")
        facts.append(("Images", f"{' x '.join(str(n) for n in shape)} (channels x height x width); "
                                f"{len(classes)} classes: {names}"))
    return facts


def _training_facts(data: ReportData) -> list[tuple[str, str]]:
    """Training settings as the runs used them (``--epochs`` and ``--limit-train`` override the spec)."""
    spec = data.spec
    configs = [run.config for run in data.runs if run.config and run.phase == "select"]
    train = (configs[0].get("train") if configs else None) or spec.get("train") or {}
    if not train:
        return []
    optimizer = train.get("optimizer") or {}
    schedule = train.get("schedule") or {}
    stopping = train.get("early_stopping")
    epochs = f"{train.get('epochs')} epochs"
    spec_epochs = (spec.get("train") or {}).get("epochs")
    if spec_epochs is not None and spec_epochs != train.get("epochs"):
        epochs += f" (the spec says {spec_epochs}; overridden with --epochs)"
    settings = (f"{optimizer.get('name')} lr {optimizer.get('lr')}, batch {train.get('batch_size')}, {epochs}; "
                f"schedule {schedule.get('name', 'none')}; early stopping "
                + (f"on {stopping.get('monitor')} (patience {stopping.get('patience')})" if stopping else "off")
                + f"; init {train.get('init', 'default')}")
    limits = {config.get("limit_train") for config in configs} - {None}
    if limits:
        settings += f"; training images limited to {', '.join(f'{n:,}' for n in sorted(limits))} (--limit-train)"
    if len({repr(config.get("train")) for config in configs}) > 1:
        settings += "; the sweep changes some of these per configuration"
    return [("Training", settings),
            ("Repeats", f"{spec.get('repeats', 1)} per configuration (seeds from study seed {spec.get('seed')})")]


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {val}" for key, val in value.items())
    return str(value)


# ---------------------------------------------------------------- 2. results


@section(order=20)
def results(data: ReportData) -> Section:
    if not data.rows:
        return Section.absent("results", "Results", "the study has no runs in the store yet.")
    rows = data.rows
    sweep_keys = list(dict.fromkeys(key for row in rows for key in row.sweep))
    tested = any(row.test_accuracy is not None for row in rows)
    # evaluate.keras_loss: the losses shown carry the last epoch's kernel penalty, as a Keras log does.
    keras = keras_loss(data.spec)
    loss = " loss + penalty" if keras else " loss"
    columns = ["#", "architecture", "variant", *sweep_keys, "runs", "params", "train time s", "best epoch",
               "train acc %", "val acc %"] + (["test acc %"] if tested else []) + ["train" + loss, "val" + loss] \
        + (["test" + loss] if tested else []) + ["gap pts"]
    table_rows = []
    for rank, row in enumerate(rows, start=1):
        final = " (final retrain)" if row.phase == "final" else ""
        cells = [count(rank), text(row.architecture), text(row.variant + final)]
        cells += [text(_value_text(row.sweep.get(key))) for key in sweep_keys]
        cells += [_runs_cell(row), count(row.params_total), number(row.train_seconds, 1), number(row.best_epoch, 1),
                  _with_interval(percent(row.train_accuracy), row, "train_accuracy"),
                  _with_interval(percent(row.val_accuracy), row, "val_accuracy")]
        if tested:
            cells.append(_with_interval(percent(row.test_accuracy), row, "test_accuracy"))
        shown = [row.train_loss, row.val_loss] + ([row.test_loss] if tested else [])
        if keras:
            shown = [None if value is None else value + (row.penalty or 0.0) for value in shown]
        cells += [number(value) for value in shown]
        gap = row.gap
        cells.append(Cell("" if gap is None else f"{100 * gap:+.2f}", None if gap is None else 100 * gap, True))
        table_rows.append(cells)
    repeats = max(row.runs for row in rows)
    notes = ["Sorted by validation accuracy, best first; click a column header to sort by it."]
    if repeats > 1:
        notes.append(f"Metrics are means over each configuration's finished runs (up to {repeats})"
                     + ("; ± is the half-width of a 95% interval (in brackets: the interval, where 0-100% clips it; "
                        "folds use the corrected resampled t)." if any(r.ci for r in rows) else "."))
    notes.append("Accuracies and losses are those of the final weights (the best epoch's when early stopping "
                 "restored them); gap = train minus validation accuracy, in percentage points.")
    if keras:
        notes.append(f"Losses: {loss_words(data.spec)} (the last epoch's penalty added; stored without it).")
    if tested and not validates_on_test(data.spec):
        notes.append("Test numbers are measured, never used to choose.")
    warning = validation_warning(data.spec)
    blocks: list[Block] = ([Caution(warning)] if warning else []) + [
        Table(columns, table_rows, anchor="results-table", sortable=True, caption="One row per configuration",
              titles={"best epoch": "1-based epoch with the best validation metric",
                      "gap pts": "train accuracy minus validation accuracy, percentage points",
                      "train time s": "seconds of training (evaluation passes included), mean over runs"}),
        Note(" ".join(notes)),
    ]
    add_best_columns(data, blocks)  # conv layers, best train and val accuracy of any epoch (study B)
    blocks += change_blocks(data)  # variants with their own training settings against the original (study C)
    if sweep_keys:
        blocks += _sweep_ranking(rows, sweep_keys, tested, data)
        blocks += sweep_blocks(data, sweep_keys)  # the metric against each swept value
    blocks += _unfinished(data)
    return Section("results", "Results", blocks)


def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(set(map(str, value))) == 1:
        return str(value[0])
    return "" if value is None else str(value)


def _runs_cell(row: ResultRow) -> Cell:
    if row.done == row.runs:
        return Cell(str(row.runs), row.runs, True)
    others = ", ".join(f"{n} {s}" for s, n in sorted(row.statuses.items()) if s != "done")
    return Cell(f"{row.done}/{row.runs} ({others})", row.done, True)


def _sweep_ranking(rows: list[ResultRow], sweep_keys: list[str], tested: bool, data: ReportData) -> list[Block]:
    ranked = [row for row in rows if row.val_accuracy is not None and row.phase == "select"]
    if len(ranked) < 2:
        return []
    best = ranked[0]
    columns = ["#", "configuration", *sweep_keys, "val acc %", "Δ val pts"] + (["test acc %", "Δ test pts"] if tested else [])
    table_rows = []
    for rank, row in enumerate(ranked, start=1):
        cells = [count(rank), text(row.configuration)] + [text(_value_text(row.sweep.get(k))) for k in sweep_keys]
        cells += [percent(row.val_accuracy), _delta(row.val_accuracy, best.val_accuracy)]
        if tested:
            cells += [percent(row.test_accuracy), _delta(row.test_accuracy, best.test_accuracy)]
        table_rows.append(cells)
    return [Subheading("Sweep, best to worst", "sweep"),
            Table(columns, table_rows, anchor="sweep-table",
                  caption="Every configuration ranked by validation accuracy, with its difference from the best"),
            Note(f"Δ: percentage points from the best configuration on validation ({best.configuration})"
                 + ("; its test accuracy is the reference for Δ test." if tested else "."))]


def _delta(value: Optional[float], reference: Optional[float]) -> Cell:
    if value is None or reference is None:
        return Cell("", None, True)
    delta = 100 * (value - reference)
    return Cell(f"{delta:+.2f}", delta, True)


def _unfinished(data: ReportData) -> list[Block]:
    runs = [run for run in data.runs if not run.done]
    if not runs:
        return []
    from cnnlab.spec.plan import configuration_label

    rows = []
    for run in runs:
        label = configuration_label(run.architecture, run.variant, run.sweep or {}, run.phase)
        error = (run.error or "").strip()
        rows.append([text(label), count(run.repeat), text(run.status), count(run.epochs_done),
                     text(error if len(error) <= 400 else error[:400] + "...")])
    return [Subheading("Runs that did not finish", "unfinished"),
            Table(["configuration", "repeat", "status", "epochs done", "error"], rows, anchor="unfinished-table"),
            Note("'cnnlab run' with the same spec and output folder trains queued runs and resumes interrupted ones.")]


# ---------------------------------------------------------------- 3. learning curves


@section(order=30)
def learning_curves(data: ReportData) -> Section:
    if not data.curves:
        return Section.absent("curves", "Learning curves", "no run has finished, so there are no per-epoch metrics to draw.")
    curves = data.curves
    several = max(curve.runs for curve in curves) > 1
    context = curve_context(data)  # each variant's colour from the spec's order, notes on known effects
    validation = "validation = test split" if validates_on_test(data.spec) else "validation"
    blocks: list[Block] = [
        Figure("accuracy-per-configuration", figures.draw_small_multiples(curves, "accuracy", context=context),
               f"Train and {validation} accuracy per epoch, one panel per configuration",
               f"Accuracy per configuration: train (solid) and {validation} (dashed), shared axes, a colour per "
               "variant; the grey dash-dot line marks the best epoch"
               + ("; mean over repeats, band: its 95% t-interval." if several else ".")),
        Figure("loss-per-configuration", figures.draw_small_multiples(curves, "loss", context=context),
               f"Train and {validation} loss per epoch, one panel per configuration",
               f"Per configuration, on shared logarithmic axes: {loss_words(data.spec)}."),
    ]
    if validation_warning(data.spec):
        blocks.insert(0, Caution(validation_warning(data.spec)))
    architectures = list(dict.fromkeys(curve.architecture for curve in curves))
    overlays = [(arch, [c for c in curves if c.architecture == arch]) for arch in architectures]
    overlays = [(arch, members) for arch, members in overlays if len(members) > 1]
    if overlays:
        blocks.append(Subheading("Configurations compared, per architecture", "overlays"))
        for number_, (arch, members) in enumerate(overlays, start=1):
            blocks.append(Figure(f"overlay-{number_}-{slug(arch, 'architecture')}",
                                 figures.draw_overlay(arch, members, context=context),
                                 f"Train and {validation} curves of the configurations of architecture {arch}",
                                 f"Architecture {arch}: every configuration on the same axes."))
    else:
        blocks.append(Note("Each architecture has a single configuration, so there is no per-architecture overlay."))
    blocks += rate_blocks(data)  # the learning rate per epoch
    return Section("curves", "Learning curves", blocks)


# ---------------------------------------------------------------- 4. model summaries


@section(order=40)
def model_summaries(data: ReportData) -> Section:
    cards = data.models
    if not any(card.text for card in cards):
        reason = cards[0].reason if cards else "the study has no configurations in the store."
        return Section.absent("models", "Model summaries", f"no model could be summarized: {reason}")
    blocks: list[Block] = [Note("Keras-style: channels-last output shapes (batch first as None); batch-norm moving "
                                "statistics count as non-trainable parameters, as Keras counts them.")]
    blocks += parameter_blocks(data)  # per architecture: shapes, parameters, conv vs dense part (study E)
    for card in cards:
        if card.text is None:
            blocks.append(Note(f"{card.configuration}: no summary, {card.reason}"))
            continue
        blocks.append(Preformatted(card.text, f"{card.configuration}: {card.params_total:,} parameters "
                                              f"({card.params_trainable:,} trainable, {card.params_non_trainable:,} "
                                              "non-trainable)", collapsed=True))
    return Section("models", "Model summaries", blocks)
