"""The training settings of a study (``train:``) and the partial ones a variant may set for itself."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from cnnlab.spec.base import SpecModel, scalar_to


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
    optimizer: Annotated[Optimizer, scalar_to("name")] = Optimizer()
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 32
    epochs: Annotated[int, Field(ge=1, le=100_000)] = 10
    schedule: Annotated[Schedule, scalar_to("name")] = Schedule()
    early_stopping: Optional[EarlyStopping] = None
    init: Literal["default", "keras", "xavier", "he"] = Field(
        "default", description="default: PyTorch's; keras: glorot uniform, zero bias; xavier; he"
    )
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: autocast where the device supports it")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Optional[Annotated[int, Field(ge=1, le=1024)]] = Field(None, description="CPU threads; default: all cores")
    checkpoint_every: Annotated[int, Field(ge=1)] = Field(1, description="epochs between resumable checkpoints")
    # How the repeats train, not what: never part of a run's identity (spec.plan.run_id leaves it out).
    stack: Literal["auto", "always", "never"] = Field(
        "auto", description="the repeats of a configuration as one stacked model: auto (where measured faster), "
        "always, never",
    )
    # Where a run's curves are shown while it trains; never part of a run's identity (spec.plan.run_id
    # leaves it out), so turning logs on or off retrains nothing.
    log: list[Literal["tensorboard", "histograms"]] = Field(
        default_factory=list, description="tensorboard: live TensorBoard files in <output folder>/tensorboard; "
        "histograms (with tensorboard): each epoch's weight histograms too",
    )

    @model_validator(mode="after")
    def _histograms_need_tensorboard(self) -> "Train":
        if "histograms" in self.log and "tensorboard" not in self.log:
            raise PydanticCustomError("log", "log: histograms are written to TensorBoard's files; "
                                      "list tensorboard too ([tensorboard, histograms])")
        return self


class TrainChanges(SpecModel):
    """A variant's own training settings: only what it names changes. A mapping merges into the
    study's (``optimizer: {lr: 0.002}`` keeps the study's optimizer and its other settings)."""

    optimizer: Annotated[Optional[Optimizer], scalar_to("name")] = None
    batch_size: Optional[Annotated[int, Field(ge=1, le=1_000_000)]] = None
    epochs: Optional[Annotated[int, Field(ge=1, le=100_000)]] = None
    schedule: Annotated[Optional[Schedule], scalar_to("name")] = None
    early_stopping: Optional[EarlyStopping] = None
    init: Optional[Literal["default", "keras", "xavier", "he"]] = None
    precision: Optional[Literal["fp32", "bf16"]] = None
    checkpoint_every: Optional[Annotated[int, Field(ge=1)]] = None

    def changed(self) -> dict[str, object]:
        """What these changes set, as ``{"optimizer.lr": 0.002, "epochs": 20}``."""
        out: dict[str, object] = {}
        for name in sorted(self.model_fields_set):
            value = getattr(self, name)
            if isinstance(value, SpecModel):
                out.update({f"{name}.{key}": getattr(value, key) for key in sorted(value.model_fields_set)})
            else:
                out[name] = value
        return out


def merge_train(train: Train, changes: Optional[TrainChanges]) -> Train:
    """``train`` with a variant's changes over it, validated as a whole (a ValidationError when the
    two together are not valid settings, say nesterov from one and momentum 0 from the other)."""
    if changes is None:
        return train
    body = train.model_dump()
    for name in changes.model_fields_set:
        value = getattr(changes, name)
        if isinstance(value, SpecModel) and isinstance(body.get(name), dict):
            body[name] = {**body[name], **{key: getattr(value, key) for key in value.model_fields_set}}
        else:
            body[name] = value.model_dump() if isinstance(value, SpecModel) else value
    return Train.model_validate(body)
