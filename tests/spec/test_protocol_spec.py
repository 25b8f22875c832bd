"""The spec's protocol features (issue 18): listed sweep points, variants scoped and placed per
architecture, removed base layers, a variant's own training settings, finals, the k-fold experiment,
validation on the test split. Each is planned as written, and each misuse is one error naming the
file, the line and the field."""

from __future__ import annotations

import textwrap

import pytest

from cnnlab.errors import SpecError
from cnnlab.models.variants import resolve_layers
from cnnlab.spec.loader import load_study
from cnnlab.spec.plan import expand

BASE = """\
name: t
dataset:
  name: digits
  split: {train: 300, val: 100, test: 100}
architectures:
  one:
    - conv: {filters: 4, kernel: 3}
    - maxpool: 2
    - flatten
    - dense: 10
    - batchnorm
  two:
    - conv: {filters: 4, kernel: 3, padding: same}
    - conv: {filters: 4, kernel: 3}
    - flatten
    - dense: 16
    - dense: 10
"""


def _load(tmp_path, text: str):
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(text))
    return load_study(path)[0]


def _error(tmp_path, text: str) -> str:
    with pytest.raises(SpecError) as caught:
        _load(tmp_path, text)
    return str(caught.value)


def test_listed_sweep_points_are_run_as_listed_not_crossed(tmp_path):
    study = _load(tmp_path, BASE + "sweep:\n  - {conv.kernel: 3, conv.stride: 1}\n  - {conv.kernel: 5, conv.stride: 2}\n")
    plan = expand(study)
    assert [(c.architecture, c.sweep) for c in plan] == [
        ("one", {"conv.kernel": 3, "conv.stride": 1}), ("one", {"conv.kernel": 5, "conv.stride": 2}),
        ("two", {"conv.kernel": 3, "conv.stride": 1}), ("two", {"conv.kernel": 5, "conv.stride": 2})]
    assert [tuple(c.layer_list()[0].kernel) for c in plan] == [(3, 3), (5, 5), (3, 3), (5, 5)]


def test_a_listed_point_with_an_unknown_key_names_its_line(tmp_path):
    message = _error(tmp_path, BASE + "sweep:\n  - {conv.kernel: 3}\n  - {conv.kernal: 5}\n")
    assert "study.yaml:20: sweep[1].conv.kernal" in message and "expected a valid" not in message and "did you mean 'kernel'" in message


def test_a_point_listed_twice_is_refused(tmp_path):
    with pytest.raises(SpecError, match="same run twice"):
        expand(_load(tmp_path, BASE + "sweep:\n  - {conv.kernel: 3}\n  - {conv.kernel: [3, 3]}\n"))


def test_placement_per_architecture_puts_dropout_where_each_architecture_says(tmp_path):
    study = _load(tmp_path, BASE + "variants:\n  d:\n    dropout: 0.2\n    after: {one: [maxpool1], two: [conv2, dense1]}\n")
    placed = {}
    for config in expand(study):
        resolved = resolve_layers(config.layer_list(), config.variant_spec)
        placed[config.architecture] = [resolved[i - 1].name for i, r in enumerate(resolved) if r.kind == "dropout"]
    assert placed == {"one": ["maxpool1"], "two": ["conv2", "dense1"]}


def test_a_placement_mapping_missing_an_architecture_or_naming_an_unknown_one_is_refused(tmp_path):
    message = _error(tmp_path, BASE + "variants:\n  d:\n    dropout: 0.2\n    after: {one: [maxpool1]}\n")
    assert "variants.d.after" in message and "none for two" in message
    message = _error(tmp_path, BASE + "variants:\n  d:\n    l2: {factor: 0.1, on: {one: [conv1], two: [conv1], three: [conv1]}}\n")
    assert "variants.d.l2.on" in message and "'three' is not an architecture" in message


