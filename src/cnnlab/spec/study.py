"""The study spec: the pydantic models a YAML study file is validated into.

These models are the source of truth for the format; ``cnnlab spec --schema`` prints them
as JSON schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from cnnlab.registry import did_you_mean
from cnnlab.spec.base import SpecModel, check_printable, pair, short_repr
from cnnlab.spec.layers import LAYER_TYPES, LayerItem, Pair, item_layer
from cnnlab.spec.selectors import layer_kind, vocabulary

# Kept here rather than imported from cnnlab.data because the spec is the first stage;
# a test checks this list against the dataset registry.
DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100", "digits", "npz", "folder")


def _scalar_to(field: str):
    """A before-validator letting ``key: value`` stand for ``key: {field: value}``."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, (dict, SpecModel)):
            return value
        return {field: value}

    return BeforeValidator(convert)


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


SplitPartField = Annotated[SplitPart, _scalar_to("count")]


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


# ---------------------------------------------------------------- variants

Selector = str  # a layer kind (conv, pool, dense, ...), a layer name (conv1) or a position


class Penalty(SpecModel):
    factor: float = Field(ge=0.0, le=1e3)
    on: Optional[list[Selector]] = None


class DropoutPlacement(SpecModel):
    rate: float = Field(gt=0.0, lt=1.0)
    after: Optional[list[Selector]] = None


class BatchNormPlacement(SpecModel):
    after: Optional[list[Selector]] = None
    position: Literal["after_activation", "before_activation"] = "after_activation"
    momentum: float = Field(0.99, gt=0.0, lt=1.0)
    epsilon: float = Field(1e-3, gt=0.0)


