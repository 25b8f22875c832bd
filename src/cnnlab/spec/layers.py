"""The layer-list notation: Keras layer semantics, written as YAML list items.

An item is a bare name (``flatten``), a one-key mapping with a scalar shorthand
(``conv: 64``, ``maxpool: 2``, ``dense: 100``, ``dropout: 0.5``) or a one-key mapping
with the layer's fields (``conv: {filters: 64, kernel: 3, stride: 2, padding: same}``).
Keras names are accepted as aliases (``kernel_size``, ``strides``, ``pool_size``,
``use_bias``, ``dilation_rate``).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import AliasChoices, BeforeValidator, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from cnnlab.registry import did_you_mean
from cnnlab.spec.base import SpecModel, pair, short_repr

ACTIVATIONS = ("relu", "elu", "leaky_relu", "gelu", "tanh", "sigmoid", "linear")
ActivationName = Literal["relu", "elu", "leaky_relu", "gelu", "tanh", "sigmoid", "linear"]
Padding = Literal["valid", "same"]
# Large enough for any real image model, small enough that a typo (10**9) is caught before
# anything is allocated.
MAX_UNITS = 1_000_000
Size = Annotated[int, Field(ge=1, le=MAX_UNITS)]
Pair = Annotated[tuple[Annotated[int, Field(ge=1, le=4096)], Annotated[int, Field(ge=1, le=4096)]], BeforeValidator(pair)]


class Layer(SpecModel):
    """A layer of a base architecture. ``type`` is the key it is written under."""

    type: ClassVar[str]
    shorthand: ClassVar[Optional[str]] = None  # the field a scalar body fills

    def to_item(self) -> Any:
        """Back to the YAML item form (round-trips through ``parse``)."""
        body = self.model_dump(mode="json", exclude={"type"})
        return {self.type: body} if body else self.type


class Conv(Layer):
    type: ClassVar[str] = "conv"
    shorthand: ClassVar[Optional[str]] = "filters"
    filters: Size
    kernel: Pair = Field((3, 3), validation_alias=AliasChoices("kernel", "kernel_size"))
    stride: Pair = Field((1, 1), validation_alias=AliasChoices("stride", "strides"))
    padding: Padding = "valid"
    dilation: Pair = Field((1, 1), validation_alias=AliasChoices("dilation", "dilation_rate"))
    activation: ActivationName = "relu"
    bias: bool = Field(True, validation_alias=AliasChoices("bias", "use_bias"))


class _Pool(Layer):
    shorthand: ClassVar[Optional[str]] = "size"
    size: Pair = Field((2, 2), validation_alias=AliasChoices("size", "pool_size"))
    stride: Optional[Pair] = Field(None, validation_alias=AliasChoices("stride", "strides"))
    padding: Padding = "valid"


class MaxPool(_Pool):
    type: ClassVar[str] = "maxpool"


class AvgPool(_Pool):
    type: ClassVar[str] = "avgpool"


class GlobalAvgPool(Layer):
    type: ClassVar[str] = "globalavgpool"


class Flatten(Layer):
    type: ClassVar[str] = "flatten"


class Dense(Layer):
    type: ClassVar[str] = "dense"
    shorthand: ClassVar[Optional[str]] = "units"
    units: Size
    # None: ReLU for hidden layers, linear for the classifier (softmax lives in the loss).
    activation: Optional[ActivationName] = None
    bias: bool = Field(True, validation_alias=AliasChoices("bias", "use_bias"))


class Dropout(Layer):
    type: ClassVar[str] = "dropout"
    shorthand: ClassVar[Optional[str]] = "rate"
    rate: float = Field(ge=0.0, lt=1.0)


class BatchNorm(Layer):
    type: ClassVar[str] = "batchnorm"
    momentum: float = Field(0.99, gt=0.0, lt=1.0)  # Keras convention: weight of the old value
    epsilon: float = Field(1e-3, gt=0.0)


class Activation(Layer):
    type: ClassVar[str] = "activation"
    shorthand: ClassVar[Optional[str]] = "activation"
    activation: ActivationName


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.type: cls
    for cls in (Conv, MaxPool, AvgPool, GlobalAvgPool, Flatten, Dense, Dropout, BatchNorm, Activation)
}
# Names users coming from Keras will type.
LAYER_ALIASES = {
    "conv2d": "conv",
    "maxpool2d": "maxpool",
    "max_pooling2d": "maxpool",
    "avgpool2d": "avgpool",
    "average_pooling2d": "avgpool",
    "globalaveragepooling2d": "globalavgpool",
    "global_average_pooling2d": "globalavgpool",
    "batchnormalization": "batchnorm",
    "batch_normalization": "batchnorm",
}


def _normalize_item(value: Any) -> Any:
    """Turn every accepted spelling of a layer item into ``{type: {fields}}``."""
    if isinstance(value, SpecModel):
        return value
    if isinstance(value, str):
        value = {value: None}
    if not isinstance(value, dict) or len(value) != 1:
        raise PydanticCustomError(
            "layer_item",
            "a layer is a name like 'flatten' or a one-key mapping like 'conv: 64' or 'maxpool: {size: 2}'; "
            "found {found}",
            {"found": short_repr(value, 80)},
        )
    (name, body), = value.items()
    name = LAYER_ALIASES.get(str(name).lower(), name)
    if name not in LAYER_TYPES:
        raise PydanticCustomError(
            "layer_type",
            "unknown layer type '{name}'{hint}; known: {known}",
            {"name": str(name), "hint": did_you_mean(str(name), list(LAYER_TYPES)), "known": ", ".join(LAYER_TYPES)},
        )
    cls = LAYER_TYPES[name]
    if body is None or body is True:
        body = {}
    elif not isinstance(body, dict):
        if cls.shorthand is None:
            raise PydanticCustomError(
                "layer_body", "'{name}' takes no value; write just '{name}'", {"name": name}
            )
        body = {cls.shorthand: body}
    if name == "dense" and body.get("activation") == "softmax":
        raise PydanticCustomError(
            "softmax",
            "dense activation 'softmax' is not needed: the classifier outputs logits and the "
            "softmax lives in the loss; remove the activation",
        )
    return {name: body}


def _tag(value: Any) -> Optional[str]:
    if isinstance(value, SpecModel):
        return next(iter(type(value).model_fields))
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    return None


def _item_model(cls: type[Layer]) -> type[SpecModel]:
    return type(f"{cls.__name__}Item", (SpecModel,), {"__annotations__": {cls.type: cls}})


_ITEM_MODELS = {name: _item_model(cls) for name, cls in LAYER_TYPES.items()}

LayerItem = Annotated[
    Union[tuple(Annotated[model, Tag(name)] for name, model in _ITEM_MODELS.items())],  # type: ignore[misc]
    Discriminator(_tag),
    BeforeValidator(_normalize_item),
]


def item_layer(item: SpecModel) -> Layer:
    """The layer inside a validated one-key item."""
    return getattr(item, next(iter(type(item).model_fields)))


def layer_item(layer: Layer) -> SpecModel:
    """Wrap a layer back into its one-key item."""
    return _ITEM_MODELS[layer.type](**{layer.type: layer})


def base_names(layers: list[Layer]) -> list[str]:
    """Keras-like names (``conv1``, ``maxpool2``, ``dense1``): a counter per kind, from 1."""
    counts: dict[str, int] = {}
    names = []
    for layer in layers:
        counts[layer.type] = counts.get(layer.type, 0) + 1
        names.append(f"{layer.type}{counts[layer.type]}")
    return names
