"""The study format: pydantic models (the source of truth), the YAML loader with ``file:line:
field`` errors, the layer-selector vocabulary, command-line overrides and the plan."""

from cnnlab.spec.layers import LAYER_TYPES, Layer, base_names, item_layer, layer_item
from cnnlab.spec.evaluate import Evaluate, Explain
from cnnlab.spec.study import Dataset, Split, SplitPart, Study
from cnnlab.spec.training import Train
from cnnlab.spec.variant import Variant
from cnnlab.spec.selectors import Architecture, select, selector_problems, sweep_targets, variant_targets
from cnnlab.spec.overrides import apply_overrides
from cnnlab.spec.loader import load_spec, load_study, parse_study, read_yaml
from cnnlab.spec.plan import RunConfig, configuration_label, derive_seed, expand, run_id

__all__ = [
    "Architecture", "Dataset", "Evaluate", "Explain", "LAYER_TYPES", "Layer", "RunConfig", "Split", "SplitPart",
    "Study", "Train", "Variant", "apply_overrides", "base_names", "configuration_label", "derive_seed", "expand",
    "item_layer", "layer_item", "load_spec", "load_study", "parse_study", "read_yaml", "run_id", "select",
    "selector_problems", "sweep_targets", "variant_targets",
]