def test_a_variant_limited_to_architectures_and_points_runs_there_only(tmp_path):
    study = _load(tmp_path, BASE + textwrap.dedent("""\
        variants:
          none: {}
          onlyone: {dropout: 0.2, architectures: [one]}
          atfive: {l2: 0.001, points: [{conv.kernel: 5}]}
        sweep: {conv.kernel: [3, 5], conv.filters: [4, 8]}
        """))
    plan = expand(study)
    assert {c.architecture for c in plan if c.variant == "onlyone"} == {"one"}
    assert len([c for c in plan if c.variant == "onlyone"]) == 4  # one architecture x 4 points
    assert sorted((c.architecture, c.sweep["conv.filters"]) for c in plan if c.variant == "atfive") == [
        ("one", 4), ("one", 8), ("two", 4), ("two", 8)]
    assert all(c.sweep["conv.kernel"] == 5 for c in plan if c.variant == "atfive")
    assert len(plan) == 8 + 4 + 4


def test_scopes_that_match_nothing_are_refused(tmp_path):
    message = _error(tmp_path, BASE + "variants:\n  v: {architectures: [three]}\n")
    assert "variants.v.architectures" in message and "'three' is not an architecture" in message
    message = _error(tmp_path, BASE + "variants:\n  v: {points: [{conv.kernel: 7}]}\nsweep: {conv.kernel: [3, 5]}\n")
    assert "variants.v.points[0]" in message and "not a point of the sweep" in message


def test_a_variant_removes_a_base_layer_and_may_not_remove_the_classifier(tmp_path):
    study = _load(tmp_path, BASE + "variants:\n  plain: {}\n  nobn: {remove: [batchnorm], architectures: [one]}\n")
    layers = {c.variant: [layer.type for layer in c.layer_list()] for c in expand(study) if c.architecture == "one"}
    assert layers == {"plain": ["conv", "maxpool", "flatten", "dense", "batchnorm"],
                      "nobn": ["conv", "maxpool", "flatten", "dense"]}
    message = _error(tmp_path, BASE + "variants:\n  v: {remove: [classifier]}\n")
    assert "variants.v" in message and "would remove the classifier" in message
    message = _error(tmp_path, BASE + "variants:\n  v: {remove: [conv9]}\n")
    assert "no layer 'conv9'" in message


def test_a_variants_own_training_settings_merge_over_the_studys(tmp_path):
    study = _load(tmp_path, BASE + textwrap.dedent("""\
        train: {optimizer: {name: sgd, lr: 0.01, momentum: 0.9}, epochs: 10}
        variants:
          none: {}
          tuned: {train: {optimizer: {lr: 0.002}, epochs: 20}}
        """))
    trains = {c.variant: c.train for c in expand(study) if c.architecture == "one"}
    assert (trains["tuned"].optimizer.name, trains["tuned"].optimizer.lr, trains["tuned"].optimizer.momentum,
            trains["tuned"].epochs) == ("sgd", 0.002, 0.9, 20)
    assert (trains["none"].optimizer.lr, trains["none"].epochs) == (0.01, 10)
    assert study.variants["tuned"].train.changed() == {"epochs": 20, "optimizer.lr": 0.002}


def test_a_variants_training_settings_are_checked_alone_and_over_the_studys(tmp_path):
    message = _error(tmp_path, BASE + "variants:\n  v: {train: {epoch: 3}}\n")
    assert "variants.v.train.epoch" in message and "did you mean 'epochs'" in message
    # Valid alone, not over the study's: nesterov with the study's momentum 0.
    message = _error(tmp_path, BASE + "train: {optimizer: sgd}\nvariants:\n  v: {train: {optimizer: {nesterov: true}}}\n")
    assert "variants.v.train" in message and "nesterov" in message


def test_finals_need_a_retrain_and_a_candidate(tmp_path):
    message = _error(tmp_path, BASE + "evaluate: {finals: 2}\n")
    assert "evaluate" in message and "set retrain_on" in message
    message = _error(tmp_path, BASE + "variants:\n  v: {candidate: false}\nevaluate: {retrain_on: train}\n")
    assert "evaluate.retrain_on" in message and "candidate: false" in message


