"""Each reference-study example plans exactly the runs its study ran (USER_STUDIES.md): run counts,
sweep points, variant scopes, which configurations get k-fold, the finals and their epochs."""

from __future__ import annotations

from collections import Counter

from cnnlab.models.variants import resolve_layers
from cnnlab.spec.loader import load_study
from cnnlab.spec.plan import expand
from tests.conftest import EXAMPLES


def _plan(name: str):
    study, _ = load_study(EXAMPLES / name)
    return study, expand(study)


def _labels(plan, phase="select"):
    return [config.label for config in plan if config.phase == phase]


def test_quickstart_run_ids_are_those_stores_already_hold():
    # Fields added to the run configuration since (test_curve, validate_on_test, the variant's
    # scope) must not change the id of a run that does not use them: a rerun finds its runs.
    study, plan = _plan("quickstart.yaml")
    assert [config.run_id for config in plan[:2]] == ["f91b23c9d228cc71", "5b79ce11e0e1a816"]


def test_study_a_12_runs_dropout_placed_per_architecture_and_one_final_of_20_epochs():
    study, plan = _plan("study_a_regularization_cifar10.yaml")
    assert len(plan) == 12 and Counter(c.architecture for c in plan) == {"A1": 4, "A2": 4, "A3": 4}
    # The layer each dropout follows in the model each architecture really builds.
    before_dropout = {}
    for config in (c for c in plan if c.variant == "dropout"):
        resolved = resolve_layers(config.layer_list(), config.variant_spec)
        before_dropout[config.architecture] = [resolved[i - 1].name for i, layer in enumerate(resolved) if layer.kind == "dropout"]
    assert before_dropout == {"A1": ["maxpool1", "flatten1"], "A2": ["maxpool1", "dense1"], "A3": ["conv2", "dense1"]}
    assert {c.train.init for c in plan} == {"keras"} and {c.train.optimizer.name for c in plan} == {"sgd"}
    assert study.evaluate.final_rules() == ["val_accuracy"] and study.evaluate.final_epochs == 20
    assert study.evaluate.retrain_on == "train+val" and study.evaluate.test_curves
    assert not any(c.evaluate_test for c in plan)  # only the final touches the test split
    assert study.explain.feature_maps.layers == [1, 2, 3, 4] and study.explain.feature_maps.image == "sample:china"


def test_study_b_8_runs_and_two_finals_best_validation_then_smallest_gap_for_30_epochs():
    study, plan = _plan("study_b_depth_cifar10.yaml")
    assert len(plan) == 8 and sorted({c.architecture for c in plan}) == ["B1", "B2"]
    assert study.evaluate.final_rules() == ["val_accuracy", "gap"]
    assert study.evaluate.final_epochs == 30 and study.evaluate.retrain_on == "train+val"
    assert study.explain.feature_maps.layers == {"B1": ["conv1", "conv2"], "B2": ["conv1", "conv2", "conv3"]}


def test_study_c_mnist_runs_the_seven_chosen_points_and_l2_at_the_best_one_only():
    study, plan = _plan("study_c_mnist_sweep.yaml")
    points = [(c.sweep["conv.kernel"], c.sweep["conv.stride"], c.sweep["conv.padding"]) for c in plan if c.variant == "none"]
    assert points == [(5, 1, "same"), (3, 1, "valid"), (7, 1, "same"), (5, 2, "same"), (7, 3, "same"),
                      (3, 2, "same"), (3, 3, "same")]
    assert [c.sweep for c in plan if c.variant == "l2_all"] == [{"conv.kernel": 5, "conv.stride": 1, "conv.padding": "same"}]
    assert len(plan) == 8
    # Every conv layer takes the point's kernel, stride and padding.
    valid = next(c for c in plan if c.sweep["conv.padding"] == "valid")
    convs = [layer for layer in valid.layer_list() if layer.type == "conv"]
    assert {(tuple(layer.kernel), tuple(layer.stride), layer.padding) for layer in convs} == {((3, 3), (1, 1), "valid")}
    assert all(c.validate_on_test and c.evaluate_test for c in plan)
    assert study.evaluate.keras_loss and study.evaluate.final_rules() == []
    assert {c.train.epochs for c in plan} == {10}


def test_study_c_cifar_grid_of_four_then_two_l2_arms_at_the_best_point_the_tuned_one_with_its_own_settings():
    study, plan = _plan("study_c_cifar10_sweep.yaml")
    assert len(plan) == 6
    assert len([c for c in plan if c.variant == "none"]) == 4
    tuned = [c for c in plan if c.variant == "l2_tuned"]
    assert len(tuned) == 1 and tuned[0].sweep == {"conv.kernel": 3, "conv.stride": 1}
    assert (tuned[0].train.optimizer.name, tuned[0].train.optimizer.lr, tuned[0].train.epochs) == ("adam", 0.002, 20)
    assert tuned[0].variant_spec.l2.on == ["conv1", "conv3", "dense1"]
    others = [c for c in plan if c.variant != "l2_tuned"]
    assert {(c.train.optimizer.lr, c.train.epochs) for c in others} == {(0.001, 15)}


def test_study_d_six_arms_ten_folds_of_the_baseline_only_and_two_finals():
    study, plan = _plan("study_d_fashion_mnist.yaml")
    selected = [c for c in plan if c.phase == "select"]
    assert sorted(c.variant for c in selected) == sorted(["none", "dropout", "l1_dense", "l2_dense", "batchnorm", "lr_halving"])
    assert all(c.fold is None for c in selected)  # the fixed split
    folds = [c for c in plan if c.phase == "kfold"]
    assert len(folds) == 10 and {c.variant for c in folds} == {"none"} and sorted(c.fold for c in folds) == list(range(10))
    assert not any(c.evaluate_test for c in folds)
    decay = next(c for c in selected if c.variant == "lr_halving")
    assert (decay.train.schedule.name, decay.train.schedule.every, decay.train.schedule.factor) == ("step", 5, 0.5)
    assert next(c for c in selected if c.variant == "none").train.schedule.name == "none"
    assert not study.variants["lr_halving"].candidate
    assert study.evaluate.final_rules() == ["val_accuracy", "val_accuracy"] and study.evaluate.retrain_on == "train"
    assert study.explain.confusion == ["baseline"]


def test_study_e_four_ablation_arms_the_no_bn_ones_without_the_output_batch_norm_all_four_finals():
    study, plan = _plan("study_e_deep_cifar10.yaml")
    kinds = {c.variant: [layer.type for layer in c.layer_list()] for c in plan}
    assert kinds["bn"][-1] == "batchnorm" and kinds["bn_dropout"][-1] == "batchnorm"
    assert "batchnorm" not in kinds["no_bn"] and "batchnorm" not in kinds["neither"]
    dropout = {c.variant: c.variant_spec.dropout for c in plan}
    assert dropout["bn"] is None and dropout["neither"] is None
    assert dropout["bn_dropout"].after == ["maxpool1", "maxpool2", "conv3", "maxpool3"] == dropout["no_bn"].after
    assert study.evaluate.final_rules() == ["val_accuracy"] * 4 and study.evaluate.final_epochs == 50
    assert (study.train.schedule.name, study.train.schedule.patience, study.train.schedule.factor) == ("plateau", 5, 0.1)
