"""scikit-learn's bundled 8x8 digits: the dataset that needs no file and no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cnnlab.data.arrays import Source, dataset_from_numpy, make_source


def read_digits_source(spec: Any, files: Mapping[str, Path], info: Any) -> Source:
    """1,797 images, 1 x 8 x 8; no official test part (a split draws the test set from them)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # The pixels are counts 0-16 (of a 4x4 block of the original 32x32 bitmap); scaled to
    # 0-255 so normalization treats them like every other image.
    images = np.round(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    data = dataset_from_numpy(images[:, None, :, :], bunch.target)
    return make_source("digits", data, None, [str(int(n)) for n in bunch.target_names], where="dataset 'digits'")
