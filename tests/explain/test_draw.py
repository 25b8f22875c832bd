"""Figures looked at: filter grids, histograms and the weights they come from."""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.explain import LayerWeights, NEAR_ZERO, best_run, filters, load_run, weight_histograms
from cnnlab.explain.charts import draw_histogram_overlay, draw_histograms
from cnnlab.explain.draw import draw_filter_comparison, draw_filters
from tests.explain.pixels import is_blank, pixels, tile


def _kernels(out_channels: int, in_channels: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(out_channels, in_channels, 3, 3, generator=torch.Generator().manual_seed(seed))


def test_64_rgb_filters_make_an_8x8_colour_grid_raw_and_normalized():
    kernels = _kernels(64, 3)
    peak = kernels.abs().max()
    kernels[5] = 0
    kernels[5, 0] = peak  # filter 5 sees only red, as strongly as any weight of the layer
    figure = draw_filters(kernels, "conv1")
    image = pixels(figure)
    for panel in ("raw", "normalized"):
        boxes = [figure.tiles[f"{panel} {i}"] for i in range(64)]
        assert len({box[0] for box in boxes}) == 8 and len({box[1] for box in boxes}) == 8  # 8 columns, 8 rows
    red = tile(image, figure.tiles["raw 5"]).reshape(-1, 3).astype(int)
    assert (np.abs(red - (255, 128, 128)) <= 1).all()  # in colour: full red on grey (0) green and blue
    normalized = tile(image, figure.tiles["normalized 0"], inset=0).reshape(-1, 3)
    assert normalized.min() <= 1 and normalized.max() >= 254  # min-max per filter spans black to white
    assert "the 3 input channels as RGB" in figure.caption


def test_deeper_layers_show_the_channel_mean_or_one_channel_and_say_which():
    kernels = _kernels(16, 8)
    mean = draw_filters(kernels, "conv2")
    assert "the mean over the 8 input channels per tile" in mean.caption
    one = draw_filters(kernels, "conv2", channel=3)
    assert "input channel 3 of 8 per tile" in one.caption
    assert not np.array_equal(pixels(mean), pixels(one))
    last = draw_filter_comparison({"conv1": _kernels(8, 3), "conv2": kernels}, last=4)
    assert sorted(last.tiles) == sorted(f"{layer} {panel} {i}" for panel in ("raw", "normalized")
                                        for layer, indices in (("conv1", range(4, 8)), ("conv2", range(12, 16)))
                                        for i in indices)
    assert last.title == "The last 4 filters of conv1 vs conv2"


def test_near_zero_fractions_come_from_the_weights_as_stored():
    state = {"conv1.0.weight": torch.tensor([0.0, 5e-4, -2e-3, 1.0]).reshape(1, 1, 2, 2),
             "conv1.0.bias": torch.tensor([0.0]),
             "batchnorm1.weight": torch.ones(3), "batchnorm1.running_mean": torch.zeros(3),
             "dense1.weight": torch.full((2, 3), 0.5)}
    layers = weight_histograms(state)
    assert [(layer.name, layer.kind) for layer in layers] == [("conv1", "conv"), ("dense1", "dense")]
    assert layers[0].near_zero == 0.5 and layers[0].bias_near_zero == 1.0  # |w| < 1e-3: 0 and 5e-4
    assert layers[1].biases is None and layers[1].near_zero == 0.0
    assert NEAR_ZERO == 1e-3
    figure = draw_histograms(layers, "A/l1")
    assert "|w| < 0.001" in figure.caption and not is_blank(pixels(figure))


def test_l1_sparsity_and_l2_shrinkage_show_in_the_trained_variants(store):
    by_variant = {run["variant"]: weight_histograms(store.load_weights(run["id"])) for run in store.runs()}
    none, l1, l2 = (next(layer for layer in by_variant[v] if layer.name == "dense1") for v in ("none", "l1", "l2"))
    assert l1.near_zero > none.near_zero + 0.05  # L1 drives weights to zero
    assert l2.weights.std() < 0.7 * none.weights.std()  # L2 shrinks them
    figure = draw_histogram_overlay(by_variant, "small")
    assert not is_blank(pixels(figure))
    run = load_run(store, best_run(store)["id"])
    from_model = weight_histograms(run.model)
    from_store = weight_histograms(store.load_weights(run.run_id))
    assert all(np.array_equal(a.weights, b.weights) for a, b in zip(from_model, from_store))
    assert torch.equal(filters(run.model, "conv1"), store.load_weights(run.run_id)["conv1.0.weight"])
    assert isinstance(from_model[0], LayerWeights)
