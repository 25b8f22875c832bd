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

Names are imported on first use, so ``cnnlab.explain.command`` (the CLI's options) loads
without torch, matplotlib or Captum.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "activations": ["TopActivations", "evaluating", "feature_maps", "named_layer", "recording", "top_activations"],
    "attribution": ["guided_backprop", "neuron_guided_backprop", "neuron_saliency", "saliency", "unit_selector"],
    "canvas": ["Figure"],
    "figures": ["DEFAULT_WHAT", "WHAT", "default_folder", "explain_figures", "explain_run", "iter_figures",
                "parse_what"],
    "images": ["InputImage", "load_image_file", "parse_index"],
    "receptive": ["Crop", "ReceptiveField", "crop", "receptive_field", "receptive_fields"],
    "runs": ["ExplainedRun", "best_run", "load_run", "resolve_run_id"],
    "weights": ["NEAR_ZERO", "LayerWeights", "filters", "weight_histograms"],
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnlab.explain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cnnlab.explain.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
