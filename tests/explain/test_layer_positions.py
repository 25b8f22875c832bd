"""Explain layers picked by position or per architecture fit whichever architecture wins (issue 18).

Two architectures shaped like study A's A1 (two poolings) and A3 (one pooling, no maxpool2), both
with batch norm inserted after the last conv/pool block, as study A's winner A3+BN.
"""

from __future__ import annotations

import argparse
import copy

import pytest

from cnnlab.api import open_store, run_study
from cnnlab.cli.explain import add_arguments, command_explain
from cnnlab.errors import ModelError
from cnnlab.explain import LayerPickError, best_run, iter_figures, load_run, resolve_layer
from cnnlab.report.data import gather
from cnnlab.report.explanations import what_it_learned
from cnnlab.spec.evaluate import Explain
from tests.explain.conftest import EXPLAIN_STUDY

CONV = {"conv": {"filters": 8, "kernel": 3, "padding": "same"}}
TWO_ARCHITECTURES = copy.deepcopy(EXPLAIN_STUDY)
TWO_ARCHITECTURES.update(
    name="two-architectures",
    architectures={
        "pools2": [CONV, {"maxpool": 2}, CONV, {"maxpool": 2}, "flatten", {"dense": 10}],
        "pools1": [CONV, {"maxpool": 2}, {"conv": {"filters": 16, "kernel": 3}}, "flatten", {"dense": 32},
                   {"dense": 10}],
    },
    variants={"batchnorm": {"batchnorm": True, "after": ["last_feature", "pre_classifier"]}},
    # Study A's "first four layers" by position, and one position no model has.
    explain={"feature_maps": {"image": "val:1", "layers": [1, 2, 3, 4, 40]}},
)
FIRST_FOUR = {"pools1": ["conv1", "maxpool1", "conv2", "batchnorm1"],
              "pools2": ["conv1", "maxpool1", "conv2", "maxpool2"]}


@pytest.fixture(scope="module")
def two_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two-architectures")
    assert run_study(copy.deepcopy(TWO_ARCHITECTURES), folder).outcome.ok
    return folder


@pytest.fixture
def runs(two_store):
    """The finished run of each architecture, loaded (model, config, the study's explain settings)."""
    with open_store(two_store) as store:
        yield store, {record.architecture: load_run(store, record.id) for record in store.runs(status="done")}


def _names(figures) -> list[str]:
    return [figure.name for figure in figures]


def test_positions_are_the_layers_each_architecture_built_batch_norm_included(runs):
    store, by_architecture = runs
    for architecture, run in by_architecture.items():
        figures = list(iter_figures(run, what="maps", store=store))
        assert _names(figures) == ["input"] + [f"maps_{name}" for name in FIRST_FOUR[architecture]]
        # Position 40 is a note on the input figure: what was asked, and the layers the model has.
        note = figures[0].caption
        assert "explain.feature_maps.layers asks for layer position 40" in note
        assert ", ".join(f"{i} {name}" for i, name in enumerate(FIRST_FOUR[architecture], 1)) in note
        assert "position 40" in figures[0].drawn.text().replace("\n", " ")
    assert resolve_layer(by_architecture["pools1"], -1) == "dense2"  # -1: the last layer


def test_the_winner_lacks_a_named_layer_but_positions_still_give_its_feature_maps(runs, two_store):
    store, by_architecture = runs
    winner = load_run(store, best_run(store)["id"])
    other = next(run for architecture, run in by_architecture.items() if architecture != winner.config.architecture)
    lacking = next(name for name in other.built.names if name not in winner.built.names)
    # Names work exactly as before: one the winner lacks drops its whole feature-map figure.
    winner.explain = Explain.model_validate({"feature_maps": {"image": "val:1", "layers": ["conv1", lacking]}})
    skipped = []
    assert list(iter_figures(winner, what="maps", on_error=lambda what, error: skipped.append(str(error)))) == []
    assert f"no layer '{lacking}'" in skipped[0]
    # Positions give the winner's own first four layers.
    winner.explain = Explain.model_validate({"feature_maps": {"image": "val:1", "layers": [1, 2, 3, 4]}})
    figures = list(iter_figures(winner, what="maps"))
    assert _names(figures) == ["input"] + [f"maps_{name}" for name in FIRST_FOUR[winner.config.architecture]]
    assert "Not shown" not in figures[0].caption
    # The report (the study's own spec: [1, 2, 3, 4, 40]) shows the four maps, and the note.
    with open_store(two_store) as opened:
        section = what_it_learned(gather(opened))
    shown = {block.name: block for block in section.blocks if getattr(block, "kind", "") == "figure"}
    assert {f"explain-maps-{name}" for name in FIRST_FOUR[winner.config.architecture]} <= set(shown)
    assert "layer position 40" in shown["explain-input"].caption


