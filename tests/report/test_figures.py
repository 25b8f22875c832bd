"""The report's own figures from synthetic data (no training): any class count, names that
matplotlib would otherwise read as mathematics, curves with gaps. The examples grid is the
figure kit's (tests/figures/test_examples.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.figures import DPI
from cnnlab.report.data import Curve
from cnnlab.report.document import Figure
from cnnlab.report.figures import draw_confusion, draw_overlay, draw_small_multiples

PNG = b"\x89PNG\r\n\x1a\n"


def _curve(name: str, epochs: int, repeats: int = 1, missing_val: bool = False) -> Curve:
    steps = np.arange(1, epochs + 1)
    mean = {"train_accuracy": list(1 - 0.5 / steps), "val_accuracy": [None] * epochs if missing_val else list(0.9 - 0.5 / steps),
            "train_loss": list(2.0 / steps**2), "val_loss": [None] * epochs if missing_val else list(1.0 / steps)}
    band = {key: [None if v is None else v * 0.95 for v in values] for key, values in mean.items()} if repeats > 1 else {}
    return Curve(name, name.split("/")[0], name.split("/")[1], {}, repeats, list(steps), mean, band, band, epochs - 1)


@pytest.mark.parametrize("classes", [2, 10, 100])
def test_confusion_matrix_draws_any_number_of_classes_with_their_names(classes):
    rng = np.random.default_rng(0)
    confusion = rng.integers(0, 20, size=(classes, classes)) + np.eye(classes, dtype=int) * 50
    names = [f"$class {i}$ with a long name" if i % 2 else f"c{i}" for i in range(classes)]
    png = draw_confusion(confusion, names, "test")
    assert png.startswith(PNG)
    width, height = Figure("c", png, "").size
    assert width > 2 * height * 0.8 and width < 30 * DPI  # two square panels side by side, bounded


def test_curves_draw_with_repeats_bands_missing_validation_and_an_odd_panel_count():
    curves = [_curve(f"A/v{i} conv.kernel=5 conv.stride=2 a long label", 6, repeats=2 if i % 2 else 1,
                     missing_val=i == 4) for i in range(5)]
    for metric in ("accuracy", "loss"):
        assert draw_small_multiples(curves, metric).startswith(PNG)
    assert draw_overlay("A", curves).startswith(PNG)
    assert draw_small_multiples(curves[:1], "loss").startswith(PNG)
