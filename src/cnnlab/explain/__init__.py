"""Explain a finished run: filters, feature maps, weight histograms, saliency and guided
backpropagation, top-activating patches traced back through the receptive field, examples.

Computing and drawing are apart (Captum's shape): the computing functions take a plain model
(or a ``BuiltModel``) and tensors and return tensors or arrays; ``draw`` and ``charts`` turn
those into ``Figure`` objects (PNG bytes); ``explain_figures`` / ``explain_run`` do it all for
a stored run, as ``cnnlab explain`` and the report use it.

    from cnnlab.explain import best_run, explain_run, feature_maps, load_run
    with cnnlab.open_store("runs/quickstart") as store:
        best = best_run(store)["id"]
        paths = explain_run(store, best, what="filters,maps,patches")
        run = load_run(store, best)
        maps = feature_maps(run.model, run.model_input(run.input("test:3").image), ["conv1"])
"""

from cnnlab.explain.activations import (
    TopActivations, evaluating, feature_maps, named_layer, recording, top_activations,
)
from cnnlab.explain.attribution import guided_backprop, neuron_guided_backprop, neuron_saliency, saliency, unit_selector
from cnnlab.explain.byclass import NeuronsByClass, neurons_by_class
from cnnlab.explain.images import InputImage, load_image_file, load_input_image, load_sample_image, parse_index
from cnnlab.explain.picks import LayerPickError, resolve_layer, resolve_layers
from cnnlab.explain.receptive import Crop, ReceptiveField, crop, receptive_field, receptive_fields
from cnnlab.explain.runs import ExplainedRun, load_run
from cnnlab.store.lookup import best_run, find_run
from cnnlab.explain.weights import NEAR_ZERO, LayerWeights, filters, weight_histograms
from cnnlab.explain.figures import (
    DEFAULT_WHAT, WHAT, default_folder, explain_figures, explain_run, iter_figures, parse_what,
)
from cnnlab.figures import Figure  # the figure kit's, re-exported: what every explain figure is

__all__ = [
    "Crop", "DEFAULT_WHAT", "ExplainedRun", "Figure", "InputImage", "LayerPickError", "LayerWeights", "NEAR_ZERO",
    "NeuronsByClass", "ReceptiveField", "TopActivations", "WHAT", "best_run", "crop", "default_folder", "evaluating",
    "explain_figures", "explain_run", "feature_maps", "filters", "guided_backprop", "iter_figures", "load_image_file",
    "load_input_image", "load_run", "load_sample_image", "named_layer", "neuron_guided_backprop", "neuron_saliency",
    "neurons_by_class", "parse_index", "parse_what", "receptive_field", "receptive_fields", "recording",
    "resolve_layer", "resolve_layers", "find_run", "saliency", "top_activations", "unit_selector",
    "weight_histograms",
]
