"""Variants as a pure function: base layer list + Variant -> resolved, named layer list.

A variant adds kernel penalties (L1/L2) to chosen conv/dense layers and inserts dropout and
batch-normalization layers after chosen layers, the way a Keras user edits a model by hand.
Nothing here touches torch, so the plan, the CLI and the report can resolve an architecture
without building it.

Which layers a variant touches is decided by the selector vocabulary in
``cnnlab.spec.selectors`` (the one place it is interpreted); this module turns those choices
into the final named layer list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from pydantic import TypeAdapter, ValidationError

from cnnlab.errors import ModelError
from cnnlab.spec.layers import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Layer,
    LayerItem,
    base_names,
    item_layer,
)
from cnnlab.spec.selectors import Architecture, variant_targets
from cnnlab.spec.variant import LayerChanges

_INSERTED_KINDS = ("batchnorm", "dropout")


@dataclass(frozen=True)
class ResolvedLayer:
    """One layer of the final list: its Keras-like name, its settings and its kernel penalties."""

    name: str
    layer: Layer
    l1: float = 0.0
    l2: float = 0.0
    base_name: Optional[str] = None  # its name in the base list; None when a variant inserted it

    @property
    def kind(self) -> str:
        """The layer type: conv, maxpool, dense, ..."""
        return self.layer.type

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (run configs, the store); ``from_dict`` reverses it."""
        return {"name": self.name, "layer": self.layer.to_item(), "l1": self.l1, "l2": self.l2,
                "base_name": self.base_name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResolvedLayer":
        """Read back what ``to_dict`` wrote (the layer is validated like a spec item)."""
        try:
            layer = item_layer(_ITEM_ADAPTER.validate_python(data["layer"]))
        except (ValidationError, KeyError) as error:
            raise ModelError(f"cannot read resolved layer {data!r}: {error}") from None
        return cls(name=data["name"], layer=layer, l1=float(data.get("l1", 0.0)),
                   l2=float(data.get("l2", 0.0)), base_name=data.get("base_name"))


_ITEM_ADAPTER: TypeAdapter = TypeAdapter(LayerItem)


def _followed_by(layers: Sequence[Layer], index: int, kind: str) -> bool:
    """Whether the run of batchnorm/dropout layers right after ``index`` already has ``kind``."""
    for layer in layers[index + 1:]:
        if layer.type not in _INSERTED_KINDS:
            return False
        if layer.type == kind:
            return True
    return False


def _with_default_activation(layer: Layer, is_classifier: bool) -> Layer:
    if isinstance(layer, Dense) and layer.activation is None:
        return layer.model_copy(update={"activation": "linear" if is_classifier else "relu"})
    return layer


def resolve_layers(layers: Sequence[Layer], variant: Optional[LayerChanges] = None) -> list[ResolvedLayer]:
    """Apply a variant to a base layer list and name every layer of the result.

    Pure (no torch): dense activations are made explicit (relu for hidden layers, linear for
    the classifier), penalties are attached to the layers they act on, and inserted layers get
    their place. After one anchor the order is: the anchor (made linear when batchnorm goes
    before its activation), batchnorm, the split-off activation, dropout. A layer is not
    inserted where the base list (or another selector) already puts the same kind.
    """
    arch = Architecture(layers)
    variant = variant or LayerChanges()
    targets = variant_targets(arch, variant)
    base = arch.layers
    l1, l2 = targets.l1, targets.l2
    batchnorm_after, dropout_after = targets.batchnorm_after, targets.dropout_after

    entries: list[tuple[Layer, float, float, Optional[str]]] = []
    for index, layer in enumerate(base):
        layer = _with_default_activation(layer, index == arch.classifier)
        name = arch.names[index]
        penalty = (l1.get(index, 0.0), l2.get(index, 0.0))
        add_batchnorm = index in batchnorm_after and not _followed_by(base, index, "batchnorm")
        split_activation = (
            add_batchnorm
            and variant.batchnorm is not None
            and variant.batchnorm.position == "before_activation"
            and isinstance(layer, (Conv, Dense))
            and layer.activation != "linear"
        )
        if split_activation:
            activation = layer.activation
            entries.append((layer.model_copy(update={"activation": "linear"}), *penalty, name))
        else:
            entries.append((layer, *penalty, name))
        if add_batchnorm:
            bn = variant.batchnorm
            entries.append((BatchNorm(momentum=bn.momentum, epsilon=bn.epsilon), 0.0, 0.0, None))
        if split_activation:
            entries.append((Activation(activation=activation), 0.0, 0.0, None))
        if index in dropout_after and not _followed_by(base, index, "dropout"):
            entries.append((Dropout(rate=variant.dropout.rate), 0.0, 0.0, None))

    names = base_names([entry[0] for entry in entries])
    return [
        ResolvedLayer(name=name, layer=layer, l1=float(f1), l2=float(f2), base_name=base_name)
        for name, (layer, f1, f2, base_name) in zip(names, entries)
    ]


def resolved_to_dicts(resolved: Sequence[ResolvedLayer]) -> list[dict[str, Any]]:
    """The whole resolved list as plain data (see ``ResolvedLayer.to_dict``)."""
    return [layer.to_dict() for layer in resolved]


def resolved_from_dicts(data: Sequence[dict[str, Any]]) -> list[ResolvedLayer]:
    """The inverse of ``resolved_to_dicts``."""
    return [ResolvedLayer.from_dict(item) for item in data]
