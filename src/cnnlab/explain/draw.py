"""Explain figures made of image tiles: filters, feature maps, inputs, patches, attributions, examples.

Each function turns what the computing modules return (tensors, arrays, ``TopActivations``,
``Crop``) into a ``Figure`` (PNG bytes, title, caption and tile boxes) on the figure kit's tile
canvas (``cnnlab.figures``); nothing here runs a model. Histograms and bar charts are in ``charts.py``.

Every panel whose colours stand for values has a colour bar (``Scale``) under it: in the values
themselves where the tiles share one scale (raw filters, a layer's feature maps, a class's
saliency), in words where each tile is scaled on its own ("the tile's max").
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from cnnlab.explain.activations import TopActivations
from cnnlab.explain.byclass import NeuronsByClass, class_rule
from cnnlab.explain.images import InputImage, is_sample
from cnnlab.explain.receptive import Crop, ReceptiveField
from cnnlab.figures import (
    NEUTRAL, Cell, ExampleRow, Figure, Panel, Scale, colormap_rgb, compose, draw_examples, excluding, first, image_rgb,
    signed_rgb,
)


def grid_columns(count: int) -> int:
    """Columns of a near-square grid: 8 for 64 tiles, 16 for 256, 2 for 4."""
    return max(1, math.ceil(math.sqrt(count)))


def _numpy(values) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


# ---------------------------------------------------------------- filters


def _kernel_views(kernels: np.ndarray, channel: Optional[int]) -> tuple[np.ndarray, str]:
    """What one tile shows per filter: O x 3 x kh x kw (RGB) or O x 1 x kh x kw, and that in words."""
    in_channels = kernels.shape[1]
    if channel is not None:
        if not 0 <= channel < in_channels:
            raise ValueError(f"input channel {channel} does not exist; the kernels have {in_channels}")
        return kernels[:, channel:channel + 1], f"input channel {channel} of {in_channels} per tile"
    if in_channels == 3:
        return kernels, "the 3 input channels as RGB"
    if in_channels == 1:
        return kernels, "one input channel"
    return kernels.mean(axis=1, keepdims=True), f"the mean over the {in_channels} input channels per tile"


NORMALIZED_SCALE = Scale("gray", 0.0, 1.0, "each filter's own range", ("its min", "its max"))


def _weight_scale(peak: float, channels: int) -> Scale:
    return Scale("gray", -peak, peak, "weight value" + (" (each colour channel)" if channels == 3 else ""))


def _filter_cells(views: np.ndarray, indices: Sequence[int], peak: float, normalized: bool, prefix: str = ""
                  ) -> list[Cell]:
    cells = []
    for index, view in zip(indices, views):
        if normalized:
            low, high = float(view.min()), float(view.max())
            scaled = (view - low) / (high - low) if high > low else np.zeros_like(view)
            rgb = scaled.transpose(1, 2, 0) if view.shape[0] == 3 else np.repeat(scaled[0][..., None], 3, axis=2)
        else:
            scaled = 0.5 + 0.5 * view / peak if peak > 0 else np.full(view.shape, 0.5)
            rgb = scaled.transpose(1, 2, 0) if view.shape[0] == 3 else np.repeat(scaled[0][..., None], 3, axis=2)
        key = f"{prefix}{'normalized' if normalized else 'raw'} {index}"
        cells.append(Cell(np.asarray(rgb, dtype=np.float32), str(index), key))
    return cells


def draw_filters(kernels, layer: str, channel: Optional[int] = None, indices: Optional[Sequence[int]] = None,
                 name: Optional[str] = None, note: str = "") -> Figure:
    """A conv layer's kernels as a grid (8x8 for 64), raw and min-max normalized per filter.

    RGB-input kernels are drawn in colour; deeper ones as the mean over their input channels,
    or one input channel (``channel``). Raw tiles share one scale centred on grey (0). ``note``
    (layers asked for but not drawn, and why) ends the caption.
    """
    weights = _numpy(kernels)
    chosen = list(range(len(weights))) if indices is None else [int(i) for i in indices]
    views, what = _kernel_views(weights[chosen], channel)
    peak = float(np.abs(views).max()) if views.size else 0.0
    cols = grid_columns(len(chosen))
    size = f"{weights.shape[2]}x{weights.shape[3]}"
    raw = Panel(_filter_cells(views, chosen, peak, False), cols, tile=48, title="raw: one scale, grey = 0",
                scale=_weight_scale(peak, views.shape[1]))
    normalized = Panel(_filter_cells(views, chosen, peak, True), cols, tile=48, title="min-max per filter",
                       scale=NORMALIZED_SCALE)
    count = f"{len(chosen)} of {len(weights)}" if len(chosen) != len(weights) else f"{len(weights)}"
    title = f"{layer} filters: {count} kernels {size}"
    subtitle = (f"Kernels of {layer} ({weights.shape[0]} filters x {weights.shape[1]} input channels x {size}); "
                f"each tile shows {what}; the number above a tile is the filter index. Left: raw values on one "
                f"scale for the layer (grey = 0, white = +{peak:.3g}, black = -{peak:.3g}); right: each filter "
                f"min-max normalized on its own." + (f" Not shown: {note}." if note else ""))
    return compose(name or f"filters_{layer}", title, subtitle, [raw, normalized], subtitle=subtitle)


def draw_filter_comparison(kernels_by_layer: dict[str, object], last: int = 8, channel: Optional[int] = None,
                           name: str = "filters_compare") -> Figure:
    """The last ``last`` filters of each layer, one row per layer (raw and normalized), side by side."""
    raw_cells, normalized_cells, rows, notes = [], [], [], []
    for layer, kernels in kernels_by_layer.items():
        weights = _numpy(kernels)
        indices = list(range(max(0, len(weights) - last), len(weights)))
        views, what = _kernel_views(weights[indices], channel)
        peak = float(np.abs(views).max()) if views.size else 0.0
        raw = _filter_cells(views, indices, peak, False, prefix=f"{layer} ")
        normalized = _filter_cells(views, indices, peak, True, prefix=f"{layer} ")
        padding = [Cell(None)] * (last - len(indices))
        raw_cells += raw + padding
        normalized_cells += normalized + padding
        rows.append(layer)
        notes.append(f"{layer}: {what}, {weights.shape[2]}x{weights.shape[3]}")
    panels = [Panel(raw_cells, last, tile=48, title="raw: one scale per layer, grey = 0", row_labels=rows,
                    scale=Scale("gray", -1.0, 1.0, "weight / the layer's max |weight|", ("-max", "0", "+max"))),
              Panel(normalized_cells, last, tile=48, title="min-max per filter", row_labels=rows, scale=NORMALIZED_SCALE)]
    title = f"The last {last} filters of {' vs '.join(kernels_by_layer)}"
    subtitle = "; ".join(notes) + ". The number above a tile is the filter index."
    return compose(name, title, subtitle, panels, subtitle=subtitle)


# ---------------------------------------------------------------- inputs and feature maps


def draw_input(item: InputImage, x, normalize: str, prediction: Sequence[tuple[str, float]] = (),
               class_names: Sequence[str] = (), name: str = "input", note: str = "") -> Figure:
    """The input as read, as the model's uint8 input, and normalized, with the steps between them;
    ``note`` (what was asked but could not be shown) ends the caption."""
    model_input = _numpy(x)[0]
    panels = []
    steps = list(item.steps)
    if item.original is not None:
        original = item.original.astype(np.float32) / 255.0
        shrink = max(1, math.ceil(max(original.shape[:2]) / 192))
        width, height = item.original_size or original.shape[1::-1]
        panels.append(Panel([Cell(original[::shrink, ::shrink], f"{width}x{height} as read", "original")], 1,
                            tile=192, title="original photo" if is_sample(item.source) else "original file"))
    channels, height, width = item.image.shape
    kind = "grayscale" if channels == 1 else "RGB"
    panels.append(Panel([Cell(image_rgb(item.image), f"{width}x{height} {kind}, uint8", "model input")], 1,
                        tile=192, title="model input"))
    low, high = float(model_input.min()), float(model_input.max())
    if channels == 1:
        shown = colormap_rgb(model_input[0], low, high, "gray")
    else:
        shown = (model_input - low) / (high - low) if high > low else np.zeros_like(model_input)
        shown = shown.transpose(1, 2, 0)
    rule = {"unit": "x / 255", "none": "raw 0-255", "standardize": "(x - mean) / std of the train split"}[normalize]
    scale = Scale("gray", low, high, "model input value") if channels == 1 else Scale(
        "gray", low, high, "model input value (each colour channel)")
    panels.append(Panel([Cell(shown, f"values {low:.3g} to {high:.3g}", "normalized")], 1, tile=192,
                        title=f"normalized: {rule}", scale=scale))
    where = item.origin
    if item.label is not None and class_names:
        where += f", true class {class_names[item.label]}"
    guess = ", ".join(f"{label} {100 * p:.1f}%" for label, p in prediction)
    subtitle = (f"Input: {where}. " + (f"Preprocessing: {'; '.join(steps)}. " if steps else "")
                + (f"Predicted: {guess}." if guess else "") + (f" Not shown: {note}." if note else ""))
    return compose(name, f"Input {item.name}", subtitle, panels, subtitle=subtitle)


def draw_feature_maps(activation, layer: str, source: str, name: Optional[str] = None, max_maps: int = 256
                      ) -> Figure:
    """One layer's feature maps for one input, a labelled grid (channel index above each map).

    Every map on the layer's one scale (viridis, the layer's min to its max, the colour bar under
    the grid), so that a strongly and a weakly active channel look different; a map with a
    single value is labelled with it ("=0" for a dead map).
    """
    maps = _numpy(activation)
    if maps.ndim == 4:
        maps = maps[0]
    if maps.ndim != 3:
        raise ValueError("draw_feature_maps takes a C x H x W activation; use charts.draw_units for flat layers")
    shown = min(len(maps), max_maps)
    layer_low, layer_high = (float(maps[:shown].min()), float(maps[:shown].max())) if shown else (0.0, 0.0)
    cells, flat = [], 0
    for channel in range(shown):
        values = maps[channel]
        low, high = float(values.min()), float(values.max())
        label = str(channel)
        if high <= low:
            flat += 1
            label = f"{channel} ={low:.2g}"
        cells.append(Cell(colormap_rgb(values, layer_low, layer_high), label, f"channel {channel}"))
    shape = tuple(maps.shape)
    title = f"{layer} {shape} for {source}"
    more = f" The first {shown} of {len(maps)} maps are shown." if shown < len(maps) else ""
    subtitle = (f"Output of {layer}, shape (channels, height, width) = {shape}, for input {source}. Every map on "
                f"one scale, the layer's min to its max (viridis, the colour bar); the number above a map is its "
                f"channel index."
                + (f" {flat} map(s) hold one value everywhere ('=v')." if flat else "") + more)
    tile = 64 if shown <= 64 else 40
    scale = Scale("viridis", layer_low, layer_high, f"activation value of {layer}")
    return compose(name or f"maps_{layer}", title, subtitle, [Panel(cells, grid_columns(shown), tile=tile, scale=scale)],
                   subtitle=subtitle)


# ---------------------------------------------------------------- top patches and unit attributions


def _patch_rows(top: TopActivations, tiles: list[list[np.ndarray]], split: str, kind: str,
                scale: Optional[Scale] = None) -> Panel:
    cells = []
    for row, channel in enumerate(top.channels):
        for rank, ((value, image, r, c), tile) in enumerate(zip(top.rank(row), tiles[row])):
            label = f"{value:.3g}\n{split}:{image} ({r},{c})"
            cells.append(Cell(tile, label, f"{kind} channel {channel} rank {rank}"))
    k = top.values.shape[1]
    return Panel(cells, k, tile=64, row_labels=[f"ch {c}" for c in top.channels], scale=scale)


def draw_patches(top: TopActivations, crops: list[list[Crop]], field: ReceptiveField, split: str,
                 name: Optional[str] = None) -> Figure:
    """One row of input patches per channel: what excites it most, with the activation value.

    Each patch is the exact receptive field of the unit, traced back through every layer; where
    the field leaves the image (the layer saw padding there) the tile is filled with grey.
    """
    tiles = [[image_rgb(crop.padded(round(NEUTRAL * 255))) for crop in row] for row in crops]
    panel = _patch_rows(top, tiles, split, "patch")
    layer = top.layer
    title = f"Top-activating patches of {layer} ({split} split)"
    subtitle = (f"For each channel of {layer} (row), the {top.values.shape[1]} {split} images whose strongest "
                f"unit of that channel is highest, cropped to the unit's receptive field: {field.size[0]}x"
                f"{field.size[1]} input pixels (jump {field.jump[0]}, start {field.start[0]:g}). Above each "
                f"patch: the activation, then split:index (row, col of the unit). Grey: outside the image.")
    return compose(name or f"patches_{layer}", title, subtitle, [panel], subtitle=subtitle)


def draw_patches_by_class(grouped: NeuronsByClass, top: TopActivations, crops: list[list[Crop]],
                          field: ReceptiveField, split: str, class_names: Sequence[str],
                          name: Optional[str] = None) -> Figure:
    """One row per class: the neurons of the layer that class excites most (``byclass``'s rule), each
    shown by its strongest top patch of that class; ``crops`` follow ``grouped.rows``."""
    width = max([len(row) for row in grouped.rows] + [1])
    cells, labels = [], []
    for c, (row, row_crops) in enumerate(zip(grouped.rows, crops)):
        for neuron, patch in zip(row, row_crops):
            value, image, r, col = top.rank(neuron.row)[neuron.rank]
            cells.append(Cell(image_rgb(patch.padded(round(NEUTRAL * 255))),
                              f"ch {neuron.channel}: {neuron.count}/{grouped.k}\n{split}:{image} {value:.3g}",
                              f"class {c} channel {neuron.channel}"))
        cells += [Cell(None)] * (width - len(row))
        total = grouped.totals[c]
        count = f"{len(row)} of {total}" if total > len(row) else f"{total or 'no'}"
        labels.append(f"{class_names[c]}: {count} neuron{'' if total == 1 else 's'}")
    layer = grouped.layer
    panel = Panel(cells, width, tile=64, row_labels=labels)
    title = f"Neurons of {layer} by the class they respond to ({split} split)"
    dead = (f" {len(grouped.flat)} neuron(s) with all top activations equal, in no row: channel(s) "
            f"{', '.join(map(str, grouped.flat))}." if grouped.flat else "")
    subtitle = (f"One row per class (the row label: the class and how many of the {len(top.channels)} neurons of "
                f"{layer} are its). Rule: {class_rule(grouped.k)}.{dead} In a row, neurons with more of the class among "
                f"their top images first, then the stronger; each tile is the neuron's strongest patch among its "
                f"top images of that class, cropped to the unit's {field.size[0]}x{field.size[1]} receptive field. "
                f"Above each: channel, how many of its top {grouped.k} {split} images carry the class, then "
                f"split:index and the activation. Grey: outside the image.")
    return compose(name or f"patches_by_class_{layer}", title, subtitle, [panel], subtitle=subtitle)


def draw_unit_attributions(top: TopActivations, crops: list[list[Crop]], field: ReceptiveField, split: str,
                           method: str, name: Optional[str] = None) -> Figure:
    """Guided backprop (or saliency) of each channel's top units, cropped to their receptive fields.

    ``crops`` hold attribution maps (C x h x w) cropped like the patches; the columns match the
    patches figure of the same layer and split one for one.
    """
    tiles = []
    for row in crops:
        tiles.append([_attribution_rgb(crop.padded(0.0), method) for crop in row])
    relative = (Scale("gray", -1.0, 1.0, "gradient / the tile's max |gradient|", ("-max", "0", "+max"))
                if method == "guided" else Scale("gray", 0.0, 1.0, "|gradient| / the tile's max", ("0", "max")))
    panel = _patch_rows(top, tiles, split, method, relative)
    layer = top.layer
    words = {"guided": "Guided backpropagation", "saliency": "Saliency (|gradient|)"}[method]
    scale = ("grey = 0, lighter/darker = positive/negative (colour channels for RGB)" if method == "guided"
             else "black = 0, white = the largest |gradient| of the tile (max over colour channels)")
    title = f"{words} of the top units of {layer} ({split} split)"
    subtitle = (f"For each channel of {layer} (row) and each of its top {top.values.shape[1]} {split} images (same "
                f"order as the patches figure), the {words.lower()} of that one unit to the input, cropped to its "
                f"{field.size[0]}x{field.size[1]} receptive field; each tile scaled on its own: {scale}.")
    return compose(name or f"{method}_{layer}", title, subtitle, [panel], subtitle=subtitle)


def _attribution_rgb(values: np.ndarray, method: str, peak: Optional[float] = None) -> np.ndarray:
    """An attribution map's colours, scaled to ``peak`` (default: the map's own largest |value|)."""
    if method == "guided":
        return signed_rgb(values, peak)
    magnitude = np.abs(values).max(axis=0)
    return colormap_rgb(magnitude, 0.0, float(magnitude.max()) if peak is None else peak, "gray")


def draw_class_attributions(image: np.ndarray, source: str, classes: Sequence[tuple[str, float]],
                            maps: Sequence[np.ndarray], method: str, name: Optional[str] = None,
                            true_label: Optional[str] = None) -> Figure:
    """The input and, per class, its saliency map or guided backpropagation."""
    cells = [Cell(image_rgb(image), "input" + (f"\ntrue class {true_label}" if true_label is not None else ""), "input")]
    arrays = [_numpy(values) for values in maps]
    # One scale for every class, so that a stronger attribution looks stronger.
    peak = max((float(np.abs(values).max()) for values in arrays), default=0.0)
    for (label, probability), values in zip(classes, arrays):
        cells.append(Cell(_attribution_rgb(values, method, peak), f"class {label}\np={probability:.2f}",
                          f"class {label}"))
    words = {"guided": "Guided backpropagation", "saliency": "Saliency"}[method]
    how = ("d logit / d input with ReLU gradients kept only where positive (Springenberg et al.); grey = 0"
           if method == "guided" else "|d logit / d input|, max over colour channels (Simonyan et al.); black = 0")
    subtitle = (f"{words} of each class logit for input {source}: {how}. Every class on one scale (the colour bar); "
                f"p is the predicted probability of the class.")
    scale = (Scale("gray", -peak, peak, "d logit / d input pixel") if method == "guided"
             else Scale("gray", 0.0, peak, "|d logit / d input pixel|"))
    return compose(name or method, f"{words} for {source}", subtitle, [Panel(cells, len(cells), tile=128, scale=scale)],
                   subtitle=subtitle)


# ---------------------------------------------------------------- classified examples

EXAMPLE_KINDS = {"correct": "correct", "wrong": "first mistakes (split order)",
                 "confident_wrong": "most confident mistakes, not shown above"}


def examples_figure(examples: dict[str, np.ndarray], class_names: Sequence[str], counts: dict[str, int],
                    name: str = "examples") -> Figure:
    """A run's stored examples (correct, wrong, most confidently wrong) in the kit's examples grid,
    ``counts[kind]`` of each, labelled with split:index, true class, prediction and confidence.

    The most confident mistakes leave out those the first mistakes show; with no other mistake
    stored, there is one row of mistakes.
    """
    split = str(examples.get("split", "test"))
    rows: list[ExampleRow] = []
    for kind, words in EXAMPLE_KINDS.items():
        count = counts.get(kind, 0)
        if not count or f"{kind}_images" not in examples:
            continue
        row = ExampleRow(words, kind, *(examples[f"{kind}_{part}"] for part in
                                        ("images", "labels", "predicted", "confidence", "index")))
        row = first(excluding(row, rows), count)
        if len(row.images):
            rows.append(row)
    shown = {row.title: len(row.images) for row in rows}
    subtitle = (f"Images of the {split} split, classified by the run's final weights: "
                + ", ".join(f"{n} {words}" for words, n in shown.items())
                + ". Above each: split:index, the true class, the predicted class and its softmax confidence.")
    return draw_examples(rows, class_names, per_row=max([counts.get(kind, 0) for kind in EXAMPLE_KINDS] + [1]),
                         split=split, name=name, title=f"Classified examples ({split} split)", subtitle=subtitle)