def test_final_rules_default_to_one_and_follow_a_list(tmp_path):
    assert _load(tmp_path, BASE + "evaluate: {retrain_on: train+val}\n").evaluate.final_rules() == ["val_accuracy"]
    study = _load(tmp_path, BASE + "evaluate: {retrain_on: train, select: val_loss, finals: 3}\n")
    assert study.evaluate.final_rules() == ["val_loss"] * 3
    study = _load(tmp_path, BASE + "evaluate: {retrain_on: train, finals: [val_accuracy, gap]}\n")
    assert study.evaluate.final_rules() == ["val_accuracy", "gap"]
    assert _load(tmp_path, BASE).evaluate.final_rules() == []
    assert "test_accuracy" in _error(tmp_path, BASE + "evaluate: {retrain_on: train, finals: [test_accuracy]}\n")


def test_the_kfold_experiment_folds_the_named_configurations_beside_the_fixed_split(tmp_path):
    study = _load(tmp_path, BASE + "variants:\n  none: {}\n  d: {dropout: 0.2}\nevaluate:\n  kfold: {folds: 3, on: [one/none]}\n")
    plan = expand(study)
    assert [c.label for c in plan if c.phase == "select"] == ["one/none", "one/d", "two/none", "two/d"]
    assert all(c.fold is None for c in plan if c.phase == "select")
    folds = [c for c in plan if c.phase == "kfold"]
    assert [(c.label, c.fold, c.kfold) for c in folds] == [("one/none (k-fold)", f, 3) for f in range(3)]
    assert len({c.run_id for c in plan}) == len(plan)
    # A variant name folds it in every architecture.
    study = _load(tmp_path, BASE + "evaluate:\n  kfold: {folds: 2, on: [none]}\n")
    assert {c.architecture for c in expand(study) if c.phase == "kfold"} == {"one", "two"}
    message = _error(tmp_path, BASE + "evaluate:\n  kfold: {folds: 3, on: [one/dropout]}\n")
    assert "evaluate.kfold.on" in message and "'one/dropout'" in message
    message = _error(tmp_path, BASE + "evaluate:\n  kfold: {folds: 1}\n")
    assert "1 problem" in message and "evaluate.kfold.folds: expected greater than or equal to 2" in message


def test_validation_on_the_test_split_is_asked_for_explicitly_and_holds_out_nothing(tmp_path):
    text = BASE.replace("split: {train: 300, val: 100, test: 100}", "split: {train: 300, val: 0, test: 100}")
    plan = expand(_load(tmp_path, text + "evaluate: {validate_on: test}\n"))
    assert all(c.validate_on_test for c in plan)
    assert not any(c.validate_on_test for c in expand(_load(tmp_path, text)))
    message = _error(tmp_path, BASE + "evaluate: {validate_on: test}\n")
    assert "evaluate.validate_on" in message and "dataset.split.val: 0" in message


def test_explain_layer_mappings_name_architectures_of_the_study(tmp_path):
    study = _load(tmp_path, BASE + "explain:\n  feature_maps: {layers: {one: [1, 2], two: [conv2]}}\n  filters: [1, -1]\n")
    assert study.explain.feature_maps.layers == {"one": [1, 2], "two": ["conv2"]} and study.explain.filters == [1, -1]
    message = _error(tmp_path, BASE + "explain:\n  top_patches: {layer: {three: conv1}}\n")
    assert "explain.top_patches.layer" in message and "'three' is not an architecture" in message


def test_a_variants_training_settings_survive_a_round_trip_through_the_stored_spec(tmp_path):
    # The store keeps the study's dump and --epochs revalidates one: a variant's unset settings must
    # not come back as changes (the optimizer's default name over the study's sgd, say).
    from cnnlab.spec.study import Study

    study = _load(tmp_path, BASE + "train: {optimizer: sgd}\nvariants:\n  v: {train: {optimizer: {lr: 0.5}}}\n")
    again = Study.model_validate(study.model_dump(mode="json"))
    assert again.variants["v"].train.changed() == {"optimizer.lr": 0.5}
    assert [c.train for c in expand(again)] == [c.train for c in expand(study)]
    assert {c.train.optimizer.name for c in expand(study, epochs=1)} == {"sgd"}


