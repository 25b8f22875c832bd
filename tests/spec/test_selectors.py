"""The one selector vocabulary: its three purposes, and refusal when the spec loads."""

from __future__ import annotations

import copy

import pytest
import yaml

from cnnlab.errors import ModelError, SpecError
from cnnlab.spec.layers import Conv, Dense, Flatten, MaxPool
from cnnlab.spec.loader import load_study, parse_study
from cnnlab.spec.selectors import Architecture, select, sweep_targets
from tests.conftest import TINY_STUDY

LAYERS = [Conv(filters=4), MaxPool(), Flatten(), Dense(units=16), Dense(units=10)]


def test_dense_means_every_kernel_for_a_penalty_but_only_hidden_layers_for_a_placement_or_sweep():
    arch = Architecture(LAYERS)
    assert select(arch, ["dense"], "l2 on", "penalty") == [3, 4]
    assert select(arch, ["dense"], "dropout after", "placement") == [3]
    assert sweep_targets(arch, "dense.units") == [3]
    assert select(arch, ["classifier"], "dropout after", "placement") == [4]
    assert sweep_targets(arch, "dense2.units") == [4]  # named, the classifier can be swept


def test_positions_and_groups_resolve_the_same_way_for_every_purpose():
    arch = Architecture(LAYERS)
    assert select(arch, ["last_feature"], "batchnorm after", "placement") == [1]
    assert select(arch, ["pre_classifier"], "batchnorm after", "placement") == [3]
    assert select(arch, ["pool"], "dropout after", "placement") == [1] == sweep_targets(arch, "pool.size")
    assert select(arch, ["all"], "l1 on", "penalty") == [0, 3, 4]


def test_words_a_purpose_does_not_take_are_refused_with_the_vocabulary():
    arch = Architecture(LAYERS)
    with pytest.raises(ModelError, match="'all' selects layers for penalties only"):
        select(arch, ["all"], "dropout after", "placement")
    with pytest.raises(ModelError, match="no layer matches 'last_feature'"):
        sweep_targets(arch, "last_feature.size")
    with pytest.raises(ModelError, match=r"no layer 'conv3' \(did you mean 'conv1'\?\)"):
        select(arch, ["conv3"], "dropout after", "placement")


def _study(**changes) -> dict:
    study = copy.deepcopy(TINY_STUDY)
    study["architectures"]["plain"] = ["flatten", {"dense": 10}]
    study.update(changes)
    return study


def test_a_variant_that_selects_no_layer_of_an_architecture_is_refused_when_the_spec_loads(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study(variants={"none": {}, "drop": {"dropout": 0.5, "after": ["pool"]}}),
                                   sort_keys=False))
    with pytest.raises(SpecError) as error:
        load_study(path)
    lines = path.read_text().splitlines()
    line = next(number for number, text in enumerate(lines, start=1) if text.strip().startswith("drop:"))
    message = str(error.value)
    assert f"study.yaml:{line}: variants.drop: on architecture 'plain': dropout after ['pool'] selects no layer" in message
    assert "on architecture 'small'" not in message  # small has a pool: only the real problem is named


def test_a_sweep_key_naming_a_layer_one_architecture_lacks_is_refused_when_the_spec_loads():
    with pytest.raises(SpecError, match=r"sweep.conv.kernel: on architecture 'plain': .*no layer matches 'conv'"):
        parse_study(_study(sweep={"conv.kernel": [3, 5]}))


def test_a_study_whose_selectors_all_apply_loads():
    study = parse_study(_study(variants={"none": {}, "l2": {"l2": 1e-4, "on": ["dense"]}}))
    assert list(study.variants) == ["none", "l2"]


def test_cnnlab_spec_and_run_refuse_such_a_variant_with_exit_2_before_training(tmp_path, capsys):
    from cnnlab.cli import main

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study(variants={"bn": {"batchnorm": True, "after": ["conv"]}})))
    assert main(["spec", str(path)]) == 2
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("variants.bn: on architecture 'plain': batchnorm after ['conv'] selects no layer") == 2
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_command_line_overrides_are_validated_as_the_spec_is(tmp_path, capsys):
    from cnnlab.cli import main

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(TINY_STUDY)))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--epochs", "1000000000", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the command line (--epochs 1000000000)" in err
    assert "train.epochs: expected less than or equal to 100000; found 1000000000" in err
    assert not (tmp_path / "out").exists()
