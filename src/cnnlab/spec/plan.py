"""Expand a study into resolved run configurations: architecture x variant x sweep x repeat (x fold),
less what a variant's ``architectures``/``points`` leave out, plus the k-fold experiment's runs.

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
from cnnlab.spec.selectors import Architecture, select, sweep_targets
from cnnlab.spec.overrides import apply_overrides
from cnnlab.spec.study import Dataset, Study
from cnnlab.spec.training import Train, merge_train
from cnnlab.spec.variant import LayerChanges, Variant


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
    variant_spec: LayerChanges = LayerChanges()
    train: Train
    evaluate_test: bool = True
    limit_train: Optional[int] = None
    # select: a candidate of the selection (or an experiment beside it); final: a retrain of a chosen
    # configuration, tested; kfold: a fold of the k-fold experiment on some configurations.
    phase: Literal["select", "final", "kfold"] = "select"
    # The final retrain trains on train+val (all k folds' pool with k-fold) and has no val split.
    merge_val: bool = False
    # Fields added after stores existed: dropped from the run id at their default (``ADDED_FIELDS``),
    # or always (``MEASURED_ONLY``), so runs stored before keep their ids.
    test_curve: bool = False  # measure the test split after every epoch (finals only)
    validate_on_test: bool = False  # the test split serves as the validation data (evaluate.validate_on)

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
    elif phase == "kfold":
        parts.append("(k-fold)")
    return " ".join(parts)


def _short(value: Any) -> str:
    # Kernel sizes and strides are pairs; a square one reads better as one number.
    if isinstance(value, (list, tuple)) and len(set(map(str, value))) == 1:
        return str(value[0])
    return str(value)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


ADDED_FIELDS = {"validate_on_test": False}
# What a run measures besides its training, never part of its id: a final stored before test curves
# existed is the same training, so it is found done rather than trained again (it shows no curve).
MEASURED_ONLY = ("test_curve",)


def run_id(config: RunConfig) -> str:
    """A stable 16-hex-digit hash of the resolved configuration."""
    data = config.model_dump(mode="json")
    # train.log only says where the run's curves are shown (TensorBoard), not what trains: it is never
    # part of the id, so turning logs on or off finds the same finished runs. Likewise train.stack.
    data["train"].pop("log", None)
    data["train"].pop("stack", None)  # how the repeats train (stacked or one by one), not what
    for key in MEASURED_ONLY:
        data.pop(key, None)
    for key, default in ADDED_FIELDS.items():
        if data.get(key) == default:
            del data[key]
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


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
    """The sweep's points in spec order: the listed ones, or the cross product of the values."""
    if isinstance(study.sweep, list):
        return [dict(point) for point in study.sweep]
    if not study.sweep:
        return [{}]
    keys = list(study.sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(study.sweep[k] for k in keys))]


def same_value(a: Any, b: Any) -> bool:
    """Two sweep values mean the same (``5`` and ``[5, 5]`` for a kernel)."""
    def norm(value: Any) -> Any:
        if isinstance(value, (list, tuple)) and value and all(v == value[0] for v in value):
            return value[0]
        return value
    return canonical_json(norm(a)) == canonical_json(norm(b))


