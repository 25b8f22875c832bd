"""Expand a study into resolved run configurations: architecture x variant x sweep x repeat (x fold).

A run is identified by a stable hash of its resolved configuration, so rerunning a spec finds
the runs it already finished. Run seeds derive from the study seed and the repeat (and fold)
only — never from the architecture or variant — so seeds pair across configurations and
adding a variant leaves every other run's result unchanged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from typing import Any, Literal, Optional

from pydantic import Field, ValidationError

from cnnlab.errors import ModelError, SpecError
from cnnlab.spec.base import SpecModel, short_repr
from cnnlab.spec.layers import Layer, LayerItem, base_names, item_layer, layer_item
from cnnlab.spec.selectors import Architecture, sweep_targets
from cnnlab.spec.overrides import apply_overrides
from cnnlab.spec.study import Dataset, Study, Train, Variant


class RunConfig(SpecModel):
    """Everything that determines one training run; its hash is the run id."""

    study: str
    architecture: str
    variant: str
    sweep: dict[str, Any] = Field(default_factory=dict)
    repeat: int = 0
    fold: Optional[int] = None
    kfold: int = 0
    seed: int
    split_seed: int
    dataset: Dataset
    layers: list[LayerItem]
    variant_spec: Variant = Variant()
    train: Train
    evaluate_test: bool = True
    limit_train: Optional[int] = None
    phase: Literal["select", "final"] = "select"
    # The final retrain trains on train+val (all k folds' pool with k-fold) and has no val split.
    merge_val: bool = False

    @property
    def run_id(self) -> str:
        return run_id(self)

    def layer_list(self) -> list[Layer]:
        return [item_layer(item) for item in self.layers]

    @property
    def label(self) -> str:
        return configuration_label(self.architecture, self.variant, self.sweep, self.phase)

    @property
    def config_key(self) -> str:
        """What repeats and folds of one configuration share (for grouping results)."""
        return json.dumps([self.architecture, self.variant, self.sweep, self.phase], sort_keys=True, default=str)


def configuration_label(architecture: str, variant: str, sweep: dict[str, Any], phase: str = "select") -> str:
    """A configuration's name in tables: ``A2/l2 conv.kernel=5`` (``(final)`` for retrains)."""
    parts = [f"{architecture}/{variant}"]
    parts += [f"{key}={_short(value)}" for key, value in sweep.items()]
    if phase == "final":
        parts.append("(final)")
    return " ".join(parts)


