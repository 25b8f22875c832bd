"""explain_run / explain_figures / cnnlab explain end to end on tiny digits runs, figures looked at."""

from __future__ import annotations

import argparse
import copy

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.api import open_store, run_study
from cnnlab.cli.explain import add_arguments, command_explain
from cnnlab.errors import DataError, ModelError, SpecError, StoreError
from cnnlab.explain import (
    best_run, crop, explain_figures, explain_run, feature_maps, iter_figures, load_run, receptive_field,
    top_activations,
)
from cnnlab.figures import MIN_FONT, colormap_rgb, colour_for
from tests.explain.conftest import EXPLAIN_STUDY
from tests.explain.pixels import is_blank, pixels, tile

EVERY = "filters,maps,hist,saliency,guided,patches,examples"
EVERY_NAME = {"filters_conv1", "input", "maps_conv1", "maps_conv2", "histograms", "histograms_variants", "saliency",
              "saliency_conv2", "guided", "guided_conv2", "patches_conv2", "patches_by_class_conv2", "examples"}


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cnnlab explain")
    add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_explain_run_writes_every_figure_it_returns(store, tmp_path):
    best = best_run(store)
    paths = explain_run(store, best["id"], what=EVERY, out_folder=tmp_path / "out")
    assert {p.stem for p in paths} == EVERY_NAME
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no temporaries
    figures = {f.name: f for f in explain_figures(store, best["id"], what=EVERY)}
    for path in paths:
        figure = figures[path.stem]
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == figure.size
        assert figure.title and figure.caption
        assert not is_blank(pixels(figure))
        # Readable at 100%, legends off the data and inside the figure; colour bars where colours are values.
        assert figure.drawn.smallest_font >= MIN_FONT, figure.name
        assert figure.drawn.legends_over_data() == [] and figure.drawn.cut_off() == [], figure.name
        if figure.name.startswith(("filters", "maps_conv", "saliency", "guided")):
            assert figure.drawn.scales, figure.name


def test_without_what_the_defaults_are_filters_maps_histograms_and_examples(store, explain_store):
    best = best_run(store)
    paths = explain_run(store, best["id"])
    assert paths[0].parent == explain_store / "explain" / best["id"]
    assert [p.stem for p in paths] == ["filters_conv1", "input", "maps_conv1", "maps_conv2", "histograms",
                                       "histograms_variants", "examples"]


def test_feature_map_tiles_are_the_activations_pixel_for_pixel(store):
    run = load_run(store, best_run(store)["id"])
    figures = {f.name: f for f in explain_figures(store, run.run_id, what="maps", index="test:4",
                                                  layers=["conv1", "maxpool1", "conv2", "dense1"])}
    x = run.model_input(run.input("test:4").image)
    maps = feature_maps(run.model, x, ["conv1", "maxpool1", "conv2", "dense1"])
    for name in ("conv1", "maxpool1", "conv2"):
        figure = figures[f"maps_{name}"]
        image = pixels(figure)
        activation = maps[name][0].numpy()
        assert len(figure.tiles) == len(activation)
        (scale,) = figure.drawn.scales  # the layer's one scale, in its values
        assert (scale.low, scale.high) == pytest.approx((activation.min(), activation.max()))
        for channel, values in enumerate(activation):
            region = tile(image, figure.tiles[f"channel {channel}"], inset=0)
            factor = region.shape[0] // values.shape[0]
            expected = colormap_rgb(values, activation.min(), activation.max())
            expected = np.repeat(np.repeat(expected, factor, 0), factor, 1)
            assert np.abs(region.astype(int) - np.round(expected * 255).astype(int)).max() <= 1
            assert is_blank(region) == (values.max() == values.min())
    units = figures["maps_dense1"]
    assert not is_blank(tile(pixels(units), units.tiles["units"], inset=2))
    assert "test:4" in figures["input"].title


def test_patch_and_guided_figures_show_each_channels_top_units(store):
    run = load_run(store, best_run(store)["id"])
    figures = {f.name: f for f in iter_figures(run, what="patches,guided", layers=["conv1"], store=store)}
    images = run.split_data("test").images.numpy()
    top = top_activations(run.model, run.split_data("test"), run.normalizer(), "conv1", None, k=9)
    field = receptive_field(run.built.layers, "conv1")
    patches, guided = pixels(figures["patches_conv1"]), pixels(figures["guided_conv1"])
    # The defaults: the 10 strongest channels (all 8 here), the top 9 test images of each.
    assert len(figures["patches_conv1"].tiles) == len(figures["guided_conv1"].tiles) == 8 * 9
    for channel in range(8):
        for rank, (value, image, row, col) in enumerate(top.rank(channel)):
            # The patch tile is the traced crop, grey where the field leaves the image, pixel for pixel.
            region = tile(patches, figures["patches_conv1"].tiles[f"patch channel {channel} rank {rank}"], inset=0)
            expected = crop(images[image], field, row, col).padded(128)[0]
            factor = region.shape[0] // expected.shape[0]
            expected = np.repeat(np.repeat(expected, factor, 0), factor, 1)
            assert np.array_equal(region[..., 0], expected)
            # Guided backprop of a unit is zero exactly where the unit is (a dead ReLU).
            region = tile(guided, figures["guided_conv1"].tiles[f"guided channel {channel} rank {rank}"])
            assert is_blank(region) == (value == 0)


