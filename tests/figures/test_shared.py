"""The report and explain draw with the one kit: the kit's resolutions and PNG writer in both, and
both examples figures from the one grid with the counts each asked for."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from cnnlab.explain import charts, draw
from cnnlab.explain.weights import weight_histograms
from cnnlab.figures import DPI, TILE_DPI, Figure
from cnnlab.report import evaluation as report_evaluation
from cnnlab.report import figures as report_figures
from cnnlab.report.data import Curve, Evaluation, Examples
from cnnlab.report.document import Figure as ReportFigure

NAMES = [f"class {i}" for i in range(10)]


def _dpi_and_software(png: bytes) -> tuple[int, bool]:
    with Image.open(io.BytesIO(png)) as image:
        return round(image.info["dpi"][0]), "Software" in image.info


def test_report_and_explain_pngs_come_from_the_kits_writer_at_the_kits_resolutions():
    steps = list(range(1, 4))
    mean = {"train_accuracy": [0.5, 0.6, 0.7], "val_accuracy": [0.4, 0.5, 0.6], "train_loss": [1.0, 0.5, 0.3],
            "val_loss": [1.1, 0.7, 0.6]}
    curve = Curve("A/v", "A", "v", {}, 1, steps, mean)
    report_pngs = [report_figures.draw_small_multiples([curve], "accuracy"), report_figures.draw_overlay("A", [curve]),
                   report_figures.draw_confusion(np.eye(3, dtype=int) * 5, NAMES[:3], "test")]
    kernels = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    explain_pngs = [draw.draw_filters(kernels, "conv1").png_bytes,
                    charts.draw_histograms(weight_histograms({"conv1.0.weight": kernels}), "A/v").png_bytes]
    assert [_dpi_and_software(png) for png in report_pngs] == [(DPI, False)] * 3
    assert [_dpi_and_software(png) for png in explain_pngs] == [(TILE_DPI, False)] * 2


def _images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 1, 8, 8), dtype=np.uint8)


def test_both_examples_figures_are_the_one_grid_with_the_counts_asked_for():
    labels = np.arange(10) % 10
    evaluation = Evaluation("A/v", "val_accuracy", 0.9, 1, "run-1", 0, 1, class_names=NAMES, examples_split="test",
                            examples={"correct": Examples("correct", _images(10, 0), labels, labels, np.full(10, 0.9)),
                                      "confident_wrong": Examples("confident_wrong", _images(3, 1), labels[:3],
                                                                  labels[:3] + 1, np.full(3, 0.8))})
    report = report_figures.draw_evaluation_examples(evaluation)
    assert isinstance(report, Figure)
    per_row = report_figures.EXAMPLES_PER_ROW
    assert sorted(report.tiles) == sorted([f"correct {i}" for i in range(per_row)]
                                          + [f"confident_wrong {i}" for i in range(3)])
    # The report's best-configuration section shows exactly that figure.
    section = report_evaluation.best_configuration(SimpleNamespace(evaluation=evaluation, evaluation_reason=None))
    shown = [block for block in section.blocks if isinstance(block, ReportFigure) and block.name == "examples"]
    assert len(shown) == 1 and shown[0].png == report.png_bytes

    stored = {"split": np.array("val")}
    for kind, count in (("correct", 6), ("wrong", 4), ("confident_wrong", 4)):
        stored.update({f"{kind}_images": _images(count, count), f"{kind}_labels": labels[:count],
                       f"{kind}_predicted": labels[:count] if kind == "correct" else labels[:count] + 1,
                       f"{kind}_confidence": np.full(count, 0.7), f"{kind}_index": np.arange(count)})
    explain = draw.examples_figure(stored, NAMES, {"correct": 2, "wrong": 3, "confident_wrong": 3})
    assert isinstance(explain, Figure)
    assert sorted(explain.tiles) == sorted([f"correct {i}" for i in range(2)] + [f"wrong {i}" for i in range(3)]
                                           + [f"confident_wrong {i}" for i in range(3)])
    assert explain.title == "Classified examples (val split)"
    for figure in (report, explain):
        assert _dpi_and_software(figure.png_bytes) == (TILE_DPI, False)
