"""Looking at figures: decode a Figure's PNG and check its size and each tile's pixels."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cnnlab.explain import Figure


def pixels(figure: Figure) -> np.ndarray:
    """The PNG as an H x W x 3 uint8 array, checked against the size the figure says it has."""
    with Image.open(io.BytesIO(figure.png_bytes)) as image:
        assert image.format == "PNG"
        assert image.size == figure.size, f"{figure.name}: PNG is {image.size}, figure says {figure.size}"
        return np.asarray(image.convert("RGB"))


def tile(array: np.ndarray, box: tuple[int, int, int, int], inset: int = 1) -> np.ndarray:
    """The pixels of one tile, ``inset`` px in from its edges (anti-aliased borders left out)."""
    left, top, right, bottom = box
    return array[top + inset:bottom - inset, left + inset:right - inset]


def is_blank(region: np.ndarray) -> bool:
    """One colour everywhere (or nothing to look at)."""
    return region.size == 0 or bool((region == region.reshape(-1, 3)[0]).all())