def test_explain_section_of_the_spec_decides_what_and_how(tmp_path):
    study = copy.deepcopy(EXPLAIN_STUDY)
    study.update(variants={"none": {}}, explain={
        "filters": ["conv1", "conv2"],
        "feature_maps": {"image": "val:1", "layers": ["maxpool1"]},
        "top_patches": {"layer": "conv1", "neurons": 3, "k": 4, "split": "val"},
        "examples": {"correct": 2, "wrong": 3},
    })
    assert run_study(study, tmp_path).outcome.ok
    with open_store(tmp_path) as store:
        figures = explain_figures(store, best_run(store)["id"])
    by_name = {f.name: f for f in figures}
    assert list(by_name) == ["filters_conv1", "filters_conv2", "filters_compare", "input", "maps_maxpool1",
                             "patches_conv1", "patches_by_class_conv1", "examples"]
    assert "val:1" in by_name["input"].title
    assert len(by_name["patches_conv1"].tiles) == 3 * 4
    assert "(val split)" in by_name["patches_conv1"].title
    shown = by_name["examples"].drawn.images  # the spec's counts, and no mistake twice
    assert len(shown["correct"]) == 2 and len(shown["wrong"]) == 3 and len(shown.get("confident_wrong", [])) <= 3
    mistakes = shown["wrong"] + shown.get("confident_wrong", [])
    assert len(mistakes) == len(set(mistakes)) and len(by_name["examples"].tiles) == 2 + len(mistakes)
    assert len(by_name["filters_conv2"].tiles) == 2 * 16  # raw and normalized
    assert len(by_name["filters_compare"].tiles) == 2 * 2 * 8  # last 8 of each layer, raw and normalized


def test_an_image_file_is_explained_with_its_preprocessing(store, tmp_path):
    photo = tmp_path / "photo.png"
    gradient = np.linspace(0, 255, 40 * 60, dtype=np.float64).reshape(40, 60)
    Image.fromarray(np.stack([gradient, gradient[::-1], np.full_like(gradient, 90)], -1).astype(np.uint8)).save(photo)
    figures = {f.name: f for f in explain_figures(store, best_run(store)["id"], what="maps,saliency", image=photo)}
    assert figures["input"].title == "Input photo.png"
    assert "centre cropped to 40x40" in figures["input"].caption and "resized 40x40 -> 8x8" in figures["input"].caption
    assert set(figures["input"].tiles) == {"original", "model input", "normalized"}
    assert "photo.png" in figures["maps_conv1"].title and "photo.png" in figures["saliency"].title


def test_cli_command_prints_every_file_it_writes(explain_store, capsys):
    code = command_explain(_parse(explain_store, "--what", "maps,filters", "--layers", "conv1,maxpool1",
                                  "--index", "val:2"))
    assert code == 0
    output = capsys.readouterr()
    assert output.err.startswith("explaining the best run ")  # stdout lists only the files written
    written = output.out.splitlines()
    names = [line.rsplit("/", 1)[1] for line in written]
    assert names == ["input.png", "maps_conv1.png", "maps_maxpool1.png", "filters_conv1.png"]
    for line in written:
        with Image.open(line) as image:
            assert image.format == "PNG"


def test_cli_run_prefix_and_out_folder(explain_store, tmp_path, capsys):
    with open_store(explain_store) as store:
        run_id = store.runs()[1]["id"]
    assert command_explain(_parse(explain_store, "--run", run_id[:6], "--what", "hist", "--out", tmp_path / "x")) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "x" / "histograms.png"),
                                                    str(tmp_path / "x" / "histograms_variants.png")]


def test_clear_errors_for_unknown_runs_layers_figures_and_indices(store, explain_store):
    run_id = best_run(store)["id"]
    with pytest.raises(StoreError, match=f"no run '{run_id[:-1]}x' \\(did you mean '{run_id}'\\?\\)"):
        explain_figures(store, run_id[:-1] + "x")
    with pytest.raises(ModelError, match=r"no layer 'conv3' \(did you mean 'conv1'\?\)|no layer 'conv3' \(did you mean 'conv2'\?\)"):
        explain_figures(store, run_id, what="maps", layers=["conv3"])
    with pytest.raises(SpecError, match="unknown explain figure 'filter' \\(did you mean 'filters'\\?\\)"):
        explain_figures(store, run_id, what="filter")
    with pytest.raises(DataError, match="test:200 is out of range; the test split .* holds 200 images"):
        explain_figures(store, run_id, what="maps", index="test:200")
    with pytest.raises(SystemExit):
        _parse(explain_store, "--run", "x", "--best")


