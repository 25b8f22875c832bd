"""Variants as a pure function: base layer list + Variant -> resolved, named layer list.

A variant adds kernel penalties (L1/L2) to chosen conv/dense layers and inserts dropout and
batch-normalization layers after chosen layers, the way a Keras user edits a model by hand.
Nothing here touches torch, so the plan, the CLI and the report can resolve an architecture
without building it.

Selectors (the words in ``on:`` and ``after:``) are matched against the BASE list:

- a kind: ``conv``, ``pool`` (maxpool or avgpool), ``maxpool``, ``avgpool``, ``globalavgpool``,
  ``flatten``, ``dropout``, ``batchnorm``, ``activation``, ``classifier`` (the last dense),
  ``hidden_dense`` (every dense but the classifier) and ``dense`` (for placements every hidden
  dense; for penalties every dense, the classifier included);
- a layer name as the base list names it (``conv1``, ``dense2``, ``maxpool1``);
- a position: ``last_feature`` (the last layer before the first flatten/globalavgpool,
  trailing dropouts skipped: the end of the convolutional part) or ``pre_classifier`` (the
  layer feeding the classifier: the last hidden dense, else the flatten/globalavgpool);
- ``all`` (penalties only): every conv and dense.

A kind that matches nothing in one architecture is fine (a variant applies to every
architecture of a study, and A1 has no hidden dense), but a list that matches nothing at all,
an unknown word, a name the architecture lacks, or an unresolvable position is a ModelError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from pydantic import TypeAdapter, ValidationError

from cnnlab.errors import ModelError
from cnnlab.registry import did_you_mean
from cnnlab.spec.layers import (
    LAYER_TYPES,
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
from cnnlab.spec.study import Variant

POSITIONS = ("last_feature", "pre_classifier")
GROUP_KINDS = ("pool", "hidden_dense", "classifier")
KERNEL_KINDS = ("conv", "dense")
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


class _Architecture:
    """The base list with what selectors need: names, the classifier and the two positions."""

    def __init__(self, layers: Sequence[Layer]):
        self.layers = list(layers)
        self.names = base_names(self.layers)
        denses = [i for i, layer in enumerate(self.layers) if layer.type == "dense"]
        if not denses:
            raise ModelError(
                "the architecture has no dense layer; the last dense layer is the classifier "
                f"(units = number of classes). Its layers are: {', '.join(self.names)}"
            )
        self.classifier = denses[-1]
        self.hidden_denses = denses[:-1]

    def kind_matches(self, kind: str, purpose: str) -> list[int]:
        if kind == "pool":
            return [i for i, layer in enumerate(self.layers) if layer.type in ("maxpool", "avgpool")]
        if kind == "classifier":
            return [self.classifier]
        if kind == "hidden_dense" or (kind == "dense" and purpose == "placement"):
            return list(self.hidden_denses)
        if kind == "all":
            return [i for i, layer in enumerate(self.layers) if layer.type in KERNEL_KINDS]
        return [i for i, layer in enumerate(self.layers) if layer.type == kind]

    def last_feature(self) -> Optional[int]:
        ends = [i for i, layer in enumerate(self.layers) if layer.type in ("flatten", "globalavgpool")]
        index = (ends[0] if ends else len(self.layers)) - 1
        while index >= 0 and self.layers[index].type == "dropout":
            index -= 1
        return index if index >= 0 else None

    def pre_classifier(self) -> Optional[int]:
        if self.hidden_denses:
            return self.hidden_denses[-1]
        ends = [i for i in range(self.classifier) if self.layers[i].type in ("flatten", "globalavgpool")]
        return ends[-1] if ends else None

    def describe(self) -> str:
        return ", ".join(self.names)


def _vocabulary(purpose: str) -> list[str]:
    words = list(LAYER_TYPES) + list(GROUP_KINDS) + list(POSITIONS)
    return words + ["all"] if purpose == "penalty" else words


def _select(arch: _Architecture, selectors: Sequence[str], what: str, purpose: str) -> list[int]:
    """Base-list indices the selectors pick, in order; ``what`` names the option in errors."""
    picked: set[int] = set()
    for selector in selectors:
        picked.update(_select_one(arch, str(selector), what, purpose))
    if not picked:
        note = ""
        if purpose == "placement" and "dense" in selectors:
            note = " ('dense' places after hidden dense layers only; name the classifier to place after it)"
        raise ModelError(
            f"{what} {list(selectors)} selects no layer of this architecture, so the variant "
            f"would change nothing{note}; its layers are: {arch.describe()}"
        )
    return sorted(picked)


def _select_one(arch: _Architecture, selector: str, what: str, purpose: str) -> list[int]:
    if selector in arch.names:
        matches = [arch.names.index(selector)]
    elif selector in POSITIONS:
        index = arch.last_feature() if selector == "last_feature" else arch.pre_classifier()
        if index is None:
            where = ("no layer comes before the first flatten/globalavgpool" if selector == "last_feature"
                     else "there is no hidden dense, flatten or globalavgpool before the classifier")
            raise ModelError(
                f"{what}: '{selector}' matches no layer because {where}; "
                f"the architecture's layers are: {arch.describe()}"
            )
        matches = [index]
    elif selector in _vocabulary(purpose):
        matches = arch.kind_matches(selector, purpose)
    else:
        hint = did_you_mean(selector, arch.names) or did_you_mean(selector, _vocabulary(purpose))
        kind = selector.rstrip("0123456789")
        reason = (f"this architecture has no layer '{selector}'" if kind in LAYER_TYPES and kind != selector
                  else f"'{selector}' is not a layer kind, layer name or position")
        if selector == "all":
            reason = "'all' selects layers for penalties only (l1/l2 'on'); name kinds or layers instead"
        raise ModelError(
            f"{what}: {reason}{hint}. The architecture's layers are: "
            f"{arch.describe()}; selectors are a kind ({', '.join(list(LAYER_TYPES) + list(GROUP_KINDS))}), "
            f"a layer name, {' or '.join(POSITIONS)}"
            + (", or all." if purpose == "penalty" else ".")
        )
    if purpose == "penalty":
        for index in matches:
            if arch.layers[index].type not in KERNEL_KINDS and selector in arch.names + list(POSITIONS):
                which = f"'{selector}'" if selector == arch.names[index] else f"'{selector}' ({arch.names[index]})"
                raise ModelError(
                    f"{what}: {which} has no kernel to penalize; "
                    f"penalties apply to conv and dense layers (the architecture's layers are: "
                    f"{arch.describe()})"
                )
        matches = [i for i in matches if arch.layers[i].type in KERNEL_KINDS]
    return matches


def _check_variant(variant: Variant) -> None:
    if variant.on is not None and variant.l1 is None and variant.l2 is None:
        raise ModelError(f"the variant sets on: {variant.on} but has no l1 or l2 penalty for it to apply to")
    if variant.after is not None and variant.dropout is None and variant.batchnorm is None:
        raise ModelError(
            f"the variant sets after: {variant.after} but inserts no dropout or batchnorm for it to place"
        )


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


def resolve_layers(layers: Sequence[Layer], variant: Optional[Variant] = None) -> list[ResolvedLayer]:
    """Apply a variant to a base layer list and name every layer of the result.

    Pure (no torch): dense activations are made explicit (relu for hidden layers, linear for
    the classifier), penalties are attached to the layers they act on, and inserted layers get
    their place. After one anchor the order is: the anchor (made linear when batchnorm goes
    before its activation), batchnorm, the split-off activation, dropout. A layer is not
    inserted where the base list (or another selector) already puts the same kind.
    """
    arch = _Architecture(layers)
    variant = variant or Variant()
    _check_variant(variant)
    base = arch.layers

    l1 = _penalties(arch, variant.l1, variant.on, "l1")
    l2 = _penalties(arch, variant.l2, variant.on, "l2")

    batchnorm_after: set[int] = set()
    if variant.batchnorm is not None:
        after = variant.batchnorm.after if variant.batchnorm.after is not None else variant.after
        selectors = after if after is not None else ["conv", "hidden_dense"]
        batchnorm_after = set(_select(arch, selectors, "batchnorm after", "placement"))
    dropout_after: set[int] = set()
    if variant.dropout is not None:
        after = variant.dropout.after if variant.dropout.after is not None else variant.after
        selectors = after if after is not None else ["pool", "hidden_dense"]
        dropout_after = set(_select(arch, selectors, "dropout after", "placement"))

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


def _penalties(arch: _Architecture, penalty: Any, variant_on: Optional[list[str]], what: str) -> dict[int, float]:
    if penalty is None:
        return {}
    on = penalty.on if penalty.on is not None else variant_on
    indices = _select(arch, on if on is not None else ["all"], f"{what} on", "penalty")
    return {index: float(penalty.factor) for index in indices}


def resolved_to_dicts(resolved: Sequence[ResolvedLayer]) -> list[dict[str, Any]]:
    """The whole resolved list as plain data (see ``ResolvedLayer.to_dict``)."""
    return [layer.to_dict() for layer in resolved]


def resolved_from_dicts(data: Sequence[dict[str, Any]]) -> list[ResolvedLayer]:
    """The inverse of ``resolved_to_dicts``."""
    return [ResolvedLayer.from_dict(item) for item in data]