def test_a_mapping_picks_the_runs_architecture_and_says_when_it_has_none(runs):
    store, by_architecture = runs
    spec = {"filters": {"pools1": [1, 3]}, "top_patches": {"layer": {"pools1": "conv2"}, "neurons": 2, "k": 3}}
    pools1, pools2 = by_architecture["pools1"], by_architecture["pools2"]
    pools1.explain = pools2.explain = Explain.model_validate(spec)
    assert _names(iter_figures(pools1, what="filters,patches")) == [
        "filters_conv1", "filters_conv2", "filters_compare", "patches_conv2", "patches_by_class_conv2"]
    skipped = []
    assert list(iter_figures(pools2, what="filters,patches", on_error=lambda what, e: skipped.append((what, e)))) == []
    assert [what for what, _ in skipped] == ["filters", "patches"]
    for (_, error), setting in zip(skipped, ("explain.filters", "explain.top_patches.layer")):
        assert isinstance(error, LayerPickError)
        assert f"{setting} names layers for pools1 but not for pools2" in str(error)
        assert "1 conv1, 2 maxpool1, 3 conv2, 4 maxpool2, 5 batchnorm1" in str(error)
    with pytest.raises(ModelError, match="names layers for pools1 but not for pools2"):
        list(iter_figures(pools2, what="filters"))  # without on_error: a clear error, not a crash


def test_filters_by_position_keep_the_conv_layers_and_say_why_the_others_are_left_out(runs):
    run = runs[1]["pools1"]
    run.explain = Explain.model_validate({"filters": [1, 2, -1]})
    figures = list(iter_figures(run, what="filters"))
    assert _names(figures) == ["filters_conv1"]
    caption = figures[0].caption
    assert "position 2, which is maxpool1 in the pools1/batchnorm model, a maxpool layer" in caption
    assert "filters exist for conv layers only: 1 conv1, 3 conv2" in caption
    assert "position -1, which is dense2" in caption
    run.explain = Explain.model_validate({"filters": [2]})
    with pytest.raises(LayerPickError, match="filters exist for conv layers only"):
        list(iter_figures(run, what="filters"))


def test_neuron_layers_by_position_and_mixed_lists(runs):
    run = runs[1]["pools1"]
    run.explain = Explain.model_validate({"top_patches": {"layer": 3, "neurons": 2, "k": 3},
                                          "feature_maps": {"image": "val:1", "layers": [1, "conv2", 3]}})
    assert _names(iter_figures(run, what="patches,maps")) == [
        "patches_conv2", "patches_by_class_conv2", "input", "maps_conv1", "maps_conv2"]  # conv2 once
    run.explain = Explain.model_validate({"guided_backprop": {"layer": -1}})
    with pytest.raises(LayerPickError, match="position -1, which is dense2 .* neurons are found in layers with a "
                                             "spatial output"):
        list(iter_figures(run, what="guided"))


def test_cli_layers_take_positions(runs, two_store, capsys):
    store, by_architecture = runs
    run_id = by_architecture["pools1"].run_id
    parser = argparse.ArgumentParser(prog="cnnlab explain")
    add_arguments(parser)
    args = parser.parse_args([str(two_store), "--run", run_id, "--what", "maps", "--layers", "1", "-1"])
    assert command_explain(args) == 0
    written = [line.rsplit("/", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert written == ["input.png", "maps_conv1.png", "maps_dense2.png"]
    args = parser.parse_args([str(two_store), "--run", run_id, "--what", "maps", "--layers", "9"])
    with pytest.raises(ModelError, match=r"layers asks for layer position 9, but the pools1/batchnorm model has 8 "
                                         r"layers \(1 to 8, or -1 for the last\): 1 conv1"):
        command_explain(args)
