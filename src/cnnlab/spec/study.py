"""The study spec: the pydantic models a YAML study file is validated into.

These models are the source of truth for the format; ``cnnlab spec --schema`` prints them
as JSON schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, AliasChoices, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from cnnlab.registry import did_you_mean
from cnnlab.spec.base import SpecModel, check_printable, scalar_to, short_repr
from cnnlab.spec.layers import LAYER_TYPES, LayerItem, Pair, item_layer
from cnnlab.spec.evaluate import Evaluate, Explain
from cnnlab.spec.selectors import layer_kind, vocabulary
from cnnlab.spec.training import Train
from cnnlab.spec.variant import Variant

# Kept here rather than imported from cnnlab.data because the spec is the first stage;
# a test checks this list against the dataset registry.
DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100", "digits", "npz", "folder")




# ---------------------------------------------------------------- dataset


class SplitPart(SpecModel):
    """How many examples a split takes and from which official part of the dataset."""

    source: Optional[Literal["train", "test"]] = Field(
        None, validation_alias=AliasChoices("from", "source"),
        description="official part to draw from; default: train for train/val, test for test "
        "(train when the dataset has no test part)",
    )
    count: Union[Annotated[int, Field(ge=0, le=10**9)], Annotated[float, Field(gt=0.0, le=1.0)], Literal["rest", "all"]] = Field(
        description="a number of examples, a fraction (0-1] of the source, 'rest' (what the "
        "other splits leave of the source) or 'all' (the whole source)"
    )

    @field_validator("count", mode="before")
    @classmethod
    def _float_or_int(cls, value: Any) -> Any:
        # One message instead of one per member of the union.
        valid = (
            value in ("rest", "all")
            or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**9)
            or (isinstance(value, float) and (0.0 < value <= 1.0 or (value > 1.0 and value.is_integer() and value <= 1e9)))
        )
        if not valid:
            raise PydanticCustomError(
                "split_count", "expected a count (0 or more), a fraction in (0, 1], 'rest' or 'all'; found {found}",
                {"found": short_repr(value, 40)},
            )
        if isinstance(value, float) and value > 1.0:
            return int(value)
        return value


SplitPartField = Annotated[SplitPart, scalar_to("count")]


class Split(SpecModel):
    """Train / validation / test sizes. Splits drawn from the same source never overlap."""

    train: SplitPartField = SplitPart(count="rest")
    val: SplitPartField = SplitPart(count=0.1)
    test: SplitPartField = SplitPart(count="all")
    stratify: bool = Field(True, description="keep class proportions in every split")
    seed: Optional[int] = Field(None, description="split seed; default: the study seed")


class Crop(SpecModel):
    crop: Annotated[int, Field(ge=1, le=64)] = Field(description="pad by this many pixels, then crop back at random")


class Translate(SpecModel):
    translate: Annotated[int, Field(ge=1, le=64)] = Field(description="shift by up to this many pixels (zero fill)")


AugmentItem = Union[Literal["hflip"], Crop, Translate]


class Dataset(SpecModel):
    name: str = Field(description="one of: " + ", ".join(DATASET_NAMES))
    path: Optional[str] = Field(None, description="file (npz) or folder (folder) to read")
    image_size: Optional[Pair] = Field(None, description="folder images are resized to this (height, width)")
    grayscale: bool = Field(False, description="folder: convert images to one channel")
    split: Split = Split()
    normalize: Literal["unit", "standardize", "none"] = Field(
        "unit", description="unit: x/255; standardize: per-channel mean/std of the training split; none: raw 0-255"
    )
    augment: list[AugmentItem] = Field(default_factory=list, description="training only: hflip, crop: N, translate: N")

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        if value not in DATASET_NAMES:
            raise PydanticCustomError(
                "dataset_name", "unknown dataset '{name}'{hint}; known: {known}",
                {"name": value, "hint": did_you_mean(value, DATASET_NAMES), "known": ", ".join(DATASET_NAMES)},
            )
        return value

    @model_validator(mode="after")
    def _path_when_needed(self) -> "Dataset":
        if self.name in ("npz", "folder") and not self.path:
            raise PydanticCustomError("path", "dataset '{name}' needs 'path:'", {"name": self.name})
        return self


# ---------------------------------------------------------------- the study

def _has_classifier(items: list) -> list:
    if not any(item_layer(i).type == "dense" for i in items):
        raise PydanticCustomError(
            "classifier",
            "no dense layer; the last dense layer is the classifier (units = number of classes)",
        )
    return items


def _sweep_key(key: str) -> str:
    check_sweep_key(key)
    return key


SweepKey = Annotated[str, AfterValidator(_sweep_key)]


class Study(SpecModel):
    """A whole study: every run is architecture x variant x sweep point x repeat (x fold), less what a
    variant's ``architectures``/``points`` leave out; then the finals (``evaluate``)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    seed: int = Field(0, ge=0, le=2**32 - 1)
    dataset: Dataset
    architectures: dict[str, Annotated[list[LayerItem], Field(min_length=1, max_length=1000), AfterValidator(_has_classifier)]]
    variants: dict[str, Optional[Variant]] = Field(default_factory=lambda: {"none": Variant()})
    sweep: Annotated[Union[
        Annotated[dict[SweepKey, Annotated[list[Any], Field(min_length=1, max_length=1000)]], Tag("grid")],
        Annotated[list[Annotated[dict[SweepKey, Any], Field(min_length=1)]], Field(min_length=1, max_length=1000),
                  Tag("points")],
    ], Discriminator(lambda value: "points" if isinstance(value, list) else "grid")] = Field(
        default_factory=dict, description="a mapping is the cross product of its values ('conv.kernel: [3, 5]', "
        "'train.optimizer.lr: [...]'); a list names each point ([{conv.kernel: 5, conv.stride: 1}, ...])"
    )
    train: Train = Train()
    repeats: Annotated[int, Field(ge=1, le=1000)] = 1
    evaluate: Evaluate = Evaluate()
    explain: Explain = Explain()

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        return check_printable(value)

    @field_validator("architectures", "variants", "sweep")
    @classmethod
    def _printable_keys(cls, value: Union[dict, list]) -> Union[dict, list]:
        for mapping in value if isinstance(value, list) else [value]:
            for key in mapping:
                check_printable(str(key))
        return value

    @property
    def sweep_keys(self) -> list[str]:
        """Every key the sweep sets, in spec order (of the cross product or of its listed points)."""
        if isinstance(self.sweep, dict):
            return list(self.sweep)
        return list(dict.fromkeys(key for point in self.sweep for key in point))

    @field_validator("architectures", "variants")
    @classmethod
    def _not_empty(cls, value: dict) -> dict:
        if not value:
            raise PydanticCustomError("empty", "needs at least one entry")
        return value

    @field_validator("variants")
    @classmethod
    def _none_is_empty_variant(cls, value: dict) -> dict:
        return {name: v if v is not None else Variant() for name, v in value.items()}