def test_the_size_counted_before_expanding_is_the_plans_with_scopes_and_the_kfold_experiment(tmp_path):
    from cnnlab.spec.plan import plan_size

    study = _load(tmp_path, BASE + textwrap.dedent("""\
        repeats: 2
        variants:
          none: {}
          onlyone: {dropout: 0.2, architectures: [one]}
          atfive: {l2: 0.001, points: [{conv.kernel: 5}]}
        sweep: [{conv.kernel: 3}, {conv.kernel: 5}, {conv.kernel: 7}]
        evaluate: {kfold: {folds: 3, on: [atfive]}}
        """))
    # none: 2 archs x 3 points; onlyone: 1 x 3; atfive: 2 x 1; all x 2 repeats; + atfive's folds 2 x 3 x 2.
    assert plan_size(study) == len(expand(study)) == (6 + 3 + 2) * 2 + 2 * 3 * 2


def test_a_study_of_more_than_the_most_runs_is_refused_before_expanding_and_one_of_exactly_that_many_is_not(tmp_path):
    from cnnlab.spec.plan import MAX_RUNS, check_plan_size

    grid = "sweep: {conv.filters: [%s], conv.kernel: [%s]}\n" % (", ".join(map(str, range(1, 101))),
                                                               ", ".join(map(str, range(1, 101))))
    one = BASE[:BASE.index("  two:")]
    check_plan_size(_load(tmp_path, one + grid))  # 100 x 100 = MAX_RUNS exactly: accepted
    assert MAX_RUNS == 10_000
    with pytest.raises(SpecError, match="expands to 20,000 runs"):
        check_plan_size(_load(tmp_path, one + grid + "repeats: 2\n"))
    # A grid of more points than that is refused from its size alone (nothing is enumerated).
    huge = grid.replace("}\n", ", conv.dilation: [1, 2]}\n")
    with pytest.raises(SpecError, match="expands to 20,000 runs"):
        check_plan_size(_load(tmp_path, one + huge))
    with pytest.raises(SpecError, match="at most 10,000 runs fit in one study"):
        expand(_load(tmp_path, one + huge))  # refused before the first configuration is built


def test_a_variants_points_match_a_kernel_written_as_a_pair_or_one_number(tmp_path):
    study = _load(tmp_path, BASE + "variants:\n  none: {}\n  v: {points: [{conv.kernel: [5, 5]}]}\n"
                  "sweep: {conv.kernel: [3, 5]}\n")
    assert [c.label for c in expand(study) if c.variant == "v"] == ["one/v conv.kernel=5", "two/v conv.kernel=5"]


def test_command_line_epochs_shorten_a_variants_own_but_not_a_sweep_over_epochs(tmp_path):
    study = _load(tmp_path, BASE + "variants:\n  none: {}\n  long: {train: {epochs: 20}}\n")
    assert {c.train.epochs for c in expand(study)} == {10, 20}
    assert {c.train.epochs for c in expand(study, epochs=1)} == {1}
    swept = _load(tmp_path, BASE + "sweep: {train.epochs: [2, 4]}\n")
    assert sorted({c.train.epochs for c in expand(swept, epochs=1)}) == [2, 4]


def test_the_kfold_experiment_validates_on_its_folds_even_when_the_study_validates_on_test(tmp_path):
    text = BASE.replace("split: {train: 300, val: 100, test: 100}", "split: {train: 300, val: 0, test: 100}")
    plan = expand(_load(tmp_path, text + "evaluate: {validate_on: test, kfold: {folds: 2, on: [none]}}\n"))
    assert all(c.validate_on_test for c in plan if c.phase == "select")
    assert not any(c.validate_on_test for c in plan if c.phase == "kfold") and any(c.phase == "kfold" for c in plan)
