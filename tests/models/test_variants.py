"""Variants resolve to the layer list a Keras user would have written by hand."""

from __future__ import annotations

import pytest

from cnnlab.errors import ModelError
from cnnlab.models import ResolvedLayer, resolve_layers, resolved_from_dicts, resolved_to_dicts

from . import architectures as arch
from .architectures import layers, variant


def names(resolved):
    return [item.name for item in resolved]


def test_base_names_count_per_kind_from_one():
    resolved = resolve_layers(layers(arch.E))
    assert names(resolved) == ["conv1", "maxpool1", "conv2", "maxpool2", "conv3", "conv4", "maxpool3",
                               "flatten1", "dense1", "dense2", "dense3", "batchnorm1"]
    assert all(item.base_name == item.name for item in resolved)


def test_dense_activation_defaults_relu_hidden_linear_classifier():
    resolved = resolve_layers(layers(arch.A3))
    dense = {item.name: item.layer.activation for item in resolved if item.kind == "dense"}
    assert dense == {"dense1": "relu", "dense2": "linear"}
    explicit = resolve_layers(layers([{"conv": 8}, "flatten", {"dense": {"units": 5, "activation": "tanh"}},
                                      {"dense": {"units": 3, "activation": "sigmoid"}}]))
    assert [item.layer.activation for item in explicit if item.kind == "dense"] == ["tanh", "sigmoid"]


def test_study_a_batchnorm_goes_after_last_feature_and_pre_classifier():
    assert names(resolve_layers(layers(arch.A1), variant(arch.A_BATCHNORM))) == [
        "conv1", "maxpool1", "conv2", "maxpool2", "batchnorm1", "flatten1", "batchnorm2", "dense1"]
    assert names(resolve_layers(layers(arch.A3), variant(arch.A_BATCHNORM))) == [
        "conv1", "maxpool1", "conv2", "batchnorm1", "flatten1", "dense1", "batchnorm2", "dense2"]


def test_dropout_default_after_each_pool_and_hidden_dense():
    resolved = resolve_layers(layers(arch.B2), variant({"dropout": 0.1}))
    assert names(resolved) == [
        "conv1", "maxpool1", "dropout1", "conv2", "maxpool2", "dropout2", "conv3", "maxpool3", "dropout3",
        "flatten1", "dense1", "dropout4", "dense2", "dropout5", "dense3"]
    assert {item.layer.rate for item in resolved if item.kind == "dropout"} == {0.1}
    assert [item.base_name for item in resolved if item.kind == "dropout"] == [None] * 5


def test_batchnorm_default_after_each_conv_and_hidden_dense():
    resolved = resolve_layers(layers(arch.A3), variant({"batchnorm": True}))
    assert names(resolved) == ["conv1", "batchnorm1", "maxpool1", "conv2", "batchnorm2", "flatten1",
                               "dense1", "batchnorm3", "dense2"]


def test_before_activation_makes_conv_linear_then_batchnorm_then_activation():
    resolved = resolve_layers(layers(arch.A2), variant({"batchnorm": {"position": "before_activation",
                                                                      "after": ["conv", "dense"]}}))
    assert [(item.name, getattr(item.layer, "activation", None)) for item in resolved] == [
        ("conv1", "linear"), ("batchnorm1", None), ("activation1", "relu"), ("maxpool1", None),
        ("flatten1", None), ("dense1", "linear"), ("batchnorm2", None), ("activation2", "relu"),
        ("dense2", "linear")]


def test_before_activation_keeps_leaky_relu_and_skips_linear_layers():
    base = layers([{"conv": {"filters": 4, "activation": "leaky_relu"}}, "flatten", {"dense": 3}])
    resolved = resolve_layers(base, variant({"batchnorm": {"position": "before_activation",
                                                           "after": ["conv1", "pre_classifier", "classifier"]}}))
    assert [(item.name, getattr(item.layer, "activation", None)) for item in resolved] == [
        ("conv1", "linear"), ("batchnorm1", None), ("activation1", "leaky_relu"), ("flatten1", None),
        ("batchnorm2", None), ("dense1", "linear"), ("batchnorm3", None)]


def test_batchnorm_comes_before_dropout_after_the_same_layer():
    resolved = resolve_layers(layers(arch.A2), variant({"batchnorm": True, "dropout": 0.2,
                                                        "after": ["maxpool1", "dense1"]}))
    assert names(resolved) == ["conv1", "maxpool1", "batchnorm1", "dropout1", "flatten1", "dense1",
                               "batchnorm2", "dropout2", "dense2"]
    split = resolve_layers(layers(arch.A2), variant({"batchnorm": {"position": "before_activation"},
                                                     "dropout": 0.2, "after": ["conv1"]}))
    assert names(split)[:4] == ["conv1", "batchnorm1", "activation1", "dropout1"]


def test_overlapping_selectors_insert_once():
    resolved = resolve_layers(layers(arch.A1), variant(arch.A_DROPOUT))  # pool and last_feature meet
    assert names(resolved) == ["conv1", "maxpool1", "dropout1", "conv2", "maxpool2", "dropout2",
                               "flatten1", "dense1"]