SWEEPABLE_TRAIN = {"batch_size", "epochs", "init", "precision", "optimizer.name", "optimizer.lr",
                   "optimizer.momentum", "optimizer.weight_decay", "schedule.name", "schedule.factor",
                   "schedule.every"}


def check_sweep_key(key: str) -> None:
    """A sweep key is ``train.<field>`` or ``<layer kind or name>.<field>``."""
    head, _, field = key.partition(".")
    if not field:
        raise PydanticCustomError(
            "sweep_key", "sweep key '{key}' must look like 'conv.kernel' or 'train.optimizer.lr'", {"key": key}
        )
    if head == "train":
        if field not in SWEEPABLE_TRAIN:
            raise PydanticCustomError(
                "sweep_key", "cannot sweep 'train.{field}'{hint}; sweepable: {known}",
                {"field": field, "hint": did_you_mean(field, sorted(SWEEPABLE_TRAIN)), "known": ", ".join(sorted(SWEEPABLE_TRAIN))},
            )
        return
    kind = layer_kind(head)
    if kind is None or head == "classifier":
        raise PydanticCustomError(
            "sweep_key", "sweep key '{key}': '{head}' is neither 'train' nor a layer kind or name{hint}",
            {"key": key, "head": head, "hint": did_you_mean(head, sorted(vocabulary("sweep") + ["train"]))},
        )
    fields = LAYER_TYPES[kind].model_fields
    if field not in fields:
        raise PydanticCustomError(
            "sweep_key", "sweep key '{key}': {kind} layers have no field '{field}'{hint}; fields: {known}",
            {"key": key, "kind": kind, "field": field, "hint": did_you_mean(field, list(fields)), "known": ", ".join(fields)},
        )



__all__ = ["Study", "Dataset", "Split", "SplitPart", "check_sweep_key"]

