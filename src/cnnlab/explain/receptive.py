"""Receptive fields from every layer's kernel, stride, padding and dilation, and patch trace-back.

Convention (the one of Araujo et al., "Computing receptive fields of convolutional neural
networks", Distill 2019, written per axis): input pixel centres sit at integer coordinates
0 .. H-1. For each layer with a spatial output,

- ``size``  is how many input pixels along the axis can affect one unit (padding included),
- ``jump``  is the distance in input pixels between neighbouring units (the product of strides),
- ``start`` is the input coordinate of the centre of the top-left unit (0, 0).

Through a layer with kernel k, dilation d, stride s and padding p before (top or left),
with the effective kernel ke = (k - 1) * d + 1:

    size_out  = size_in + (ke - 1) * jump_in
    jump_out  = jump_in * s
    start_out = start_in + ((ke - 1) / 2 - p) * jump_in

Unit (i, j) then sees the input rows ``start + i * jump - (size - 1) / 2`` up to
``start + i * jump + (size - 1) / 2`` (always whole numbers; see ``ReceptiveField.box``).
Layers without a window (batch norm, dropout, activation) pass the field on unchanged;
flatten, dense and global pooling have no spatial output and get no entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cnnlab.errors import ModelError
from cnnlab.models.shapes import LayerInfo
from cnnlab.registry import did_you_mean

WINDOW_KINDS = ("conv", "maxpool", "avgpool")


@dataclass(frozen=True)
class ReceptiveField:
    """One layer's receptive field: (height, width) pairs of size, jump and start (see module doc)."""

    name: str
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    output_shape: tuple[int, ...] = ()

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """Input rows and columns unit (row, col) sees, unclipped: (top, left, bottom, right), end exclusive."""
        top = self.start[0] + row * self.jump[0] - (self.size[0] - 1) / 2
        left = self.start[1] + col * self.jump[1] - (self.size[1] - 1) / 2
        # Whole numbers by construction: top-left = -sum(pad_before * jump_in) over the layers.
        top, left = int(round(top)), int(round(left))
        return top, left, top + self.size[0], left + self.size[1]


@dataclass(frozen=True)
class Crop:
    """An input patch under one unit: the pixels inside the image, where they are, and what was cut.

    ``box`` is the unclipped field (top, left, bottom, right); ``clipped`` says how many rows or
    columns of it fell outside the image (top, bottom, left, right), where the layer saw padding.
    ``pixels`` (C x h x w) is the part inside the image, smaller than the field at the border.
    """

    pixels: np.ndarray
    box: tuple[int, int, int, int]
    clipped: tuple[int, int, int, int]

    def padded(self, fill: float | int) -> np.ndarray:
        """The patch at the field's full size, with ``fill`` where the field leaves the image."""
        top, bottom, left, right = self.clipped
        return np.pad(self.pixels, ((0, 0), (top, bottom), (left, right)), constant_values=fill)


def receptive_fields(layers: Sequence[LayerInfo]) -> list[ReceptiveField]:
    """The receptive field of every layer with a spatial output, in order (see the module doc)."""
    size, jump, start = [1, 1], [1, 1], [0.0, 0.0]
    fields: list[ReceptiveField] = []
    for info in layers:
        if len(info.output_shape) != 3:
            continue  # flatten, dense, global pooling: nothing spatial to trace
        if info.kind in WINDOW_KINDS:
            pad_before = (info.pad[0], info.pad[2])
            for axis in (0, 1):
                effective = (info.kernel[axis] - 1) * info.dilation[axis] + 1
                start[axis] = start[axis] + ((effective - 1) / 2 - pad_before[axis]) * jump[axis]
                size[axis] = size[axis] + (effective - 1) * jump[axis]
                jump[axis] = jump[axis] * info.stride[axis]
        fields.append(ReceptiveField(info.name, (size[0], size[1]), (jump[0], jump[1]),
                                     (float(start[0]), float(start[1])), tuple(info.output_shape)))
    return fields


def receptive_field(layers: Sequence[LayerInfo], name: str) -> ReceptiveField:
    """The named layer's receptive field; a ModelError for an unknown or non-spatial layer."""
    fields = {field.name: field for field in receptive_fields(layers)}
    if name in fields:
        return fields[name]
    names = [info.name for info in layers]
    if name in names:
        shape = next(info.output_shape for info in layers if info.name == name)
        raise ModelError(f"{name} has no spatial output (its output is {shape}), so it has no receptive field "
                         f"to trace; layers with one: {', '.join(fields)}")
    raise ModelError(f"the model has no layer '{name}'{did_you_mean(name, names)}; its layers are: {', '.join(names)}")


def crop(image: np.ndarray, field: ReceptiveField, row: int, col: int) -> Crop:
    """The patch of ``image`` (C x H x W) that unit (row, col) of the field's layer sees."""
    top, left, bottom, right = field.box(row, col)
    height, width = image.shape[-2:]
    clipped = (max(0, -top), max(0, bottom - height), max(0, -left), max(0, right - width))
    pixels = image[..., max(top, 0):min(bottom, height), max(left, 0):min(right, width)]
    return Crop(pixels=np.ascontiguousarray(pixels), box=(top, left, bottom, right), clipped=clipped)