def test_explicit_layers_in_the_base_are_not_doubled():
    base = layers([{"conv": 8}, "batchnorm", {"dropout": 0.5}, "flatten", {"dense": 10}])
    resolved = resolve_layers(base, variant({"batchnorm": True, "dropout": 0.1, "after": ["conv1"]}))
    assert names(resolved) == ["conv1", "batchnorm1", "dropout1", "flatten1", "dense1"]
    assert resolved[2].layer.rate == 0.5
    # An explicit dropout right after the anchor still lets batchnorm go in first.
    base = layers([{"conv": 8}, {"dropout": 0.5}, "flatten", {"dense": 10}])
    assert names(resolve_layers(base, variant({"batchnorm": {"after": ["conv1"]}}))) == [
        "conv1", "batchnorm1", "dropout1", "flatten1", "dense1"]


def test_last_feature_skips_trailing_dropout():
    base = layers([{"conv": 8}, {"maxpool": 2}, {"dropout": 0.5}, "flatten", {"dense": 10}])
    assert names(resolve_layers(base, variant({"batchnorm": {"after": ["last_feature"]}}))) == [
        "conv1", "maxpool1", "batchnorm1", "dropout1", "flatten1", "dense1"]


def test_penalties_default_to_every_conv_and_dense():
    resolved = resolve_layers(layers(arch.A2), variant({"l2": 1e-5}))
    assert {item.name: item.l2 for item in resolved if item.l2} == {"conv1": 1e-5, "dense1": 1e-5, "dense2": 1e-5}
    assert all(item.l1 == 0.0 for item in resolved)


def test_penalty_on_dense_includes_the_classifier_and_variant_on_is_inherited():
    resolved = resolve_layers(layers(arch.D), variant({"l1": 0.001, "l2": {"factor": 0.01, "on": ["conv3"]},
                                                       "on": ["dense"]}))
    assert {item.name: item.l1 for item in resolved if item.l1} == {"dense1": 0.001, "dense2": 0.001}
    assert {item.name: item.l2 for item in resolved if item.l2} == {"conv3": 0.01}
    classifier_only = resolve_layers(layers(arch.D), variant({"l2": {"factor": 0.1, "on": ["classifier"]}}))
    assert [item.name for item in classifier_only if item.l2] == ["dense2"]


def test_penalty_stays_on_the_conv_when_its_activation_is_split_off():
    resolved = resolve_layers(layers(arch.A2), variant({"l2": {"factor": 0.5, "on": ["conv1"]},
                                                        "batchnorm": {"position": "before_activation",
                                                                      "after": ["conv1"]}}))
    assert [(item.name, item.l2) for item in resolved[:3]] == [("conv1", 0.5), ("batchnorm1", 0.0),
                                                                ("activation1", 0.0)]


@pytest.mark.parametrize("data, words", [
    ({"dropout": {"rate": 0.1, "after": ["conv3"]}}, ["conv3", "conv1, maxpool1, conv2", "did you mean 'conv"]),
    ({"batchnorm": {"after": ["maxpol"]}}, ["maxpol", "not a layer kind", "did you mean 'maxpool"]),
    ({"l2": {"factor": 0.1, "on": ["dens"]}}, ["dens", "did you mean 'dense", "flatten1, dense1"]),
    ({"l2": {"factor": 0.1, "on": ["maxpool1"]}}, ["maxpool1", "no kernel"]),
    ({"dropout": {"rate": 0.1, "after": ["all"]}}, ["'all'", "penalties only"]),
])
def test_unknown_selector_names_it_the_layers_and_a_suggestion(data, words):
    with pytest.raises(ModelError) as error:
        resolve_layers(layers(arch.A3), variant(data))
    for word in words:
        assert word in str(error.value)


def test_a_kind_missing_from_one_architecture_is_fine_but_a_list_matching_nothing_is_not():
    # Study A's dropout variant names the hidden dense, which A1 lacks.
    resolve_layers(layers(arch.A1), variant(arch.A_DROPOUT))
    with pytest.raises(ModelError, match="selects no layer"):
        resolve_layers(layers(arch.A1), variant({"dropout": {"rate": 0.1, "after": ["dense"]}}))


def test_positions_that_do_not_exist_are_errors():
    mlp = layers(["flatten", {"dense": 10}])
    with pytest.raises(ModelError, match="last_feature"):
        resolve_layers(mlp, variant({"batchnorm": {"after": ["last_feature"]}}))


def test_options_without_anything_to_apply_to_are_errors():
    with pytest.raises(ModelError, match="no l1 or l2"):
        resolve_layers(layers(arch.A2), variant({"on": ["conv"]}))
    with pytest.raises(ModelError, match="no dropout or batchnorm"):
        resolve_layers(layers(arch.A2), variant({"after": ["conv"]}))


def test_an_architecture_without_dense_is_an_error():
    with pytest.raises(ModelError, match="classifier"):
        resolve_layers(layers([{"conv": 8}, "globalavgpool"]))


def test_resolved_layers_round_trip_through_plain_data():
    resolved = resolve_layers(layers(arch.A3), variant({"l1": 0.01, "batchnorm": {"position": "before_activation"},
                                                        "dropout": 0.3}))
    data = resolved_to_dicts(resolved)
    assert resolved_from_dicts(data) == resolved
    assert isinstance(resolved[0], ResolvedLayer)


def test_resolving_does_not_change_the_base_list():
    base = layers(arch.A2)
    before = [layer.model_dump() for layer in base]
    resolve_layers(base, variant({"batchnorm": {"position": "before_activation"}, "dropout": 0.1}))
    assert [layer.model_dump() for layer in base] == before