def _short(value: Any) -> str:
    # Kernel sizes and strides are pairs; a square one reads better as one number.
    if isinstance(value, (list, tuple)) and len(set(map(str, value))) == 1:
        return str(value[0])
    return str(value)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def run_id(config: RunConfig) -> str:
    """A stable 16-hex-digit hash of the resolved configuration."""
    text = canonical_json(config.model_dump(mode="json"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def derive_seed(study_seed: int, repeat: int, fold: Optional[int] = None) -> int:
    """The run seed: a function of the study seed, the repeat and the fold only."""
    text = f"cnnlab:{study_seed}:{repeat}:{fold}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


# ---------------------------------------------------------------- sweeps

def apply_layer_override(layers: list[Layer], key: str, value: Any) -> list[Layer]:
    """Set ``field`` on every layer the selector names (``conv.kernel``, ``conv2.filters``)."""
    field = key.partition(".")[2]
    try:
        targets = set(sweep_targets(Architecture(layers), key))
    except ModelError as error:
        raise SpecError(str(error)) from None
    names = base_names(layers)
    out = []
    for index, (name, layer) in enumerate(zip(names, layers)):
        if index in targets:
            body = layer.model_dump()
            body[field] = value
            try:
                layer = type(layer).model_validate(body)
            except ValidationError as error:
                first = error.errors()[0]
                raise SpecError(f"sweep '{key}': value {short_repr(value)} is not valid for {name}: {first['msg']}") from None
        out.append(layer)
    return out


def apply_train_override(train: Train, key: str, value: Any) -> Train:
    """Set ``train.a.b`` on a copy of the training settings, validated."""
    body = train.model_dump()
    path = key.split(".")[1:]
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    try:
        return Train.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        raise SpecError(f"sweep '{key}': value {short_repr(value)} is not valid: {first['msg']}") from None


def sweep_points(study: Study) -> list[dict[str, Any]]:
    """The cross product of the sweep's values, in spec order."""
    if not study.sweep:
        return [{}]
    keys = list(study.sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(study.sweep[k] for k in keys))]


# ---------------------------------------------------------------- the plan


def measure_test(study: Study) -> bool:
    """Whether runs of the plan measure the test split: by default only when no final retrain
    does it (then the test split is touched once, by the selected configuration)."""
    if study.evaluate.test is not None:
        return study.evaluate.test
    return study.evaluate.retrain_on == "none"


# A study of more runs than this is a typo (a sweep crossed with itself, repeats: 1000 with
# kfold: 100), not an experiment; counting first refuses it before millions of configs are built.
MAX_RUNS = 10_000


def plan_size(study: Study) -> int:
    """How many runs ``expand`` would return, computed without expanding anything."""
    points = math.prod(len(values) for values in study.sweep.values())
    return len(study.architectures) * points * len(study.variants) * study.repeats * max(study.evaluate.kfold, 1)


def check_plan_size(study: Study) -> None:
    total = plan_size(study)
    if total > MAX_RUNS:
        points = math.prod(len(values) for values in study.sweep.values())
        folds = f" x {study.evaluate.kfold} folds" if study.evaluate.kfold else ""
        raise SpecError(
            f"study '{short_repr(study.name, 40)}' expands to {total:,} runs ({len(study.architectures)} architectures x "
            f"{len(study.variants)} variants x {points:,} sweep points x {study.repeats} repeats{folds}); "
            f"at most {MAX_RUNS:,} runs fit in one study. Narrow the sweep or split the study."
        )


def expand(
    study: Study,
    *,
    epochs: Optional[int] = None,
    limit_train: Optional[int] = None,
    precision: Optional[str] = None,
) -> list[RunConfig]:
    """Every run of a study, in a stable order (architecture, variant, sweep point, repeat, fold).

    ``epochs`` and ``precision`` replace the spec's train settings (a sweep over them still wins).
    """
    flags = {"train.epochs": ("--epochs", epochs), "train.precision": ("--precision", precision)}
    given = {key: value for key, (_, value) in flags.items() if value is not None}
    if given:
        named = " ".join(f"{flags[key][0]} {value}" for key, value in given.items())
        study = apply_overrides(study, given, f"the command line ({named})")
    check_plan_size(study)
    train = study.train
    split_seed = study.dataset.split.seed if study.dataset.split.seed is not None else study.seed
    kfold = study.evaluate.kfold
    folds: list[Optional[int]] = list(range(kfold)) if kfold else [None]
    runs: list[RunConfig] = []
    for arch_name, items in study.architectures.items():
        base = [item_layer(item) for item in items]
        for point in sweep_points(study):
            layers, run_train = base, train
            for key, value in point.items():
                if key.startswith("train."):
                    run_train = apply_train_override(run_train, key, value)
                else:
                    layers = apply_layer_override(layers, key, value)
            for variant_name, variant in study.variants.items():
                for repeat in range(study.repeats):
                    for fold in folds:
                        runs.append(
                            RunConfig(
                                study=study.name,
                                architecture=arch_name,
                                variant=variant_name,
                                sweep=point,
                                repeat=repeat,
                                fold=fold,
                                kfold=kfold,
                                seed=derive_seed(study.seed, repeat, fold),
                                split_seed=split_seed,
                                dataset=study.dataset,
                                layers=[layer_item(layer) for layer in layers],
                                variant_spec=variant or Variant(),
                                train=run_train,
                                evaluate_test=measure_test(study),
                                limit_train=limit_train,
                            )
                        )
    _refuse_twins(runs)
    return runs


def _refuse_twins(runs: list[RunConfig]) -> None:
    """Two plan entries that resolve to the same run (a sweep value listed twice, or ``3`` and
    ``[3, 3]`` for one kernel) would train one run and count it twice."""
    seen: dict[str, RunConfig] = {}
    for config in runs:
        # The sweep point is a label; the layers and training settings are what trains.
        trained = canonical_json(config.model_dump(mode="json", exclude={"sweep"}))
        twin = seen.setdefault(trained, config)
        if twin is not config:
            raise SpecError(f"the sweep gives the same run twice: '{twin.label}' and '{config.label}' (repeat "
                            f"{config.repeat}) resolve to one configuration; list each sweep value once")
