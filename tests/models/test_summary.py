"""Keras-style summaries: numbers apart from text, and the text compared with golden files.

Regenerate the golden files on purpose with ``CNNLAB_UPDATE_GOLDEN=1 pytest tests/models``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cnnlab.models import build_model, format_summary, keras_shape, summarize

from . import architectures as arch
from .architectures import CIFAR10, MNIST, layers, variant

GOLDEN = Path(__file__).parent / "golden"

CASES = {
    "a1_batchnorm": (arch.A1, arch.A_BATCHNORM, CIFAR10, "A1/batchnorm"),
    "d_base": (arch.D, None, MNIST, "D/none"),
    "e_dropout": (arch.E, arch.E_DROPOUT, CIFAR10, "E/dropout"),
}


def summary_text(case: str) -> str:
    items, data, shape, title = CASES[case]
    built = build_model(layers(items), shape, 10, variant(data) if data else None)
    return format_summary(summarize(built), title=title)


@pytest.mark.parametrize("case", sorted(CASES))
def test_summary_table_matches_golden_file(case):
    path = GOLDEN / f"{case}.txt"
    text = summary_text(case)
    if os.environ.get("CNNLAB_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs; rerun with CNNLAB_UPDATE_GOLDEN=1 if the change is wanted"


def test_summary_numbers_are_keras_ones_and_json_ready():
    summary = summarize(build_model(layers(arch.A1), CIFAR10, 10, variant(arch.A_BATCHNORM)))
    assert (summary.total_params, summary.trainable_params, summary.non_trainable_params) == (53_322, 51_146, 2_176)
    assert [(row.name, row.keras_type, row.output_shape, row.params) for row in summary.rows[3:5]] == [
        ("maxpool2", "MaxPooling2D", (None, 4, 4, 64), 0), ("batchnorm1", "BatchNormalization", (None, 4, 4, 64), 256)]
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["rows"][0] == {"name": "conv1", "keras_type": "Conv2D", "output_shape": [None, 32, 32, 64],
                               "params": 1792}
    assert data["input_shape"] == [None, 32, 32, 3] and data["total_params"] == 53_322


def test_keras_shapes_are_channels_last():
    assert keras_shape((64, 8, 4)) == (None, 8, 4, 64) and keras_shape((10,)) == (None, 10)


def test_long_names_widen_the_columns():
    text = format_summary(summarize(build_model(layers([{"conv": 2}] * 3 + ["globalavgpool", {"dense": 2}]),
                                                (1, 9, 9))))
    rows = text.splitlines()
    assert not rows[0].startswith("Model:")
    line = next(row for row in rows if row.startswith(" globalavgpool1"))
    assert "globalavgpool1 (GlobalAveragePooling2D)  (None, 2)" in line
    assert len(rows[0]) == len(rows[2]) >= max(len(row) for row in rows)
