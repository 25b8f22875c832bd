"""Three tables the reference studies had (USER_STUDIES.md), added to the report's sections:

- study B: the number of conv layers and the best train and validation accuracy of any epoch,
  as columns of the results table (``add_best_columns``);
- study E: per architecture, each layer's input and output shape and parameters, then the
  parameters and neurons of the conv part against the dense part (``parameter_blocks``, in the
  model section);
- study C: what a variant with training settings of its own changes from the original, setting by
  setting (``change_blocks``, under the results table).

Only variants with their own ``train:`` get a changes table: a variant that changes layers alone
is told by its name, its spec and its model summary, and a table for each of a grid's variants
would repeat them; one that also trains differently (another learning rate, more epochs) cannot
be compared with the others from the results table without knowing that.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from cnnlab.analysis.tables import ResultRow
from cnnlab.records import RunRecord
from cnnlab.report.data import ReportData
from cnnlab.report.document import Block, Cell, Note, Subheading, Table, count, percent, slug, text

# ---------------------------------------------------------------- study B: best of any epoch, conv layers

BEST_TITLES = {"conv layers": "number of conv layers in the configuration's model",
               "best train acc %": "the highest train accuracy of any epoch, mean over runs",
               "best val acc %": "the highest validation accuracy of any epoch, mean over runs"}


def add_best_columns(data: ReportData, blocks: list[Block]) -> None:
    """Add 'conv layers' after 'params' and the best train and validation accuracy of any epoch
    after 'val acc %' to the results table among ``blocks`` (one table row per ``data.rows`` row)."""
    table = next((b for b in blocks if isinstance(b, Table) and b.anchor == "results-table"), None)
    if table is None or len(table.rows) != len(data.rows):
        return
    for after, column, cell in (("params", "conv layers", lambda row: count(row.conv_layers)),
                                ("val acc %", "best val acc %", lambda row: percent(row.best_val_accuracy)),
                                ("val acc %", "best train acc %", lambda row: percent(row.best_train_accuracy))):
        if after not in table.columns:
            continue
        at = table.columns.index(after) + 1
        table.columns.insert(at, column)
        for cells, row in zip(table.rows, data.rows):
            cells.insert(at, cell(row))
        table.titles[column] = BEST_TITLES[column]
    note = blocks.index(table) + 1
    if note < len(blocks) and isinstance(blocks[note], Note):
        blocks[note].text += (" Best train and val acc: the highest accuracy of any epoch (which epoch may differ), "
                              "mean over the runs.")


# ---------------------------------------------------------------- study E: parameters per architecture


def baseline_variant(data: ReportData) -> Optional[str]:
    """The variant the others are compared with: evaluate.baseline, else the spec's first."""
    variants = list(data.spec.get("variants") or {})
    return data.study.setting("evaluate", "baseline") or (variants[0] if variants else None)


def _runs_of(data: ReportData, row: ResultRow) -> list[RunRecord]:
    by_id = {run.id: run for run in data.runs}
    return sorted((by_id[i] for i in row.run_ids if i in by_id), key=lambda run: run.position)


def _plan_order(data: ReportData, rows: list[ResultRow]) -> list[ResultRow]:
    return sorted(rows, key=lambda row: min((run.position for run in _runs_of(data, row)), default=0))


