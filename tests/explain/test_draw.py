"""Figures looked at: filter grids, histograms and the weights they come from, feature maps and
attributions with their value scales; and what each shows, read back from the drawn figure."""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.explain import LayerWeights, NEAR_ZERO, best_run, filters, load_run, weight_histograms
from cnnlab.explain.charts import draw_histogram_overlay, draw_histograms, draw_units
from cnnlab.explain.draw import draw_class_attributions, draw_feature_maps, draw_filter_comparison, draw_filters
from cnnlab.figures import MIN_FONT, PALETTE, colormap_rgb, colour_for
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


def _looks_right(figure) -> None:
    """What every explain figure must do: readable text, legends off the data and inside the figure."""
    drawn = figure.drawn
    assert drawn.smallest_font >= MIN_FONT, figure.name
    assert drawn.legends_over_data() == [] and drawn.cut_off() == [], figure.name


def test_histograms_label_their_axes_and_keep_their_legends_beside_the_bars():
    rng = np.random.default_rng(0)
    layers = {variant: [LayerWeights("conv1", "conv", rng.normal(0, scale, 300), rng.normal(0, scale, 8)),
                        LayerWeights("dense1", "dense", rng.normal(0, scale, 900), None)]
              for variant, scale in (("none", 1.0), ("l1", 0.3), ("a much longer variant name", 0.6))}
    order = ["l1", "none", "a much longer variant name"]
    overlay = draw_histogram_overlay(layers, "small", order=order)
    single = draw_histograms(layers["none"], "small/none", colour=colour_for("none", order))
    for figure in (overlay, single):
        _looks_right(figure)
        shown = [axes for axes in figure.drawn.axes if axes.kind == "data"]
        assert {axes.xlabel for axes in shown} == {"weight value", "bias value"}
        assert {axes.ylabel for axes in shown} <= {"count", "count (log scale)"}
    assert len(overlay.drawn.legends) == 3  # one beside each panel that has data (dense1 has no bias)
    assert overlay.drawn.colours() == {v: {colour_for(v, order).lower()} for v in order}
    assert "l1: " in overlay.drawn.text() and "near 0" in overlay.drawn.text()
    colour = colour_for("none", order)  # the run's variant's colour: the second in the spec's order
    assert colour == PALETTE[1]
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    assert (pixels(single).reshape(-1, 3) == rgb).all(axis=1).mean() > 0.01  # the bars are drawn in it


def test_filters_maps_and_attributions_carry_their_value_scales():
    kernels = _kernels(8, 1)
    peak = float(kernels.abs().max())
    filters_figure = draw_filters(kernels, "conv1")
    raw, normalized = filters_figure.drawn.scales
    assert (raw.label, raw.low, raw.high) == ("weight value", -peak, peak)
    assert normalized.label == "each filter's own range"
    assert len(draw_filter_comparison({"conv1": kernels, "conv2": _kernels(8, 4)}, last=4).drawn.scales) == 2

    maps = np.zeros((3, 4, 4), dtype=np.float32)
    maps[0] = 4.0 * np.eye(4)  # strong
    maps[1] = 1.0 * np.eye(4)  # weak: on the layer's one scale it looks weaker
    figure = draw_feature_maps(maps, "conv1", "test:0")
    (scale,) = figure.drawn.scales
    assert (scale.low, scale.high, scale.cmap) == (0.0, 4.0, "viridis")
    image = pixels(figure)
    strong = tile(image, figure.tiles["channel 0"], inset=0)
    weak = tile(image, figure.tiles["channel 1"], inset=0)
    factor = strong.shape[0] // 4
    for values, region in ((maps[0], strong), (maps[1], weak)):
        expected = np.repeat(np.repeat(colormap_rgb(values, 0.0, 4.0), factor, 0), factor, 1)
        assert np.abs(region.astype(int) - np.round(expected * 255).astype(int)).max() <= 1
    assert "2 =0" in figure.drawn.text()  # the dead map says so

    image_in = np.zeros((1, 4, 4), dtype=np.uint8)
    strong_map, weak_map = np.ones((1, 4, 4)) * 2.0, np.ones((1, 4, 4)) * 0.5
    for method, low in (("saliency", 0.0), ("guided", -2.0)):
        figure = draw_class_attributions(image_in, "test:0", [("0", 0.9), ("1", 0.1)], [strong_map, weak_map], method)
        (scale,) = figure.drawn.scales
        assert (scale.low, scale.high) == (low, 2.0)  # one scale for every class
        assert not np.array_equal(tile(pixels(figure), figure.tiles["class 0"]), tile(pixels(figure), figure.tiles["class 1"]))
    _looks_right(figure)


def test_flat_layers_draw_as_bars_with_labelled_axes():
    figure = draw_units(np.array([0.5, -1.0, 2.0]), "dense1", "test:0", unit_names=["a", "b", "c"])
    _looks_right(figure)
    (axes,) = [axes for axes in figure.drawn.axes if axes.kind == "data"]
    assert (axes.xlabel, axes.ylabel) == ("class (logits, before softmax)", "activation value")
