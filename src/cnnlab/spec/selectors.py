"""The layer-selector vocabulary: the words that pick layers of a base architecture.

One vocabulary serves three purposes, and this module is the only place that interprets it:

- ``placement``: where a variant inserts dropout or batch norm (``after:``);
- ``penalty``: which kernels an L1/L2 penalty acts on (``on:``);
- ``sweep``: which layers a sweep key such as ``conv.kernel`` or ``dense.units`` sets.

The words:

- a kind: ``conv``, ``maxpool``, ``avgpool``, ``globalavgpool``, ``flatten``, ``dense``,
  ``dropout``, ``batchnorm``, ``activation``, and the groups ``pool`` (maxpool or avgpool),
  ``hidden_dense`` (every dense but the classifier) and ``classifier`` (the last dense);
- a layer name as the base list names it (``conv1``, ``dense2``, ``maxpool1``);
- a position: ``last_feature`` (the last layer before the first flatten/globalavgpool, trailing
  dropouts skipped: the end of the convolutional part) or ``pre_classifier`` (the layer feeding
  the classifier: the last hidden dense, else the flatten/globalavgpool);
- ``all`` (penalties only): every conv and dense.

``dense`` means what a user of each option expects: for a penalty every dense kernel, the
classifier's included (Keras' ``kernel_regularizer`` on every Dense); for a placement and a
sweep only the hidden dense layers (nothing is inserted after the logits, and a sweep of
``dense.units`` must not change the number of classes). Name ``classifier`` to reach it.

A kind that matches nothing in one architecture is fine (a variant applies to every
architecture of a study, and A1 has no hidden dense), but a list that matches nothing at all,
an unknown word, a name the architecture lacks, or an unresolvable position is a ModelError.
The spec loader runs every variant's selectors against every architecture, so such a variant is
refused when the spec loads, before anything trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional, Sequence

from cnnlab.errors import ModelError
from cnnlab.registry import did_you_mean
from cnnlab.spec.layers import LAYER_TYPES, Layer, base_names

if TYPE_CHECKING:  # study.py imports this module for its sweep keys
    from cnnlab.spec.study import Study
    from cnnlab.spec.variant import LayerChanges

Purpose = Literal["placement", "penalty", "sweep"]

POSITIONS = ("last_feature", "pre_classifier")
GROUP_KINDS = ("pool", "hidden_dense", "classifier")
KERNEL_KINDS = ("conv", "dense")
POOL_KINDS = ("maxpool", "avgpool")
FEATURE_ENDS = ("flatten", "globalavgpool")


def vocabulary(purpose: Purpose) -> list[str]:
    """The words (besides layer names) a selector of this purpose may use."""
    if purpose == "sweep":
        return list(LAYER_TYPES) + ["pool", "hidden_dense"]
    words = list(LAYER_TYPES) + list(GROUP_KINDS) + list(POSITIONS)
    return words + ["all"] if purpose == "penalty" else words


def layer_kind(selector: str) -> Optional[str]:
    """The layer type a kind or layer-name selector stands for (``conv2`` -> conv, ``pool`` ->
    maxpool, ``hidden_dense`` -> dense), or None for a word that names no layer type."""
    kind = {"pool": "maxpool", "hidden_dense": "dense", "classifier": "dense"}.get(selector, selector)
    kind = kind if kind in LAYER_TYPES else kind.rstrip("0123456789")
    return kind if kind in LAYER_TYPES else None


class Architecture:
    """A base layer list with what selectors need: names, the classifier and the two positions."""

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

    def kind_matches(self, kind: str, purpose: Purpose) -> list[int]:
        """Indices of the layers a kind word picks for this purpose."""
        if kind == "pool":
            return [i for i, layer in enumerate(self.layers) if layer.type in POOL_KINDS]
        if kind == "classifier":
            return [self.classifier]
        if kind == "hidden_dense" or (kind == "dense" and purpose != "penalty"):
            return list(self.hidden_denses)
        if kind == "all":
            return [i for i, layer in enumerate(self.layers) if layer.type in KERNEL_KINDS]
        return [i for i, layer in enumerate(self.layers) if layer.type == kind]

    def last_feature(self) -> Optional[int]:
        ends = [i for i, layer in enumerate(self.layers) if layer.type in FEATURE_ENDS]
        index = (ends[0] if ends else len(self.layers)) - 1
        while index >= 0 and self.layers[index].type == "dropout":
            index -= 1
        return index if index >= 0 else None

    def pre_classifier(self) -> Optional[int]:
        if self.hidden_denses:
            return self.hidden_denses[-1]
        ends = [i for i in range(self.classifier) if self.layers[i].type in FEATURE_ENDS]
        return ends[-1] if ends else None

    def describe(self) -> str:
        return ", ".join(self.names)


def select(arch: Architecture, selectors: Sequence[str], what: str, purpose: Purpose) -> list[int]:
    """Base-list indices the selectors pick, in order; ``what`` names the option in errors.

    Refuses a list that picks no layer at all: the variant or sweep would change nothing.
    """
    picked: set[int] = set()
    for selector in selectors:
        picked.update(_select_one(arch, str(selector), what, purpose))
    if not picked:
        note = ""
        if purpose != "penalty" and "dense" in selectors:
            note = (" ('dense' means the hidden dense layers here; name the classifier to reach it)"
                    if purpose == "sweep" else
                    " ('dense' places after hidden dense layers only; name the classifier to place after it)")
        if purpose == "sweep":
            raise ModelError(f"{what}: no layer matches {', '.join(map(repr, selectors))}{note}; "
                             f"the architecture's layers are: {arch.describe()}")
        raise ModelError(
            f"{what} {list(selectors)} selects no layer of this architecture, so the variant "
            f"would change nothing{note}; its layers are: {arch.describe()}"
        )
    return sorted(picked)


def _select_one(arch: Architecture, selector: str, what: str, purpose: Purpose) -> list[int]:
    words = vocabulary(purpose)
    if selector in arch.names:
        matches = [arch.names.index(selector)]
    elif selector in POSITIONS and purpose != "sweep":
        index = arch.last_feature() if selector == "last_feature" else arch.pre_classifier()
        if index is None:
            where = ("no layer comes before the first flatten/globalavgpool" if selector == "last_feature"
                     else "there is no hidden dense, flatten or globalavgpool before the classifier")
            raise ModelError(
                f"{what}: '{selector}' matches no layer because {where}; "
                f"the architecture's layers are: {arch.describe()}"
            )
        matches = [index]
    elif selector in words:
        matches = arch.kind_matches(selector, purpose)
    else:
        raise ModelError(_unknown(arch, selector, what, purpose))
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


def _unknown(arch: Architecture, selector: str, what: str, purpose: Purpose) -> str:
    words = vocabulary(purpose)
    hint = did_you_mean(selector, arch.names) or did_you_mean(selector, words)
    kind = selector.rstrip("0123456789")
    reason = (f"this architecture has no layer '{selector}'" if kind in LAYER_TYPES and kind != selector
              else f"'{selector}' is not a layer kind, layer name or position")
    if selector == "all":
        reason = "'all' selects layers for penalties only (l1/l2 'on'); name kinds or layers instead"
    if purpose == "sweep":
        return (f"{what}: no layer matches '{selector}': {reason}{hint}. The architecture's layers are: "
                f"{arch.describe()}; a sweep key starts with a kind ({', '.join(words)}) or a layer name")
    return (f"{what}: {reason}{hint}. The architecture's layers are: "
            f"{arch.describe()}; selectors are a kind ({', '.join(list(LAYER_TYPES) + list(GROUP_KINDS))}), "
            f"a layer name, {' or '.join(POSITIONS)}" + (", or all." if purpose == "penalty" else "."))


# ---------------------------------------------------------------- a variant's targets


@dataclass
class VariantTargets:
    """What a variant does to one base list, as base-list indices: kernel penalties by index,
    and the layers after which it inserts batch norm and dropout."""

    l1: dict[int, float] = field(default_factory=dict)
    l2: dict[int, float] = field(default_factory=dict)
    batchnorm_after: set[int] = field(default_factory=set)
    dropout_after: set[int] = field(default_factory=set)


def variant_targets(arch: Architecture, variant: "LayerChanges") -> VariantTargets:
    """Resolve every selector of a variant against one architecture (a ModelError when one
    is unknown, unresolvable or picks nothing; see the module docstring for defaults)."""
    if variant.on is not None and variant.l1 is None and variant.l2 is None:
        raise ModelError(f"the variant sets on: {variant.on} but has no l1 or l2 penalty for it to apply to")
    if variant.after is not None and variant.dropout is None and variant.batchnorm is None:
        raise ModelError(
            f"the variant sets after: {variant.after} but inserts no dropout or batchnorm for it to place"
        )
    targets = VariantTargets()
    for what, penalty, into in (("l1", variant.l1, targets.l1), ("l2", variant.l2, targets.l2)):
        if penalty is not None:
            on = penalty.on if penalty.on is not None else variant.on
            for index in select(arch, on if on is not None else ["all"], f"{what} on", "penalty"):
                into[index] = float(penalty.factor)
    if variant.batchnorm is not None:
        after = variant.batchnorm.after if variant.batchnorm.after is not None else variant.after
        targets.batchnorm_after = set(select(arch, after if after is not None else ["conv", "hidden_dense"],
                                             "batchnorm after", "placement"))
    if variant.dropout is not None:
        after = variant.dropout.after if variant.dropout.after is not None else variant.after
        targets.dropout_after = set(select(arch, after if after is not None else ["pool", "hidden_dense"],
                                           "dropout after", "placement"))
    return targets


def sweep_targets(arch: Architecture, key: str) -> list[int]:
    """The base-list indices a layer sweep key (``conv.kernel``, ``conv2.filters``) sets."""
    selector = key.partition(".")[0]
    return select(arch, [selector], f"sweep '{key}'", "sweep")


def selector_problems(study: "Study") -> list[tuple[tuple[str, ...], str]]:
    """Every architecture and layer sweep key checked against every architecture: (spec path,
    message) for each one that cannot apply, so the spec is refused before anything trains.
    (A variant's selectors are checked by ``cnnlab.spec.checks``, on the layers it keeps.)"""
    from cnnlab.spec.layers import item_layer

    problems: list[tuple[tuple[str, ...], str]] = []
    for arch_name, items in study.architectures.items():
        try:
            arch = Architecture([item_layer(item) for item in items])
        except ModelError as error:
            problems.append((("architectures", arch_name), str(error)))
            continue
        for key in study.sweep_keys:
            if not key.startswith("train."):
                try:
                    sweep_targets(arch, key)
                except ModelError as error:
                    problems.append((("sweep", key) if isinstance(study.sweep, dict) else ("sweep",),
                                     f"on architecture '{arch_name}': {error}"))
    return problems