def parameter_blocks(data: ReportData) -> list[Block]:
    """Per architecture, its baseline configuration's layers (input and output shape,
    parameters, part) and the conv / dense split of its parameters and neurons."""
    from cnnlab.models import build_model, summarize
    from cnnlab.models.summary import input_shapes, model_parts, shape_text
    from cnnlab.spec.plan import RunConfig

    baseline = baseline_variant(data)
    blocks: list[Block] = []
    selected = [row for row in _plan_order(data, data.rows) if row.phase == "select"]
    for number, architecture in enumerate(dict.fromkeys(row.architecture for row in selected), start=1):
        rows = [row for row in selected if row.architecture == architecture]
        row = next((r for r in rows if r.variant == baseline), rows[0])
        run = next((r for r in _runs_of(data, row) if r.config and r.input_shape and r.class_names), None)
        if run is None:
            continue  # the model section says why it has no summary
        try:
            config = RunConfig.model_validate(run.config)
            built = build_model(config.layer_list(), tuple(run.input_shape), len(run.class_names),
                                variant=config.variant_spec)
        except Exception:  # the model section names the error beside the configuration
            continue
        summary = summarize(built)
        parts = model_parts(summary)
        layers = [[text(info.name), text(info.keras_type), text(shape_text(shape)), text(shape_text(info.output_shape)),
                   count(info.params), text(part)]
                  for info, shape, part in zip(summary.rows, input_shapes(summary), parts.parts)]
        total = parts.total

        def share(amount: int, whole: int) -> Cell:
            return Cell(f"{100 * amount / whole:.1f}" if whole else "", 100 * amount / whole if whole else None, True)

        split = [[text(name), count(part.params), share(part.params, total.params), count(part.neurons),
                  share(part.neurons, total.neurons)]
                 for name, part in (("conv", parts.conv), ("dense", parts.dense), ("total", total))]
        anchor = f"parameters-{number}-{slug(architecture, 'architecture')}"
        blocks += [Subheading(f"Parameters of {architecture}, layer by layer ({row.configuration})", anchor),
                   Table(["layer", "type", "input shape", "output shape", "parameters", "part"], layers,
                         anchor=f"{anchor}-layers", caption=f"{row.configuration}: each layer's input and output "
                         "shape (Keras order: batch, height, width, channels) and parameters"),
                   Table(["part", "parameters", "% of parameters", "neurons", "% of neurons"], split,
                         anchor=f"{anchor}-split", caption=f"{row.configuration}: parameters and neurons of the "
                         "convolutional part against the dense part")]
    if blocks:
        blocks.append(Note("Each architecture's baseline variant (evaluate.baseline, else the first variant). The conv "
                           "part is every layer whose output is a feature map, the dense part every layer from "
                           "flatten on: a batch norm counts with the part it sits in. Neurons: each output value of "
                           "a conv layer (height x width x filters) and each unit of a dense layer."))
    return blocks


# ---------------------------------------------------------------- study C: changes from the original

LAYER_CHANGES = (("l1", "L1 penalty"), ("l2", "L2 penalty"), ("dropout", "dropout"), ("batchnorm", "batch norm"),
                 ("remove", "removed layers"))
TRAIN_WORDS = {"optimizer.name": "optimizer", "optimizer.lr": "learning rate", "epochs": "epochs",
               "batch_size": "batch size", "schedule.name": "schedule", "init": "initialization"}
DEFAULT_PLACES = {"l1": "every conv and dense layer", "l2": "every conv and dense layer",
                  "dropout": "each pooling layer and hidden dense layer",
                  "batchnorm": "each conv and hidden dense layer"}


def change_blocks(data: ReportData) -> list[Block]:
    """A table per variant with training settings of its own: setting | original | this variant."""
    variants = data.spec.get("variants") or {}
    own = [name for name, body in variants.items() if (body or {}).get("train")]
    blocks: list[Block] = []
    for name in own:
        blocks += _changes(data, name, variants)
    if not blocks:
        return []
    return [Subheading("Changes from the original", "changes"), *blocks,
            Note("Variants that train with settings of their own (their 'train:'), against the original: the "
                 "baseline variant at the same architecture and sweep point, trained with the study's settings. "
                 "Only what differs is listed; settings as the runs used them (command-line overrides included).")]


