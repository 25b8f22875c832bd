"""Expanding a study into runs: identities, seeds, sweeps, round trips."""

from __future__ import annotations

import copy

import pytest

from cnnlab.errors import SpecError
from cnnlab.spec.loader import parse_study
from cnnlab.spec.plan import RunConfig, expand


def test_plan_is_architectures_x_variants_x_sweep_x_repeats(tiny_study):
    tiny_study["repeats"] = 3
    tiny_study["sweep"] = {"conv.kernel": [3, 5]}
    plan = expand(parse_study(tiny_study))
    assert len(plan) == 1 * 2 * 2 * 3
    assert len({c.run_id for c in plan}) == len(plan)


def test_run_ids_are_stable_across_processes_and_round_trip(tiny_study):
    plan = expand(parse_study(tiny_study))
    again = expand(parse_study(copy.deepcopy(tiny_study)))
    assert [c.run_id for c in plan] == [c.run_id for c in again]
    for config in plan:
        restored = RunConfig.model_validate(config.model_dump(mode="json"))
        assert restored == config and restored.run_id == config.run_id


def test_adding_a_variant_changes_no_other_run(tiny_study):
    before = {(c.architecture, c.variant, c.repeat): (c.run_id, c.seed) for c in expand(parse_study(tiny_study))}
    tiny_study["variants"]["l2"] = {"l2": 1e-4}
    after = {(c.architecture, c.variant, c.repeat): (c.run_id, c.seed) for c in expand(parse_study(tiny_study))}
    assert {k: after[k] for k in before} == before


def test_seeds_pair_across_configurations_and_differ_across_repeats(tiny_study):
    tiny_study["repeats"] = 3
    plan = expand(parse_study(tiny_study))
    seeds = {}
    for config in plan:
        seeds.setdefault(config.repeat, set()).add(config.seed)
    assert all(len(s) == 1 for s in seeds.values())  # same seed for every config of a repeat
    assert len({next(iter(s)) for s in seeds.values()}) == 3


def test_epochs_override_changes_identity(tiny_study):
    study = parse_study(tiny_study)
    assert {c.run_id for c in expand(study)}.isdisjoint({c.run_id for c in expand(study, epochs=1)})


def test_layer_sweep_sets_every_matching_layer_but_never_the_classifier(tiny_study):
    tiny_study["architectures"]["small"].insert(3, {"dense": 32})
    tiny_study["sweep"] = {"conv.kernel": [5], "dense.units": [7]}
    config = expand(parse_study(tiny_study))[0]
    layers = config.layer_list()
    assert layers[0].kernel == (5, 5)
    assert [layer.units for layer in layers if layer.type == "dense"] == [7, 10]
    assert config.label == "small/none conv.kernel=5 dense.units=7"


def test_sweep_by_layer_name_and_train_setting(tiny_study):
    tiny_study["architectures"]["small"].insert(1, {"conv": 8})
    tiny_study["sweep"] = {"conv2.filters": [16], "train.optimizer.lr": [0.1]}
    config = expand(parse_study(tiny_study))[0]
    assert [layer.filters for layer in config.layer_list() if layer.type == "conv"] == [4, 16]
    assert config.train.optimizer.lr == 0.1


def test_sweep_value_of_the_wrong_kind_is_a_spec_error(tiny_study):
    tiny_study["sweep"] = {"conv.padding": ["full"]}
    with pytest.raises(SpecError, match=r"sweep 'conv.padding': value 'full'"):
        expand(parse_study(tiny_study))


def test_sweep_naming_a_missing_layer_is_a_spec_error(tiny_study):
    tiny_study["sweep"] = {"conv7.filters": [3]}
    with pytest.raises(SpecError, match="no layer matches 'conv7'"):
        expand(parse_study(tiny_study))


def test_kfold_expands_folds_with_paired_seeds(tiny_study):
    tiny_study["evaluate"] = {"kfold": 4}
    plan = expand(parse_study(tiny_study))
    assert len(plan) == 2 * 4
    by_fold = {}
    for config in plan:
        by_fold.setdefault(config.fold, set()).add(config.seed)
    assert sorted(by_fold) == [0, 1, 2, 3] and all(len(s) == 1 for s in by_fold.values())