def point_matches(point: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a sweep point has every value ``wanted`` names."""
    return all(key in point and same_value(point[key], value) for key, value in wanted.items())


def variant_points(variant: Variant, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sweep points a variant runs at (all without ``points:``)."""
    if variant.points is None:
        return points
    return [point for point in points if any(point_matches(point, wanted) for wanted in variant.points)]


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


def _point_count(study: Study) -> int:
    if isinstance(study.sweep, list):
        return len(study.sweep)
    return math.prod(len(values) for values in study.sweep.values())


def plan_size(study: Study) -> int:
    """How many runs ``expand`` would return, counted without building any configuration."""
    if _point_count(study) > MAX_RUNS:
        return _upper_bound(study)
    points = sweep_points(study)
    folds = max(study.evaluate.folds, 1)
    total = 0
    for arch in study.architectures:
        for name, variant in study.variants.items():
            if variant.applies_to(arch):
                count = len(variant_points(variant, points))
                total += count * study.repeats * folds
                total += count * study.repeats * _experiment_folds(study, arch, name)
    return total


def _upper_bound(study: Study) -> int:
    folds = max(study.evaluate.folds, 1) + (study.evaluate.kfold_experiment.folds if study.evaluate.kfold_experiment else 0)
    return len(study.architectures) * _point_count(study) * len(study.variants) * study.repeats * folds


def _experiment_folds(study: Study, architecture: str, variant: str) -> int:
    """The folds of the k-fold experiment this configuration gets (0: none)."""
    experiment = study.evaluate.kfold_experiment
    if experiment is None or not any(name in (variant, f"{architecture}/{variant}") for name in experiment.on or []):
        return 0
    return experiment.folds


def check_plan_size(study: Study) -> None:
    total = plan_size(study)
    if total > MAX_RUNS:
        points = _point_count(study)
        folds = f" x {study.evaluate.folds} folds" if study.evaluate.folds else ""
        raise SpecError(
            f"study '{short_repr(study.name, 40)}' expands to {total:,} runs ({len(study.architectures)} architectures x "
            f"{len(study.variants)} variants x {points:,} sweep points x {study.repeats} repeats{folds}); "
            f"at most {MAX_RUNS:,} runs fit in one study. Narrow the sweep or split the study."
        )


def variant_layers(study: Study, architecture: str, variant: Variant) -> list[Layer]:
    """An architecture's base layers less those ``variant`` removes (a SpecError for a removal
    that cannot apply; the loader has checked it already)."""
    base = [item_layer(item) for item in study.architectures[architecture]]
    remove = variant.remove.get(architecture) if isinstance(variant.remove, dict) else variant.remove
    if not remove:
        return base
    try:
        arch = Architecture(base)
        gone = set(select(arch, remove, "remove", "placement"))
    except ModelError as error:
        raise SpecError(f"on architecture '{architecture}': {error}") from None
    if arch.classifier in gone:
        raise SpecError(f"on architecture '{architecture}': remove {list(remove)} would remove the classifier "
                        f"({arch.names[arch.classifier]}); the last dense layer must stay")
    return [layer for index, layer in enumerate(base) if index not in gone]


def expand(
    study: Study,
    *,
    epochs: Optional[int] = None,
    limit_train: Optional[int] = None,
    precision: Optional[str] = None,
) -> list[RunConfig]:
    """Every run of a study, in a stable order (architecture, sweep point, variant, repeat, fold),
    then the k-fold experiment's runs. The finals are not here: they are chosen after these ran.

    ``epochs`` and ``precision`` replace the spec's train settings (a sweep over them still wins;
    ``epochs`` also replaces a variant's own: a trial run is short throughout).
    """
    flags = {"train.epochs": ("--epochs", epochs), "train.precision": ("--precision", precision)}
    given = {key: value for key, (_, value) in flags.items() if value is not None}
    if given:
        named = " ".join(f"{flags[key][0]} {value}" for key, value in given.items())
        study = apply_overrides(study, given, f"the command line ({named})")
    check_plan_size(study)
    split_seed = study.dataset.split.seed if study.dataset.split.seed is not None else study.seed
    kfold = study.evaluate.folds
    folds: list[Optional[int]] = list(range(kfold)) if kfold else [None]
    points = sweep_points(study)
    runs: list[RunConfig] = []
    experiments: list[RunConfig] = []
    for arch_name in study.architectures:
        for point in points:
            for variant_name, variant in study.variants.items():
                if not variant.applies_to(arch_name) or point not in variant_points(variant, points):
                    continue
                layers, run_train = variant_layers(study, arch_name, variant), study.train
                for key, value in point.items():
                    if key.startswith("train."):
                        run_train = apply_train_override(run_train, key, value)
                    else:
                        layers = apply_layer_override(layers, key, value)
                run_train = variant_train(run_train, variant, variant_name)
                if epochs is not None and "train.epochs" not in point:
                    # A trial run's --epochs shortens every run, a variant with its own epochs too.
                    run_train = run_train.model_copy(update={"epochs": epochs})
                base = {"study": study.name, "architecture": arch_name, "variant": variant_name, "sweep": point,
                            "split_seed": split_seed, "dataset": study.dataset, "layers": [layer_item(layer) for layer in layers],
                            "variant_spec": variant.layer_changes(arch_name), "train": run_train, "limit_train": limit_train,
                            "validate_on_test": study.evaluate.validate_on == "test"}
                for repeat in range(study.repeats):
                    for fold in folds:
                        runs.append(RunConfig(**base, repeat=repeat, fold=fold, kfold=kfold,
                                              seed=derive_seed(study.seed, repeat, fold), evaluate_test=measure_test(study)))
                    for fold in range(_experiment_folds(study, arch_name, variant_name)):
                        experiments.append(RunConfig(**{**base, "validate_on_test": False}, repeat=repeat, fold=fold,
                                                     kfold=study.evaluate.kfold_experiment.folds, phase="kfold",
                                                     seed=derive_seed(study.seed, repeat, fold), evaluate_test=False))
    runs += experiments
    _refuse_twins(runs)
    return runs


def variant_train(train: Train, variant: Variant, name: str) -> Train:
    try:
        return merge_train(train, variant.train)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SpecError(f"variant '{name}': its train settings over the study's are not valid: {where}: {first['msg']}") from None


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
