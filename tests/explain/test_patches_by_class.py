"""Top patches grouped by class (issue 18; study E: "the image patches that excite each neuron most
... one row per class"): which neurons a class's row holds, in which order, and which patch."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from cnnlab.cli.explain import add_arguments
from cnnlab.explain import TopActivations, best_run, crop, iter_figures, load_run, neurons_by_class, receptive_field
from cnnlab.explain import top_activations
from cnnlab.figures import MIN_FONT
from tests.explain.pixels import pixels, tile


def _top(values, labels_of_images) -> TopActivations:
    """Channels 0..n-1 whose top images are 0..k-1 of a split (their labels given per channel)."""
    values = torch.tensor(values, dtype=torch.float32)
    count, k = values.shape
    index = torch.arange(count * k).reshape(count, k)  # every top image a different one
    return TopActivations(layer="conv9", channels=list(range(count)), values=values, image_index=index,
                          position=torch.zeros((count, k, 2), dtype=torch.int64))


def test_the_rule_majority_class_ties_to_the_lowest_dead_neurons_in_no_row():
    # Labels of each channel's 4 top images (row-major image indices 0..15).
    labels = np.array([2, 2, 1, 0,   # ch 0: class 2 (2 of 4)
                       1, 0, 0, 1,   # ch 1: tie 0 and 1 -> class 0
                       2, 2, 2, 1,   # ch 2: class 2 (3 of 4): before ch 0
                       1, 1, 1, 1])  # ch 3: dead (all top values equal) -> no row
    values = [[5.0, 4.0, 3.0, 1.0], [6.0, 2.0, 1.0, 0.5], [1.0, 0.9, 0.8, 0.7], [0.0, 0.0, 0.0, 0.0]]
    grouped = neurons_by_class(_top(values, labels), labels, class_count=3, per_class=5)
    assert [[n.channel for n in row] for row in grouped.rows] == [[1], [], [2, 0]]
    assert [[n.count for n in row] for row in grouped.rows] == [[2], [], [3, 2]]
    assert grouped.flat == [3] and grouped.totals == [1, 0, 2]
    # The tile of a neuron is its best-ranked image of the row's class: ch 1's first class-0 image is rank 1.
    assert grouped.rows[0][0].rank == 1 and grouped.rows[2][1].rank == 0
    capped = neurons_by_class(_top(values, labels), labels, class_count=3, per_class=1)
    assert [[n.channel for n in row] for row in capped.rows] == [[1], [], [2]] and capped.totals == [1, 0, 2]


def test_one_row_per_class_with_the_neurons_whose_top_patches_come_mostly_from_it(store):
    run = load_run(store, best_run(store)["id"])
    figures = {f.name: f for f in iter_figures(run, what="patches", layers=["conv2"])}
    figure = figures["patches_by_class_conv2"]
    data = run.split_data("test")
    top = top_activations(run.model, data, run.normalizer(), "conv2", None, k=9)
    labels = data.labels.tolist()
    # The rule, counted by hand: the class most of a channel's 9 top test images carry, the lowest on a tie;
    # channels whose 9 top activations are all equal belong to no class.
    expected: dict[int, list[tuple[int, float, int, int]]] = {c: [] for c in range(10)}
    for row, channel in enumerate(top.channels):
        ranked = top.rank(row)
        if ranked[0][0] == ranked[-1][0]:
            continue
        counts = [sum(labels[image] == c for _, image, _, _ in ranked) for c in range(10)]
        owner = counts.index(max(counts))
        expected[owner].append((-counts[owner], -ranked[0][0], channel, row))
    images = data.images.numpy()
    field = receptive_field(run.built.layers, "conv2")
    picture = pixels(figure)
    shown = 0
    for c, members in expected.items():
        members.sort()
        keys = [f"class {c} channel {channel}" for _, _, channel, _ in members[:10]]
        row_boxes = [figure.tiles[key] for key in keys]
        assert [box[0] for box in row_boxes] == sorted(box[0] for box in row_boxes)  # left to right in that order
        assert len({box[1] for box in row_boxes}) <= 1  # one row
        words = f"{len(keys)} neuron{'' if len(keys) == 1 else 's'}" if keys else "no neurons"
        assert f"{c}: {words}" in figure.drawn.text()
        for (_, _, channel, row), key in zip(members, keys):
            # The tile: the neuron's strongest top patch among images of this class, pixel for pixel.
            value, image, r, col = next(item for item in top.rank(row) if labels[item[1]] == c)
            region = tile(picture, figure.tiles[key], inset=0)
            patch = crop(images[image], field, r, col).padded(128)[0]
            factor = region.shape[0] // patch.shape[0]
            assert np.array_equal(region[..., 0], np.repeat(np.repeat(patch, factor, 0), factor, 1))
            assert f"ch {channel}: " in figure.drawn.text() and f"test:{image} {value:.3g}" in figure.drawn.text()
        shown += len(keys)
    assert len(figure.tiles) == shown > 0
    # Rows in class order, top to bottom.
    tops = [min(box[1] for key, box in figure.tiles.items() if key.startswith(f"class {c} ")) for c in range(10)
            if any(key.startswith(f"class {c} ") for key in figure.tiles)]
    assert tops == sorted(tops)
    assert "a neuron belongs to the class that most of its top 9 images carry" in figure.caption
    assert "a tie goes to the lowest class index" in figure.caption
    assert figure.drawn.smallest_font >= MIN_FONT and figure.drawn.cut_off() == []


def test_the_command_line_says_patches_come_per_neuron_and_by_class():
    parser = argparse.ArgumentParser(prog="cnnlab explain")
    add_arguments(parser)
    assert "patches: per neuron, and by class" in " ".join(parser.format_help().split())
