"""The one examples grid, from synthetic images: grey and colour, names matplotlib would read as
mathematics, rows cut to the requested count, columns aligned from row to row."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cnnlab.figures import RIGHT, WRONG, ExampleRow, draw_examples

PNG = b"\x89PNG\r\n\x1a\n"


def _row(kind: str, count: int, channels: int = 1, seed: int = 0, indices: bool = False) -> ExampleRow:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, channels, 12, 12), dtype=np.uint8)
    labels = np.arange(count) % 3
    predicted = labels if kind == "correct" else (labels + 1) % 3
    return ExampleRow(kind.capitalize(), kind, images, labels, predicted, np.full(count, 0.7),
                      np.arange(count) * 2 if indices else None)


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def test_examples_show_grey_and_colour_images():
    rng = np.random.default_rng(0)
    for channels in (1, 3):
        images = rng.integers(0, 256, size=(5, channels, 12, 12), dtype=np.uint8)
        group = ExampleRow("Misclassified", "wrong", images, np.array([0, 1, 2, 0, 1]), np.array([1, 1, 0, 2, 2]),
                           np.full(5, 0.7))
        png = draw_examples([group], ["cat $", "dog", "<b>bird</b>"]).png_bytes
        assert png.startswith(PNG)


def test_each_tile_is_its_image_upscaled_by_a_whole_factor():
    row = _row("correct", 3, channels=3)
    figure = draw_examples([row], ["a", "b", "c"], tile=48)
    image = _pixels(figure.png_bytes)
    for i in range(3):
        left, top, right, bottom = figure.tiles[f"correct {i}"]
        assert (right - left, bottom - top) == (48, 48)  # 12 px images, factor 4
        expected = np.repeat(np.repeat(row.images[i].transpose(1, 2, 0), 4, 0), 4, 1)
        assert np.array_equal(image[top:bottom, left:right], expected)


def test_rows_are_cut_to_per_row_and_their_columns_line_up():
    rows = [_row("correct", 5, seed=1), _row("wrong", 2, seed=2, indices=True)]
    figure = draw_examples(rows, ["$x$", "y", "z"], per_row=3, split="val", title="Examples")
    assert sorted(figure.tiles) == ["correct 0", "correct 1", "correct 2", "wrong 0", "wrong 1"]
    for i in range(2):  # the same column in both rows starts at the same x
        assert figure.tiles[f"correct {i}"][0] == figure.tiles[f"wrong {i}"][0]
    assert figure.tiles["wrong 0"][1] > figure.tiles["correct 0"][3]  # one row under the other
    default = draw_examples(rows, ["x", "y", "z"])  # per_row defaults to the longest row
    assert len(default.tiles) == 5 + 2


def test_labels_are_green_when_right_and_red_when_wrong():
    figure = draw_examples([_row("correct", 1), _row("wrong", 1)], ["a", "b", "c"], tile=96)
    image = _pixels(figure.png_bytes).astype(int)

    def has(color: str, box) -> bool:  # the label sits in the strip just above its tile
        left, top, right, _ = box
        strip = image[max(0, top - 26):top, left:right].reshape(-1, 3)
        rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
        return bool((np.abs(strip - rgb).max(axis=1) <= 40).any())

    assert has(RIGHT, figure.tiles["correct 0"]) and not has(WRONG, figure.tiles["correct 0"])
    assert has(WRONG, figure.tiles["wrong 0"]) and not has(RIGHT, figure.tiles["wrong 0"])


def test_no_rows_draw_a_figure_that_says_so():
    figure = draw_examples([], ["a"], title="Classified examples (test split)")
    assert figure.png_bytes.startswith(PNG) and figure.tiles == {}
    assert figure.title == "Classified examples (test split)"