def test_on_error_reports_a_figure_that_cannot_be_made_and_goes_on(store):
    skipped = []
    figures = explain_figures(store, best_run(store)["id"], what="patches,filters", layers=["conv1", "dense1"],
                              on_error=lambda what, error: skipped.append(what))
    assert [f.name for f in figures] == ["patches_conv1", "patches_by_class_conv1", "filters_conv1"]
    assert skipped == []
    figures = explain_figures(store, best_run(store)["id"], what="patches,filters", layers=["dense1"],
                              on_error=lambda what, error: skipped.append((what, str(error))))
    assert figures == []
    assert [what for what, _ in skipped] == ["patches", "filters"]
    assert "spatial output" in skipped[0][1] and "conv layer" in skipped[1][1]


class _Runs:
    """Just enough of a store for best_run: finished runs (variant, phase, repeat, val accuracy), no epochs."""

    folder = "nowhere"

    def __init__(self, runs):
        import dataclasses

        from cnnlab.records import RunRecord, StudyRecord

        blank = {field.name: None for field in dataclasses.fields(RunRecord)}
        self.records = [RunRecord(**{**blank, "id": f"{variant}-{phase}-{repeat}", "study": "fake", "position": i,
                                     "architecture": "small", "variant": variant, "sweep": {}, "phase": phase,
                                     "repeat": repeat, "status": "done", "epochs_done": 1, "created_at": "",
                                     "val_accuracy": accuracy})
                        for i, (variant, phase, repeat, accuracy) in enumerate(runs)]
        study = {field.name: None for field in dataclasses.fields(StudyRecord)}
        self.record = StudyRecord(**{**study, "name": "fake", "spec_text": "", "spec": {}, "created_at": "",
                                     "updated_at": "", "wall_seconds": 0.0})

    def study(self, name=None):
        return self.record

    def runs(self, study=None, status=None, **which):
        return [r for r in self.records if status is None or r.status == status]

    def run(self, run_id):
        return next(r for r in self.records if r.id == run_id)

    def epochs(self, run_id):
        return []


def test_best_run_is_the_selected_configurations_median_repeat_not_the_luckiest_seed():
    # The definition changed with issue 15 (one meaning of "best", the report's): not the single run
    # with the highest validation accuracy, but the median repeat of the configuration selected on
    # validation, or its final retrain when there is one.
    runs = [("none", "select", 0, 0.80), ("none", "select", 1, 0.95), ("none", "select", 2, 0.85),
            ("dropout", "select", 0, 0.70), ("dropout", "select", 1, 0.99), ("dropout", "select", 2, 0.60)]
    assert best_run(_Runs(runs))["id"] == "none-select-2"  # not dropout repeat 1 (0.99), not none repeat 1 (0.95)
    assert best_run(_Runs(runs + [("none", "final", 0, None)]))["id"] == "none-final-0"
    with pytest.raises(StoreError, match="no finished run"):
        best_run(_Runs([]))
    with pytest.raises(StoreError, match="no finished run with validation metrics"):
        best_run(_Runs([("none", "select", 0, None)]))


def test_explain_best_and_the_report_explain_the_same_run(store):
    from cnnlab.report.data import gather

    assert best_run(store)["id"] == gather(store).evaluation.run_id


def test_the_loaded_run_is_the_trained_model_in_eval_mode(store):
    record = best_run(store)
    run = load_run(store, record["id"])
    assert not run.model.training
    splits = run.splits()
    x = run.model_input(splits.val.images)
    accuracy = (run.probabilities(x).argmax(1) == splits.val.labels).float().mean().item()
    assert accuracy == pytest.approx(record["val_accuracy"], abs=1e-6)
    assert run.class_names == [str(i) for i in range(10)]
    assert isinstance(run.normalizer()(torch.zeros((1, 1, 8, 8), dtype=torch.uint8)), torch.Tensor)


def test_filters_histograms_and_examples_need_only_the_store(store):
    run = load_run(store, best_run(store)["id"])
    figures = list(iter_figures(run, what="filters,hist,examples", store=store))
    assert [f.name for f in figures] == ["filters_conv1", "histograms", "histograms_variants", "examples"]
    assert run.cache is None  # the dataset was never loaded
    order = list(EXPLAIN_STUDY["variants"])  # each variant in its colour from the spec's order, as in the report
    assert figures[2].drawn.colours() == {v: {colour_for(v, order).lower()} for v in order}