def _changes(data: ReportData, name: str, variants: Mapping[str, Any]) -> list[Block]:
    mine = _plan_order(data, [row for row in data.rows if row.variant == name and row.phase == "select"])
    if not mine:
        return []
    row = mine[0]
    original = _original(data, row, variants)
    train = _train_of(data, row)
    base_train = _train_of(data, original) if original is not None else data.spec.get("train") or {}
    body, base_body = variants.get(name) or {}, (variants.get(original.variant) or {}) if original else {}
    rows = []
    for key, words in LAYER_CHANGES:
        before, after = _layer_text(base_body, key, row.architecture), _layer_text(body, key, row.architecture)
        if before != after:
            rows.append([text(words), text(before), text(after)])
    flat_before, flat_after = _flat(base_train), _flat(train)
    keys = list(dict.fromkeys([*flat_before, *flat_after]))
    for key in sorted(keys, key=lambda k: (list(TRAIN_WORDS).index(k) if k in TRAIN_WORDS else len(TRAIN_WORDS), k)):
        before, after = _value(flat_before.get(key)), _value(flat_after.get(key))
        if before != after:
            words = TRAIN_WORDS.get(key, key)
            label = words if words == key else f"{words} ({key})"
            rows.append([text(label), text(before), text(after)])
    for metric, words in (("val_accuracy", "result: val acc %"), ("test_accuracy", "result: test acc %")):
        values = [getattr(r, metric) for r in (original, row) if r is not None]
        if any(value is not None for value in values):
            rows.append([text(words), percent(getattr(original, metric) if original else None),
                         percent(getattr(row, metric))])
    against = original.configuration if original else "the study's settings and base architecture"
    blocks: list[Block] = [Table(["setting", "original", "this variant"], rows, anchor=f"changes-{slug(name)}",
                                 caption=f"{row.configuration} against the original, {against}")]
    if len(mine) > 1:
        blocks.append(Note(f"Shown at {row.configuration}; variant {name} also runs as "
                           + ", ".join(r.configuration for r in mine[1:]) + "."))
    return blocks


def _original(data: ReportData, row: ResultRow, variants: Mapping[str, Any]) -> Optional[ResultRow]:
    """The baseline configuration beside ``row`` (same architecture and sweep point), or the first
    variant there that trains with the study's settings; None when there is none."""
    plain = [name for name, body in variants.items() if not (body or {}).get("train")]
    baseline = baseline_variant(data)
    order = ([baseline] if baseline in plain else []) + [name for name in plain if name != baseline]
    beside = {r.variant: r for r in data.rows if r.phase == "select" and r.architecture == row.architecture
              and r.sweep == row.sweep}
    return next((beside[name] for name in order if name in beside), None)


def _train_of(data: ReportData, row: ResultRow) -> Mapping[str, Any]:
    """The training settings a configuration's runs used (the study's, its sweep point's and its
    variant's, with command-line overrides)."""
    run = next((r for r in _runs_of(data, row) if r.config), None)
    return ((run.config if run else None) or {}).get("train") or {}


def _pick(selectors: Any, architecture: str) -> Optional[list[Any]]:
    return selectors.get(architecture) if isinstance(selectors, Mapping) else selectors


def _layer_text(body: Mapping[str, Any], key: str, architecture: str) -> str:
    """What a variant's ``key`` does, in words (``0.01 on conv1, conv3, dense1``); "none" if nothing."""
    value = body.get(key)
    if not value:
        return "none"
    if key == "remove":
        return ", ".join(map(str, _pick(value, architecture) or [])) or "none"
    field = "on" if key in ("l1", "l2") else "after"
    places = _pick(value.get(field), architecture) or _pick(body.get(field), architecture)
    where = ", ".join(map(str, places)) if places else DEFAULT_PLACES[key]
    if key == "batchnorm":
        before = " (before the activation)" if value.get("position") == "before_activation" else ""
        return f"after {where}{before}"
    amount = value.get("factor") if key in ("l1", "l2") else value.get("rate")
    return f"{_value(amount)} {field} {where}"


def _flat(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(item) for item in value)
    return str(value)
