"""Checks across a study's sections, run when the spec loads: each names the spec path it is about.

A field checks itself in its pydantic model; what needs two sections at once (a variant's
selectors against each architecture it applies to, a per-architecture mapping against the
architectures, a variant's sweep points against the sweep, its own train settings over the
study's, the k-fold experiment's configurations) is checked here, so a spec that could not run
is refused before anything trains.
"""

from __future__ import annotations

from typing import Any

from cnnlab.errors import ModelError, SpecError
from cnnlab.spec.plan import variant_train, point_matches, sweep_points, variant_layers
from cnnlab.spec.selectors import Architecture, selector_problems, variant_targets
from cnnlab.spec.study import Study

Problem = tuple[tuple[Any, ...], str]


def study_problems(study: Study) -> list[Problem]:
    """Every problem of a validated study, as (spec path, message)."""
    problems = selector_problems(study)
    problems += _variant_problems(study)
    problems += _evaluate_problems(study)
    problems += _explain_problems(study)
    return problems


def _unknown_architectures(names: Any, study: Study, path: tuple[Any, ...]) -> list[Problem]:
    known = list(study.architectures)
    return [(path, f"'{name}' is not an architecture of the study; its architectures: {', '.join(known)}")
            for name in names if name not in known]


def _variant_problems(study: Study) -> list[Problem]:
    problems: list[Problem] = []
    points = sweep_points(study)
    for name, variant in study.variants.items():
        path = ("variants", name)
        problems += _unknown_architectures(variant.architectures or [], study, path + ("architectures",))
        applies = [arch for arch in study.architectures if variant.applies_to(arch)]
        mapped = dict(variant.per_architecture())
        if isinstance(variant.remove, dict):
            mapped[("remove",)] = variant.remove
        for where, mapping in mapped.items():
            problems += _unknown_architectures(mapping, study, path + where)
            missing = [arch for arch in applies if arch not in mapping]
            if missing:
                problems.append((path + where, f"gives a list per architecture but none for {', '.join(missing)}; "
                                 "give one for each architecture the variant applies to (or limit it with "
                                 "'architectures:')"))
        for index, wanted in enumerate(variant.points or []):
            if not any(point_matches(point, wanted) for point in points):
                problems.append((path + ("points", index), f"{wanted} is not a point of the sweep; the sweep's points "
                                 f"are: {'; '.join(map(str, points[:8]))}{' ...' if len(points) > 8 else ''}"))
        if problems:
            continue
        for arch in applies:
            try:
                layers = variant_layers(study, arch, variant)
                variant_targets(Architecture(layers), variant.layer_changes(arch))
            except (ModelError, SpecError) as error:
                message = str(error)
                problems.append((path, message if message.startswith("on architecture") else
                                 f"on architecture '{arch}': {message}"))
        try:
            variant_train(study.train, variant, name)
        except SpecError as error:
            problems.append((path + ("train",), str(error)))
    return problems


def _configurations(study: Study) -> list[str]:
    return [f"{arch}/{name}" for arch in study.architectures for name, variant in study.variants.items()
            if variant.applies_to(arch)]


def _evaluate_problems(study: Study) -> list[Problem]:
    problems: list[Problem] = []
    evaluate = study.evaluate
    experiment = evaluate.kfold_experiment
    if experiment is not None:
        known = _configurations(study)
        for name in experiment.on or []:
            if name not in study.variants and name not in known:
                problems.append((("evaluate", "kfold", "on"), f"'{name}' is neither a variant nor an architecture/variant "
                                 f"of the study; known: {', '.join(list(study.variants) + known)}"))
    if evaluate.validate_on == "test":
        val = study.dataset.split.val.count
        if val not in (0, 0.0):
            problems.append((("evaluate", "validate_on"), "validate_on: test uses the test split as validation data; "
                             "set dataset.split.val: 0 so no training images are held out for nothing"))
        if evaluate.folds:
            problems.append((("evaluate", "validate_on"), "validate_on: test and a k-fold selection exclude each other"))
    if evaluate.retrain_on == "train" and evaluate.folds:
        problems.append((("evaluate", "retrain_on"), "with a k-fold selection there is no one training split to "
                         "retrain on: use retrain_on: train+val (all folds' images)"))
    candidates = [name for name, variant in study.variants.items() if variant.candidate]
    if evaluate.retrain_on != "none" and not candidates:
        problems.append((("evaluate", "retrain_on"), "every variant is 'candidate: false', so no configuration can "
                         "be chosen for the finals"))
    return problems


def _explain_problems(study: Study) -> list[Problem]:
    explain = study.explain
    mappings: dict[tuple[Any, ...], Any] = {}
    if explain.feature_maps is not None and isinstance(explain.feature_maps.layers, dict):
        mappings[("explain", "feature_maps", "layers")] = explain.feature_maps.layers
    if isinstance(explain.filters, dict):
        mappings[("explain", "filters")] = explain.filters
    for key in ("top_patches", "guided_backprop"):
        neurons = getattr(explain, key)
        if neurons is not None and isinstance(neurons.layer, dict):
            mappings[("explain", key, "layer")] = neurons.layer
    problems: list[Problem] = []
    for path, mapping in mappings.items():
        problems += _unknown_architectures(mapping, study, path)
    return problems
