"""The figures of a layer's neurons: top-activating patches (per channel, and grouped by the class
each channel responds to) and unit attributions (guided backpropagation, saliency) on the same
top images.

Neuron layers are the spatial layers of the call's ``layers``, else the spec's setting for the
figure (``top_patches.layer`` for patches, ``guided_backprop.layer`` for the attributions, each
falling back on the other; a name, a position or a mapping architecture -> one of those,
resolved by ``picks``), else the last conv layer. The chosen channels are the ``neurons``
(default 10) whose best activation over the split (default test) is highest, strongest first,
each with its top ``k`` (default 9) images; one streaming pass per layer, split and k serves
every figure.
"""

from __future__ import annotations

from typing import Iterator, Optional

import torch

from cnnlab.errors import ModelError
from cnnlab.explain import attribution, draw
from cnnlab.explain.activations import TopActivations, top_activations
from cnnlab.explain.byclass import neurons_by_class
from cnnlab.explain.context import FigureContext
from cnnlab.explain.picks import resolve_layer
from cnnlab.explain.receptive import crop, receptive_field
from cnnlab.figures import Figure
from cnnlab.spec.evaluate import Neurons
from cnnlab.store import Store

SCAN_BATCH = 256


def neuron_settings(context: FigureContext, purpose: str) -> list[Neurons]:
    """The neuron layers and settings for ``purpose`` (patches, guided, saliency): see the module doc."""
    run = context.run
    spatial = context.spatial_layers()
    keys = ("top_patches", "guided_backprop") if purpose == "patches" else ("guided_backprop", "top_patches")
    key = next((name for name in keys if getattr(run.explain, name) is not None), keys[0])
    base = getattr(run.explain, key)
    if context.layers and context.layers != ["all"]:
        names = [name for name in context.layers if name in spatial]
        if not names:
            raise ModelError(f"none of the layers {context.layers} has a spatial output (conv or pooling); "
                             f"those that do: {', '.join(spatial)}")
    elif base is not None:
        names = [resolve_layer(run, base.layer, f"explain.{key}.layer", "spatial")]
    else:
        convs = context.conv_layers()
        if not convs:
            raise ModelError("the model has no conv layer to find top-activating neurons in")
        names = [convs[-1]]
    settings = base.model_dump() if base is not None else {}
    return [Neurons.model_validate({**settings, "layer": name}) for name in names]


def scan(context: FigureContext, neurons: Neurons, every: bool = False) -> TopActivations:
    """The chosen channels' top-k images of the split (``every``: all channels, in channel order), from one
    streaming pass (cached per call)."""
    key = (neurons.layer, neurons.split, neurons.k)
    if key not in context._scans:
        run = context.run
        receptive_field(run.built.layers, neurons.layer)  # a clear error for a layer without one
        data = run.split_data(neurons.split)
        context._scans[key] = top_activations(run.model, data, run.normalizer(), neurons.layer, None, neurons.k,
                                              SCAN_BATCH)
    top = context._scans[key]
    if every:
        return top
    order = torch.sort(top.values[:, 0], descending=True, stable=True).indices[:neurons.neurons]
    return TopActivations(layer=top.layer, channels=[top.channels[i] for i in order.tolist()], values=top.values[order],
                          image_index=top.image_index[order], position=top.position[order])


def patches(context: FigureContext, store: Optional[Store]) -> Iterator[Figure]:
    """Per neuron layer: the chosen channels' top patches, then every channel's by class (``byclass``)."""
    run = context.run
    for neurons in neuron_settings(context, "patches"):
        top = scan(context, neurons)
        field_ = receptive_field(run.built.layers, neurons.layer)
        data = run.split_data(neurons.split)
        images = data.images
        crops = [[crop(images[image].numpy(), field_, r, c) for _, image, r, c in top.rank(row)]
                 for row in range(len(top.channels))]
        yield draw.draw_patches(top, crops, field_, neurons.split)
        every = scan(context, neurons, every=True)
        # At most ``neurons`` per class row, as the per-neuron figure shows at most ``neurons`` rows.
        grouped = neurons_by_class(every, data.labels, len(run.class_names), neurons.neurons)
        crops = []
        for row in grouped.rows:
            ranked = [every.rank(neuron.row)[neuron.rank] for neuron in row]
            crops.append([crop(images[image].numpy(), field_, r, c) for _, image, r, c in ranked])
        yield draw.draw_patches_by_class(grouped, every, crops, field_, neurons.split, run.class_names)


def unit_figures(context: FigureContext, method: str) -> Iterator[Figure]:
    """Per neuron layer: ``method`` (guided, saliency) of each chosen channel's top units, as the patches."""
    run = context.run
    function = attribution.neuron_guided_backprop if method == "guided" else attribution.neuron_saliency
    for neurons in neuron_settings(context, method):
        top = scan(context, neurons)
        field_ = receptive_field(run.built.layers, neurons.layer)
        images = run.split_data(neurons.split).images
        crops = []
        for row, channel in enumerate(top.channels):
            x = run.model_input(images[top.image_index[row]])
            maps = function(run.model, x, neurons.layer, channel, top.position[row].tolist()).numpy()
            crops.append([crop(maps[i], field_, r, c) for i, (_, _, r, c) in enumerate(top.rank(row))])
        yield draw.draw_unit_attributions(top, crops, field_, neurons.split, method)
