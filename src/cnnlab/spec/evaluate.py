"""How a study is evaluated (``evaluate:``: selection, finals, k-fold, the test split) and what it
explains (``explain:``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from cnnlab.spec.base import SpecModel


# What selection may rank configurations by: validation accuracy or loss, or the smallest gap between
# train and validation accuracy at the best epoch, closest to zero either way (study B's second final).
# Never a test metric.
SelectMetric = Literal["val_accuracy", "val_loss", "gap"]


class Constraint(SpecModel):
    """Configurations selection may choose from (study A weighed accuracy against run time)."""

    max_params: Optional[Annotated[int, Field(ge=1)]] = Field(None, description="at most this many parameters")
    max_train_seconds: Optional[Annotated[float, Field(gt=0.0)]] = Field(
        None, description="at most this many seconds of training per run (mean over repeats; depends on the machine)")


class KFold(SpecModel):
    """k-fold cross-validation, of every configuration (selection then reads the folds) or, with
    ``on``, of some configurations only, as an experiment beside their fixed-split runs."""

    folds: Annotated[int, Field(ge=2, le=100)]
    on: Optional[Annotated[list[str], Field(min_length=1)]] = Field(
        None, description="variant names or architecture/variant labels cross-validated as an experiment; "
        "the fixed split alone is used for selection")


def _kfold_count(value: Any) -> Any:
    if value == 1 and not isinstance(value, bool):
        raise PydanticCustomError("kfold", "kfold must be 0 (off) or at least 2")
    return value


class Evaluate(SpecModel):
    select: SelectMetric = Field("val_accuracy", description="what ranks configurations: val_accuracy, val_loss or "
                                 "gap (the train-validation accuracy gap closest to zero)")
    constraint: Optional[Constraint] = None
    retrain_on: Literal["none", "train", "train+val"] = Field(
        "none", description="the finals retrain on: train+val (the validation split merged in), train (the "
        "selection's training split again) or none (no finals: each run measures the test split)")
    finals: Optional[Union[Annotated[int, Field(ge=1, le=20)], Annotated[list[SelectMetric], Field(min_length=1, max_length=20)]]] = Field(
        None, description="how many configurations are retrained and tested: the top k by 'select', or a list of "
        "metrics each choosing its best not yet chosen ([val_accuracy, gap]); default 1 when retrain_on is set")
    final_epochs: Union[Annotated[int, Field(ge=1, le=100_000)], Literal["mean_best"]] = Field(
        "mean_best", description="the finals' epochs: a number, or mean_best (the mean best epoch of the selected runs)")
    test_curves: bool = Field(True, description="the finals measure the test split after every epoch (plotted, "
                              "labelled as measured after the choice; never used for any choice)")
    kfold: Annotated[Union[Annotated[int, Field(ge=0, le=100), Tag("count")], Annotated[KFold, Tag("folds")]],
                     Discriminator(lambda value: "folds" if isinstance(value, (dict, KFold)) else "count"),
                     BeforeValidator(_kfold_count)] = Field(
        0, description="k-fold cross-validation: k (every configuration, selected on the folds) or {folds: k, on: "
        "[...]} (those configurations only, as an experiment beside the fixed split)")
    validate_on: Literal["val", "test"] = Field(
        "val", description="test: the test split serves as validation data (as study C did); every choice then "
        "saw the test split and the report warns that its numbers are optimistic. Needs dataset.split.val: 0")
    keras_loss: bool = Field(False, description="show losses as Keras reports them: the kernel penalty added "
                             "(stored apart either way)")
    test: Optional[bool] = Field(
        None, description="measure the test split at the end of each run (never used for selection); "
        "default: yes, unless retrain_on is set (then only the finals touch it)"
    )
    baseline: Optional[str] = Field(None, description="the variant others are compared with; default: the first")
    compare: list[tuple[str, str]] = Field(default_factory=list, description="extra pairs of configurations to compare")

    @model_validator(mode="after")
    def _finals_need_a_retrain(self) -> "Evaluate":
        if self.finals is not None and self.retrain_on == "none":
            raise PydanticCustomError("finals", "finals are retrained and tested: set retrain_on to train+val or train")
        return self

    @property
    def folds(self) -> int:
        """The folds every configuration is selected on (0: a fixed validation split)."""
        if isinstance(self.kfold, KFold):
            return 0 if self.kfold.on else self.kfold.folds
        return self.kfold

    @property
    def kfold_experiment(self) -> Optional[KFold]:
        """The k-fold experiment on some configurations, beside the fixed split; None without one."""
        return self.kfold if isinstance(self.kfold, KFold) and self.kfold.on else None

    def final_rules(self) -> list[str]:
        """The metric each final is chosen by, in order ([] without finals)."""
        if self.retrain_on == "none":
            return []
        if isinstance(self.finals, list):
            return list(self.finals)
        return [self.select] * (self.finals or 1)


# A layer of the model a run really built: its name (conv1, batchnorm1) or its 1-based position in the
# model's layer list (1: the first layer; -1: the last), so one setting fits whichever architecture wins.
LayerPick = Union[Annotated[int, Field(ge=-1000, le=1000)], str]
LayerPicks = Union[list[LayerPick], dict[str, list[LayerPick]]]


class FeatureMaps(SpecModel):
    image: str = Field("test:0", description="split:index, an image file, or sample:china / sample:flower (photos "
                       "from outside any dataset that scikit-learn ships), resized to the model's input")
    layers: Optional[LayerPicks] = Field(None, description="layer names or 1-based positions ([1, 2, 3, 4]: the "
                                         "first four), or a mapping from architecture to its list")


class Neurons(SpecModel):
    layer: Union[LayerPick, dict[str, LayerPick]]
    neurons: Annotated[int, Field(ge=1, le=4096)] = 10
    k: Annotated[int, Field(ge=1, le=100)] = 9
    split: Literal["train", "val", "test"] = "test"


class Examples(SpecModel):
    correct: Annotated[int, Field(ge=0, le=1000)] = 5
    wrong: Annotated[int, Field(ge=0, le=1000)] = 5


class Explain(SpecModel):
    feature_maps: Optional[FeatureMaps] = None
    filters: Optional[LayerPicks] = None
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
