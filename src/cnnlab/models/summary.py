"""Keras-style model summary: computed from a built model, then drawn as a fixed-width table.

Users check a study against a Keras report by its ``model.summary()``, so the table shows Keras
class names, channels-last output shapes ``(None, H, W, C)`` and Keras' parameter counts
(batch-norm moving mean and variance as non-trainable). Computing and drawing are apart so the
report and JSON output use the numbers without parsing text. ``model_parts`` splits parameters
and neurons between the convolutional and the dense part, as study E's parameter table does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from cnnlab.models.build import BuiltModel

# Keras' Sequential summary: 65 characters, columns ending at 45% / 85% / 100%.
COLUMN_WIDTHS = (29, 26, 10)


@dataclass(frozen=True)
class SummaryRow:
    """One table row: a layer's name, Keras class, channels-last output shape and parameter count."""

    name: str
    keras_type: str
    output_shape: tuple[Optional[int], ...]  # Keras order, batch first as None
    params: int


@dataclass(frozen=True)
class ModelSummary:
    """The numbers of a model summary, ready to print, store or compare."""

    rows: tuple[SummaryRow, ...]
    input_shape: tuple[Optional[int], ...]  # Keras order, batch first as None
    total_params: int
    trainable_params: int
    non_trainable_params: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = [dict(row, output_shape=list(row["output_shape"])) for row in data["rows"]]
        data["input_shape"] = list(self.input_shape)
        return data


def keras_shape(shape: tuple[int, ...]) -> tuple[Optional[int], ...]:
    """PyTorch (C, H, W) or (F,) without batch -> Keras (None, H, W, C) or (None, F)."""
    if len(shape) == 3:
        return (None, shape[1], shape[2], shape[0])
    return (None,) + tuple(shape)


def summarize(built: BuiltModel) -> ModelSummary:
    """The summary of a built model; reads the model, changes nothing."""
    rows = tuple(
        SummaryRow(info.name, info.keras_type, keras_shape(info.output_shape), info.params) for info in built.layers
    )
    return ModelSummary(rows=rows, input_shape=keras_shape(tuple(built.input_shape)),
                        total_params=built.total_params, trainable_params=built.trainable_params,
                        non_trainable_params=built.non_trainable_params)


def shape_text(shape: tuple[Optional[int], ...]) -> str:
    """``(None, 32, 32, 3)``, as Keras prints a shape."""
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ")"


def format_summary(summary: ModelSummary, title: str = "") -> str:
    """The summary as a text table like Keras' ``model.summary()`` (trailing spaces stripped)."""
    cells = [(f"{row.name} ({row.keras_type})", shape_text(row.output_shape), str(row.params))
             for row in summary.rows]
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max([width] + [len(cell[i]) + 2 for cell in cells]) for i, width in enumerate(COLUMN_WIDTHS)]
    line_length = sum(widths) + 1

    def line(values: tuple[str, str, str]) -> str:
        return (" " + "".join(value.ljust(width) for value, width in zip(values, widths))).rstrip()

    out = [f'Model: "{title}"'] if title else []
    out.append("_" * line_length)
    out.append(line(header))
    out.append("=" * line_length)
    out.extend(line(cell) for cell in cells)
    out.append("=" * line_length)
    out.append(f"Total params: {summary.total_params:,}")
    out.append(f"Trainable params: {summary.trainable_params:,}")
    out.append(f"Non-trainable params: {summary.non_trainable_params:,}")
    out.append("_" * line_length)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- parameters by part (study E's table)

Shape = tuple[Optional[int], ...]


def input_shapes(summary: ModelSummary) -> list[Shape]:
    """Each row's input shape, Keras order: the model is a Sequential, so a layer takes the output
    of the layer before it, and the first layer the model's input."""
    return [summary.input_shape] + [row.output_shape for row in summary.rows[:-1]]


@dataclass(frozen=True)
class PartCounts:
    """One part of a model: its parameters and its neurons."""

    params: int
    neurons: int


@dataclass(frozen=True)
class ModelParts:
    """A model split into its convolutional part and its dense part, as study E's report splits it.

    A layer is in the conv part while its output is a feature map (None, H, W, C), and in the
    dense part from the first flat output on (flatten included), so a batch norm counts with the
    part it sits in: after a conv in the conv part, after a dense (the output one too) in the
    dense part. Neurons are the units that compute a weighted sum: a conv layer's every output
    value (H x W x C, one per position and filter) and a dense layer's units; pooling, batch norm
    and dropout add none.
    """

    conv: PartCounts
    dense: PartCounts
    parts: tuple[str, ...]  # "conv" or "dense", one per summary row

    @property
    def total(self) -> PartCounts:
        return PartCounts(self.conv.params + self.dense.params, self.conv.neurons + self.dense.neurons)


def _neurons(row: SummaryRow) -> int:
    if row.keras_type not in ("Conv2D", "Dense"):
        return 0
    count = 1
    for size in row.output_shape[1:]:
        count *= size or 0
    return count


def model_parts(summary: ModelSummary) -> ModelParts:
    """The conv / dense split of a summary's parameters and neurons (see ``ModelParts``)."""
    parts: list[str] = []
    for row in summary.rows:
        flat = len(row.output_shape) < 4
        parts.append("dense" if flat or (parts and parts[-1] == "dense") else "conv")
    counts = {part: PartCounts(sum(row.params for row, p in zip(summary.rows, parts) if p == part),
                               sum(_neurons(row) for row, p in zip(summary.rows, parts) if p == part))
              for part in ("conv", "dense")}
    return ModelParts(counts["conv"], counts["dense"], tuple(parts))