def _batchnorm_shorthand(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    return value


class Variant(SpecModel):
    """A transformation of every base architecture (regularization, normalization).

    ``on`` selects the layers that get kernel penalties (default: every conv and dense);
    ``after`` places inserted dropout/batchnorm layers (default: dropout after each pooling
    layer and each hidden dense; batchnorm after each conv and each hidden dense).
    Selectors: a kind (conv, pool, maxpool, avgpool, dense, flatten, classifier), a layer
    name (conv1, dense2), ``last_feature`` (the end of the convolutional part) or
    ``pre_classifier`` (what feeds the classifier: the last hidden dense or flatten); see
    ``cnnlab.spec.selectors``, which interprets them and checks them when the spec loads.
    """

    l1: Annotated[Optional[Penalty], _scalar_to("factor")] = None
    l2: Annotated[Optional[Penalty], _scalar_to("factor")] = None
    dropout: Annotated[Optional[DropoutPlacement], _scalar_to("rate")] = None
    batchnorm: Annotated[Optional[BatchNormPlacement], BeforeValidator(_batchnorm_shorthand)] = None
    on: Optional[list[Selector]] = None
    after: Optional[list[Selector]] = None


# ---------------------------------------------------------------- training


class Optimizer(SpecModel):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0.0, le=100.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    eps: float = Field(1e-7, gt=0.0, description="Keras' default epsilon")
    rho: float = Field(0.9, gt=0.0, lt=1.0, description="RMSprop decay (Keras default)")
    weight_decay: float = Field(0.0, ge=0.0, le=10.0, description="decoupled (adamw) or added to the gradient (others)")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "Optimizer":
        if self.nesterov and (self.name != "sgd" or self.momentum == 0.0):
            raise PydanticCustomError("nesterov", "nesterov needs name: sgd and momentum > 0")
        return self


Monitor = Literal["val_loss", "val_accuracy", "train_loss", "train_accuracy"]


class Schedule(SpecModel):
    name: Literal["none", "step", "plateau", "cosine", "path"] = "none"
    every: Annotated[int, Field(ge=1)] = Field(10, description="step: epochs between decays")
    factor: float = Field(0.5, gt=0.0, lt=1.0, description="step/plateau: multiply the lr by this")
    monitor: Monitor = "val_loss"
    patience: Annotated[int, Field(ge=0)] = Field(5, description="plateau: epochs without improvement")
    min_delta: float = Field(1e-4, ge=0.0)
    min_lr: float = Field(0.0, ge=0.0)
    warmup_epochs: Annotated[int, Field(ge=0)] = Field(0, description="linear warm-up before the schedule")
    values: Optional[list[Annotated[float, Field(gt=0.0, le=100.0, allow_inf_nan=False)]]] = Field(
        None, min_length=1, description="path: the lr of each epoch in turn; epochs past the list keep the last "
        "(the final retrain replays its selected runs' median rates this way)",
    )

    @model_validator(mode="after")
    def _values_only_for_path(self) -> "Schedule":
        # A path names every epoch's rate, so nothing else may shape it, and no other schedule reads values.
        if self.name == "path" and not self.values:
            raise PydanticCustomError("schedule_path", "schedule 'path' needs 'values:', a list of positive rates")
        if self.name != "path" and self.values is not None:
            raise PydanticCustomError("schedule_values", "'values:' is for schedule 'path' only, not '{name}'",
                                      {"name": self.name})
        if self.name == "path" and (self.warmup_epochs or self.min_lr):
            raise PydanticCustomError("schedule_path", "schedule 'path' lists every epoch's rate itself; "
                                      "drop warmup_epochs and min_lr")
        return self


class EarlyStopping(SpecModel):
    monitor: Monitor = "val_loss"
    patience: Annotated[int, Field(ge=0)] = 5
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = Field(True, description="end with the best epoch's weights, stopped early or not")


class Train(SpecModel):
    optimizer: Annotated[Optimizer, _scalar_to("name")] = Optimizer()
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 32
    epochs: Annotated[int, Field(ge=1, le=100_000)] = 10
    schedule: Annotated[Schedule, _scalar_to("name")] = Schedule()
    early_stopping: Optional[EarlyStopping] = None
    init: Literal["default", "keras", "xavier", "he"] = Field(
        "default", description="default: PyTorch's; keras: glorot uniform, zero bias; xavier; he"
    )
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: autocast where the device supports it")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Optional[Annotated[int, Field(ge=1, le=1024)]] = Field(None, description="CPU threads; default: all cores")
    checkpoint_every: Annotated[int, Field(ge=1)] = Field(1, description="epochs between resumable checkpoints")


# ---------------------------------------------------------------- evaluation and explain


class Evaluate(SpecModel):
    select: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    retrain_on: Literal["none", "train+val"] = "none"
    kfold: Annotated[int, Field(ge=0, le=100)] = 0
    test: Optional[bool] = Field(
        None, description="measure the test split at the end of each run (never used for selection); "
        "default: yes, unless retrain_on is set (then only the final retrain touches it)"
    )
    baseline: Optional[str] = Field(None, description="the variant others are compared with; default: the first")
    compare: list[tuple[str, str]] = Field(default_factory=list, description="extra pairs of configurations to compare")

    @field_validator("kfold")
    @classmethod
    def _kfold_not_one(cls, value: int) -> int:
        if value == 1:
            raise PydanticCustomError("kfold", "kfold must be 0 (off) or at least 2")
        return value


class FeatureMaps(SpecModel):
    image: str = Field("test:0", description="split:index or an image file")
    layers: Optional[list[str]] = None


class Neurons(SpecModel):
    layer: str
    neurons: Annotated[int, Field(ge=1, le=4096)] = 10
    k: Annotated[int, Field(ge=1, le=100)] = 9
    split: Literal["train", "val", "test"] = "test"


class Examples(SpecModel):
    correct: Annotated[int, Field(ge=0, le=1000)] = 5
    wrong: Annotated[int, Field(ge=0, le=1000)] = 5


class Explain(SpecModel):
    feature_maps: Optional[FeatureMaps] = None
    filters: Optional[list[str]] = None
    histograms: bool = False
    top_patches: Optional[Neurons] = None
    guided_backprop: Optional[Neurons] = None
    saliency: Optional[list[int]] = None
    examples: Optional[Examples] = None
    confusion: Optional[Annotated[list[Literal["best", "baseline"]], Field(min_length=1)]] = Field(None, description=(
        "the confusion matrix and per-class scores; [best, baseline]: the report sets the best beside its baseline"))

    @field_validator("confusion")
    @classmethod
    def _confusion_once_each(cls, value: Optional[list[str]]) -> Optional[list[str]]:
        if value is not None and len(set(value)) != len(value):
            raise PydanticCustomError("confusion", "name each of best and baseline at most once")
        return value


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
    """A whole study: every run is architecture x variant x sweep point x repeat (x fold)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    seed: int = Field(0, ge=0, le=2**32 - 1)
    dataset: Dataset
    architectures: dict[str, Annotated[list[LayerItem], Field(min_length=1, max_length=1000), AfterValidator(_has_classifier)]]
    variants: dict[str, Optional[Variant]] = Field(default_factory=lambda: {"none": Variant()})
    sweep: dict[SweepKey, Annotated[list[Any], Field(min_length=1, max_length=1000)]] = Field(
        default_factory=dict, description="cross product of overrides: 'conv.kernel: [3, 5]', 'train.optimizer.lr: [...]'"
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
    def _printable_keys(cls, value: dict) -> dict:
        for key in value:
            check_printable(str(key))
        return value

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



__all__ = ["Study", "Dataset", "Split", "SplitPart", "Variant", "Train", "Evaluate", "Explain", "pair"]
