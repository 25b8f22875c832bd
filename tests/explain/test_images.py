"""Image files as model inputs: conversions, crops and sizes, and clear errors for what is not an image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.errors import DataError
from cnnlab.explain import load_image_file, parse_index
from cnnlab.explain.images import looks_like_index


def test_a_file_that_is_not_an_image_is_a_data_error(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("these are notes, not pixels\n")
    with pytest.raises(DataError, match=r"notes.png: not an image Pillow can read; give a PNG or JPEG file"):
        load_image_file(fake, (1, 28, 28))
    with pytest.raises(DataError, match="no such image file"):
        load_image_file(tmp_path / "missing.jpg", (1, 28, 28))
    with pytest.raises(DataError, match="is a folder"):
        load_image_file(tmp_path, (1, 28, 28))


def test_a_wide_rgb_jpeg_becomes_a_centre_crop_of_the_models_size(tmp_path):
    pixels = np.zeros((60, 120, 3), dtype=np.uint8)
    pixels[:, 30:90] = (200, 40, 10)  # the centre square is red, the sides black
    path = tmp_path / "wide.jpg"
    Image.fromarray(pixels).save(path, quality=95)
    rgb = load_image_file(path, (3, 32, 32))
    assert rgb.image.shape == (3, 32, 32) and rgb.image.dtype == np.uint8
    assert rgb.original.shape == (60, 120, 3) and rgb.original_size == (120, 60)
    assert abs(int(rgb.image[0].mean()) - 200) < 12 and rgb.image[2].mean() < 25  # only the red centre is kept
    assert rgb.steps == ["converted to RGB", "centre cropped to 60x60", "resized 60x60 -> 32x32 (Lanczos)"]
    gray = load_image_file(path, (1, 28, 28))
    assert gray.image.shape == (1, 28, 28)
    assert gray.steps[0] == "converted to grayscale (luma)"
    stretched = load_image_file(path, (1, 28, 28), fit="stretch")
    assert "centre cropped" not in " ".join(stretched.steps)
    assert stretched.image[0, :, :5].mean() < 20  # the black sides are still there


def test_transparent_png_is_flattened_onto_black(tmp_path):
    pixels = np.zeros((28, 28, 4), dtype=np.uint8)
    pixels[8:20, 12:16] = (255, 255, 255, 255)  # an opaque white stroke on a transparent background
    pixels[..., :3][pixels[..., 3] == 0] = 255  # transparent pixels carry white colour values
    path = tmp_path / "digit.png"
    Image.fromarray(pixels, "RGBA").save(path)
    item = load_image_file(path, (1, 28, 28))
    assert item.steps[0] == "transparency flattened onto black"
    assert item.image[0, 0, 0] == 0 and item.image[0, 10, 13] == 255
    assert item.name == "digit.png" and item.source == str(path)


def test_split_index_parsing():
    assert parse_index("test:3") == ("test", 3)
    assert parse_index("val:0") == ("val", 0)
    for bad in ("test", "test:-1", "tset:1", "train:x", "3"):
        with pytest.raises(DataError, match="looks like 'test:3'"):
            parse_index(bad)
    assert looks_like_index("train:12") and not looks_like_index("photos/horse.jpg")
