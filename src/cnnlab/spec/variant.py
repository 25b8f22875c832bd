"""A variant: what it changes in each base architecture (penalties, inserted and removed layers),
where it applies (some architectures, some sweep points) and training settings of its own."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BeforeValidator, Field, field_serializer

from cnnlab.spec.base import SpecModel, scalar_to
from cnnlab.spec.training import TrainChanges


Selector = str  # a layer kind (conv, pool, dense, ...), a layer name (conv1) or a position
# A list of selectors for every architecture, or one list per architecture ({A1: [maxpool1], A3: [conv2]}):
# study A places its dropout after the first pooling in A1 but after the second conv in A3.
Selectors = Union[list[Selector], dict[str, list[Selector]]]


class Penalty(SpecModel):
    factor: float = Field(ge=0.0, le=1e3)
    on: Optional[Selectors] = None


class DropoutPlacement(SpecModel):
    rate: float = Field(gt=0.0, lt=1.0)
    after: Optional[Selectors] = None


class BatchNormPlacement(SpecModel):
    after: Optional[Selectors] = None
    position: Literal["after_activation", "before_activation"] = "after_activation"
    momentum: float = Field(0.99, gt=0.0, lt=1.0)
    epsilon: float = Field(1e-3, gt=0.0)


def _batchnorm_shorthand(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    return value


class LayerChanges(SpecModel):
    """What a variant does to a base architecture's layers: kernel penalties and inserted layers.

    ``on`` selects the layers that get kernel penalties (default: every conv and dense);
    ``after`` places inserted dropout/batchnorm layers (default: dropout after each pooling
    layer and each hidden dense; batchnorm after each conv and each hidden dense).
    Selectors: a kind (conv, pool, maxpool, avgpool, dense, flatten, classifier), a layer
    name (conv1, dense2), ``last_feature`` (the end of the convolutional part) or
    ``pre_classifier`` (what feeds the classifier: the last hidden dense or flatten); see
    ``cnnlab.spec.selectors``, which interprets them and checks them when the spec loads. Any
    selector list may instead be a mapping from architecture name to its own list.

    A run's configuration holds these fields alone, with every selector list resolved for its
    architecture (``for_architecture``): that is what builds the model and what the run id hashes.
    """

    l1: Annotated[Optional[Penalty], scalar_to("factor")] = None
    l2: Annotated[Optional[Penalty], scalar_to("factor")] = None
    dropout: Annotated[Optional[DropoutPlacement], scalar_to("rate")] = None
    batchnorm: Annotated[Optional[BatchNormPlacement], BeforeValidator(_batchnorm_shorthand)] = None
    on: Optional[Selectors] = None
    after: Optional[Selectors] = None

    def per_architecture(self) -> dict[tuple[str, ...], dict[str, list[Selector]]]:
        """Every selector list given per architecture, by its path under the variant."""
        lists = {("on",): self.on, ("after",): self.after,
                 ("l1", "on"): self.l1 and self.l1.on, ("l2", "on"): self.l2 and self.l2.on,
                 ("dropout", "after"): self.dropout and self.dropout.after,
                 ("batchnorm", "after"): self.batchnorm and self.batchnorm.after}
        return {path: value for path, value in lists.items() if isinstance(value, dict)}

    def for_architecture(self, name: str) -> "LayerChanges":
        """These changes with every per-architecture selector list replaced by ``name``'s (a
        mapping that lacks ``name`` is refused when the spec loads, so it is not met here)."""
        def pick(value: Optional[Selectors]) -> Optional[list[Selector]]:
            return value.get(name) if isinstance(value, dict) else value

        def nested(part: Any, key: str) -> Any:
            return None if part is None else part.model_copy(update={key: pick(getattr(part, key))})

        return LayerChanges(l1=nested(self.l1, "on"), l2=nested(self.l2, "on"), dropout=nested(self.dropout, "after"),
                            batchnorm=nested(self.batchnorm, "after"), on=pick(self.on), after=pick(self.after))


class Variant(LayerChanges):
    """A transformation of the base architectures (regularization, normalization), and where and
    how it trains. Besides ``LayerChanges``:

    - ``remove``: base layers the variant drops (study E's "no BN at all" drops the output batch norm);
    - ``architectures`` and ``points``: the architectures and sweep points it applies to (default: all);
    - ``train``: training settings of its own, over the study's (study C's tuned run: lr 0.002, 20 epochs);
    - ``candidate: false``: an experiment beside the study, reported but never selected nor retrained.
    """

    remove: Optional[Selectors] = Field(None, description="base layers this variant drops (the classifier cannot go)")
    architectures: Optional[Annotated[list[str], Field(min_length=1)]] = Field(
        None, description="the architectures this variant applies to; default: every one")
    points: Optional[Annotated[list[dict[str, Any]], Field(min_length=1)]] = Field(
        None, description="the sweep points this variant applies to, each a mapping of some sweep keys to a value "
        "({conv.kernel: 5}); default: every point")
    train: Optional[TrainChanges] = Field(None, description="training settings of this variant's own, over the study's "
                                          "'train:' (a mapping is merged into the study's)")
    candidate: bool = Field(True, description="false: an experiment beside the study, reported with the others but "
                            "never selected, retrained nor tested as a final")

    @field_serializer("train")
    def _train_as_written(self, value: Optional[TrainChanges], info: Any) -> Optional[dict[str, Any]]:
        # Only what the variant sets: a dump read back (the store's spec, a command-line override)
        # must not turn the defaults of the fields it left out into changes.
        return None if value is None else value.model_dump(mode=info.mode, exclude_unset=True)

    def layer_changes(self, architecture: str) -> LayerChanges:
        """What builds this variant's model of ``architecture`` (see ``LayerChanges``)."""
        fields = {name: getattr(self, name) for name in LayerChanges.model_fields}
        return LayerChanges(**fields).for_architecture(architecture)

    def applies_to(self, architecture: str) -> bool:
        return self.architectures is None or architecture in self.architectures
