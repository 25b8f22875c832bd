"""Real MNIST: feature maps of a real photo render for every layer of a trained run, tile by tile."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets

from cnnlab.api import open_store, run_study
from cnnlab.explain import best_run, feature_maps, iter_figures, load_image_file, load_run
from cnnlab.figures import colormap_rgb
from tests.explain.pixels import is_blank, pixels, tile
from tests.models.architectures import C_MNIST

# A real photograph bundled with scikit-learn (a dependency): the Summer Palace, 640x427 JPEG.
PHOTO = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"


@pytest.mark.slow
def test_feature_maps_of_a_photo_render_for_every_layer_of_a_trained_mnist_run(tmp_path, mnist_dir):
    study = {
        "name": "mnist-explain",
        "dataset": {"name": "mnist", "split": {"train": "rest", "val": 1000, "test": 1000}},
        "architectures": {"mnist_net": C_MNIST},  # study C: 3 'same' convs, 2 pools, 2 dense
        "train": {"optimizer": {"name": "adam", "lr": 0.002}, "batch_size": 64, "epochs": 1},
    }
    start = time.perf_counter()
    result = run_study(study, tmp_path, data_dir=mnist_dir, limit_train=5000)
    trained = time.perf_counter() - start
    assert result.outcome.ok
    with open_store(tmp_path) as store:
        record = best_run(store)
        assert record["val_accuracy"] > 0.5  # a trained net, not random weights (10%)
        run = load_run(store, record["id"], data_dir=mnist_dir)
        start = time.perf_counter()
        figures = list(iter_figures(run, what="maps", layers=["all"], image=PHOTO, store=store))
        drawn = time.perf_counter() - start
    print(f"1 epoch on 5,000 MNIST images: {trained:.1f} s, val acc {100 * record['val_accuracy']:.1f}%; "
          f"{len(figures)} figures in {drawn:.1f} s")

    names = run.built.names
    assert [f.name for f in figures] == ["input"] + [f"maps_{name}" for name in names]
    item = load_image_file(PHOTO, run.input_shape)
    assert item.image.shape == (1, 28, 28) and item.original_size == (640, 427)
    maps = feature_maps(run.model, run.model_input(item.image), names)

    source = pixels(figures[0])
    assert all(not is_blank(tile(source, box)) for box in figures[0].tiles.values())
    assert "china.jpg" in figures[0].caption and "grayscale" in figures[0].caption
    for figure in figures[1:]:
        name = figure.name[len("maps_"):]
        image = pixels(figure)
        activation = maps[name][0].numpy()
        assert name in figure.title and str(tuple(activation.shape)) in figure.title
        if activation.ndim == 1:
            assert not is_blank(tile(image, figure.tiles["units"], inset=2))
            continue
        assert len(figure.tiles) == activation.shape[0]
        assert figure.size[0] >= 8 * activation.shape[2]  # tiles at least as large as the maps
        flat = 0
        for channel, values in enumerate(activation):
            region = tile(image, figure.tiles[f"channel {channel}"], inset=0)
            assert region.shape[0] >= values.shape[0] and region.shape[0] % values.shape[0] == 0
            factor = region.shape[0] // values.shape[0]
            # Every map on the layer's one scale (its colour bar), so that weak and strong channels differ.
            expected = colormap_rgb(values, activation.min(), activation.max())
            expected = np.repeat(np.repeat(expected, factor, 0), factor, 1)
            assert np.abs(region.astype(int) - np.round(expected * 255).astype(int)).max() <= 1
            # A flat map is drawn flat (a map whose range is below one colour step of the layer's may be too).
            assert is_blank(region) or values.max() > values.min()
            assert not is_blank(region) or values.max() - values.min() < 0.02 * (activation.max() - activation.min())
            flat += values.max() == values.min()
        assert flat < len(activation)  # the photo drives every layer
