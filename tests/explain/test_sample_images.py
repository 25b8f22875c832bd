"""A photo from outside the dataset with no file to find: scikit-learn's sample:china and sample:flower
(issue 18; study A's horse, shown before and after resizing)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_image as sklearn_sample

from cnnlab.cli.explain import add_arguments, command_explain
from cnnlab.errors import DataError
from cnnlab.explain import best_run, explain_figures, iter_figures, load_image_file, load_run, load_sample_image
from cnnlab.spec.evaluate import Explain
from tests.explain.pixels import pixels, tile


def test_a_sample_photo_is_shown_before_and_after_resizing_to_the_models_input(store):
    figures = {f.name: f for f in explain_figures(store, best_run(store)["id"], what="maps", image="sample:china")}
    shown = figures["input"]
    assert shown.title == "Input sample:china"
    assert set(shown.tiles) == {"original", "model input", "normalized"}  # before and after resizing
    assert "scikit-learn's sample photo china" in shown.caption
    assert "converted to grayscale (luma); centre cropped to 427x427; resized 427x427 -> 8x8" in shown.caption
    assert "640x427 as read" in shown.drawn.text() and "8x8 grayscale, uint8" in shown.drawn.text()
    # The original tile is the photo itself (the digits model's 8x8 input would be a grey blur).
    original = tile(pixels(shown), shown.tiles["original"], inset=0)
    assert original.shape[1] > original.shape[0] > 100 and original.std() > 20
    assert "sample:china" in figures["maps_conv1"].title


def test_a_sample_photo_goes_through_the_same_steps_as_the_same_photo_in_a_file(tmp_path):
    photo = tmp_path / "flower.png"
    Image.fromarray(sklearn_sample("flower.jpg")).save(photo)  # lossless: the same pixels
    for shape in ((1, 8, 8), (3, 12, 20)):
        sample, file = load_sample_image("sample:flower", shape), load_image_file(photo, shape)
        assert sample.image.shape == shape and np.array_equal(sample.image, file.image)
        assert sample.steps == file.steps and sample.original_size == file.original_size == (640, 427)
        assert sample.source == "sample:flower" and sample.name == "sample:flower"


def test_the_spec_and_the_command_line_take_a_sample_photo(store, explain_store, capsys):
    run = load_run(store, best_run(store)["id"])
    run.explain = Explain.model_validate({"feature_maps": {"image": "sample:flower", "layers": [1]}})
    figures = list(iter_figures(run))
    assert [f.name for f in figures] == ["input", "maps_conv1"]
    assert figures[0].title == "Input sample:flower"
    parser = argparse.ArgumentParser(prog="cnnlab explain")
    add_arguments(parser)
    assert command_explain(parser.parse_args([str(explain_store), "--what", "maps", "--layers", "conv1",
                                              "--image", "sample:china"])) == 0
    assert [line.rsplit("/", 1)[1] for line in capsys.readouterr().out.splitlines()] == ["input.png", "maps_conv1.png"]


def test_an_unknown_sample_is_a_clear_error_naming_the_two(store):
    with pytest.raises(DataError, match="unknown sample photo 'sample:horse'; scikit-learn ships two: "
                                        "sample:china, sample:flower"):
        explain_figures(store, best_run(store)["id"], what="maps", image="sample:horse")
    run = load_run(store, best_run(store)["id"])
    run.explain = Explain.model_validate({"feature_maps": {"image": "sample:", "layers": [1]}})
    with pytest.raises(DataError, match="unknown sample photo 'sample:'"):
        list(iter_figures(run))
