"""The report and explain draw with the one kit: the kit's resolutions and PNG writer in both,
both examples figures from the one grid with the counts each asked for and no image twice, and
a variant in one colour in the report's curves and explain's histograms."""

from __future__ import annotations

import io
from types import SimpleNamespace

from cnnlab.analysis.selection import SelectionRules

import numpy as np
import torch
from PIL import Image

from cnnlab.explain import charts, draw
from cnnlab.explain.weights import weight_histograms
from cnnlab.explain.weights import LayerWeights
from cnnlab.figures import DPI, TILE_DPI, Figure, colour_for
from cnnlab.report import evaluation as report_evaluation
from cnnlab.report import figures as report_figures
from cnnlab.report.data import Curve, Evaluation, Examples
from cnnlab.report.document import Figure as ReportFigure
from cnnlab.report.known_effects import CurveContext

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


def _data(evaluation: Evaluation, spec: dict) -> SimpleNamespace:
    """Just enough of the report's data for its best-configuration section."""
    return SimpleNamespace(evaluation=evaluation, evaluation_reason=None, spec=spec, confusion_pair=None,
                           confusion_pair_reason=None, finals=[], rules=SelectionRules())


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
    section = report_evaluation.best_configuration(_data(evaluation, {}))
    shown = [block for block in section.blocks if isinstance(block, ReportFigure) and block.name == "examples"]
    assert len(shown) == 1 and shown[0].png == report.png_bytes

    stored = {"split": np.array("val")}
    for offset, (kind, count) in enumerate((("correct", 6), ("wrong", 4), ("confident_wrong", 4))):
        stored.update({f"{kind}_images": _images(count, offset), f"{kind}_labels": labels[:count],
                       f"{kind}_predicted": labels[:count] if kind == "correct" else labels[:count] + 1,
                       f"{kind}_confidence": np.full(count, 0.7), f"{kind}_index": np.arange(count) + 100 * offset})
    explain = draw.examples_figure(stored, NAMES, {"correct": 2, "wrong": 3, "confident_wrong": 3})
    assert isinstance(explain, Figure)
    assert sorted(explain.tiles) == sorted([f"correct {i}" for i in range(2)] + [f"wrong {i}" for i in range(3)]
                                           + [f"confident_wrong {i}" for i in range(3)])
    assert explain.title == "Classified examples (val split)"
    for figure in (report, explain):
        assert _dpi_and_software(figure.png_bytes) == (TILE_DPI, False)


def _stored(kinds: dict[str, list[int]], confidence: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """An examples file's arrays: each kind's split indices (an image is its index, drawn in)."""
    stored = {"split": np.array("test")}
    for kind, indices in kinds.items():
        index = np.array(indices, dtype=np.int64)
        images = np.zeros((len(index), 1, 8, 8), dtype=np.uint8)
        images[:, 0, 0, 0] = index  # the same split index, the same pixels
        labels = index % 10
        stored.update({f"{kind}_index": index, f"{kind}_images": images, f"{kind}_labels": labels,
                       f"{kind}_predicted": labels if kind == "correct" else (labels + 1) % 10,
                       f"{kind}_confidence": np.array(confidence[kind], dtype=np.float32)})
    return stored


def test_explain_examples_never_show_a_mistake_twice():
    # Few mistakes: the first ones and the most confident ones are the same two images.
    few = _stored({"correct": list(range(100, 108)), "wrong": [3, 9], "confident_wrong": [9, 3]},
                  {"correct": [0.9] * 8, "wrong": [0.6, 0.8], "confident_wrong": [0.8, 0.6]})
    figure = draw.examples_figure(few, NAMES, {"correct": 5, "wrong": 5, "confident_wrong": 5})
    assert figure.drawn.images == {"correct": [100, 101, 102, 103, 104], "wrong": [3, 9]}  # one row of mistakes
    # More mistakes than a row: the confident row shows those the first row does not.
    many = _stored({"correct": list(range(100, 108)), "wrong": [1, 2, 4, 5, 7, 8, 11],
                    "confident_wrong": [8, 30, 2, 40, 50, 60]},
                   {"correct": [0.9] * 8, "wrong": [0.5] * 7, "confident_wrong": [0.99, 0.98, 0.97, 0.96, 0.95, 0.9]})
    figure = draw.examples_figure(many, NAMES, {"correct": 2, "wrong": 3, "confident_wrong": 3})
    shown = figure.drawn.images
    assert shown == {"correct": [100, 101], "wrong": [1, 2, 4], "confident_wrong": [8, 30, 40]}
    everything = [i for kind in ("wrong", "confident_wrong") for i in shown[kind]]
    assert len(everything) == len(set(everything))
    assert sorted(figure.tiles) == sorted(f"{kind} {i}" for kind, n in (("correct", 2), ("wrong", 3),
                                                                        ("confident_wrong", 3)) for i in range(n))


def _evaluation(examples: dict[str, np.ndarray]) -> Evaluation:
    groups = {kind: Examples(kind, examples[f"{kind}_images"], examples[f"{kind}_labels"],
                             examples[f"{kind}_predicted"], examples[f"{kind}_confidence"], examples[f"{kind}_index"])
              for kind in ("correct", "wrong", "confident_wrong")}
    return Evaluation("A/v", "val_accuracy", 0.9, 1, "run-1", 0, 1, class_names=NAMES, examples_split="test",
                      examples=groups)


def test_the_reports_examples_take_the_specs_counts_and_show_each_image_once():
    stored = _stored({"correct": list(range(100, 112)), "wrong": [21, 20, 22, 23], "confident_wrong": [23, 21]},
                     {"correct": [0.9] * 12, "wrong": [0.5] * 4, "confident_wrong": [0.9, 0.8]})
    evaluation = _evaluation(stored)
    spec = {"explain": {"examples": {"correct": 5, "wrong": 3}}}
    assert report_figures.example_counts(spec) == (5, 3)
    assert report_figures.example_counts({}) == (report_figures.EXAMPLES_PER_ROW,) * 2
    assert report_figures.example_counts({"explain": {"examples": {"wrong": 2}}}) == (5, 2)  # the spec's default
    figure = report_figures.draw_evaluation_examples(evaluation, report_figures.example_counts(spec))
    # Five correct; three mistakes: the two most confident, then the first one not shown yet.
    assert figure.drawn.images == {"correct": [100, 101, 102, 103, 104], "confident_wrong": [23, 21, 20]}
    section = report_evaluation.best_configuration(_data(evaluation, spec))
    shown = [block for block in section.blocks if isinstance(block, ReportFigure) and block.name == "examples"]
    assert shown[0].png == figure.png_bytes


def test_a_variant_has_one_colour_in_the_report_and_in_explain():
    order = ["none", "l1", "l2"]
    steps = [1, 2, 3]
    mean = {"train_accuracy": [0.5, 0.6, 0.7], "val_accuracy": [0.4, 0.5, 0.6], "train_loss": [1.0, 0.5, 0.3],
            "val_loss": [1.1, 0.7, 0.6]}
    curves = [Curve(f"A/{v}", "A", v, {}, 1, steps, mean) for v in ("l2", "none", "l1")]  # ranked
    report = report_figures.draw_overlay("A", curves, context=CurveContext(tuple(order), ("A",))).drawn
    rng = np.random.default_rng(0)
    layers = {v: [LayerWeights("conv1", "conv", rng.normal(size=50), rng.normal(size=4))] for v in ("l1", "l2", "none")}
    explain = charts.draw_histogram_overlay(layers, "A", order=order).drawn
    assert report.colours() == explain.colours() == {v: {colour_for(v, order).lower()} for v in order}
