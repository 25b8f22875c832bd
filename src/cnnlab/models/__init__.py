"""Layer list (+ variant) -> ``torch.nn.Sequential`` with Keras semantics, and its summary.

check_model (check.py, the one pre-flight; nothing allocated) = resolve_layers (variants.py,
pure; which layers a variant touches is decided in cnnlab.spec.selectors) -> infer_layers
(shapes.py, pure: shapes, paddings, counts, size limits) -> check_memory (memory.py);
build_model (build.py: modules from layers.py, initializers from init.py) builds what passed;
summarize / format_summary (summary.py).
"""

from cnnlab.models.build import BuiltModel, build_model, build_resolved
from cnnlab.models.check import CheckedModel, check_model
from cnnlab.models.init import INIT_SCHEMES, initialize
from cnnlab.models.layers import GlobalAvgPool2d, MeanPool2d, core_module, make_activation
from cnnlab.models.shapes import (
    KERAS_TYPES,
    MAX_TENSOR_ELEMENTS,
    MAX_TOTAL_PARAMS,
    LayerInfo,
    check_shapes,
    infer_layers,
    output_size,
    same_padding,
)
from cnnlab.models.summary import ModelSummary, SummaryRow, format_summary, keras_shape, summarize
from cnnlab.models.variants import ResolvedLayer, resolve_layers, resolved_from_dicts, resolved_to_dicts

__all__ = [
    "BuiltModel",
    "CheckedModel",
    "GlobalAvgPool2d",
    "INIT_SCHEMES",
    "KERAS_TYPES",
    "LayerInfo",
    "MAX_TENSOR_ELEMENTS",
    "MAX_TOTAL_PARAMS",
    "MeanPool2d",
    "ModelSummary",
    "ResolvedLayer",
    "SummaryRow",
    "build_model",
    "build_resolved",
    "check_model",
    "check_shapes",
    "core_module",
    "format_summary",
    "infer_layers",
    "initialize",
    "keras_shape",
    "make_activation",
    "output_size",
    "resolve_layers",
    "resolved_from_dicts",
    "resolved_to_dicts",
    "same_padding",
    "summarize",
]
