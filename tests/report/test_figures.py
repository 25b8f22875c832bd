"""The report's own figures from synthetic data (no training): any class count, names that
matplotlib would otherwise read as mathematics, curves with gaps; and what they show, read back
from the drawn figures: a colour per variant whatever the ranking, a line style per split, bands
and axes within the metric's range, legends off the data, labelled axes, readable text, notes
beside the curves a known effect explains. The examples grid is the figure kit's
(tests/figures/test_examples.py)."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest

from cnnlab.figures import DPI, MIN_FONT, colour_for
from cnnlab.report.data import Curve
from cnnlab.report.document import Figure
from cnnlab.report.figures import draw_confusion, draw_overlay, draw_small_multiples
from cnnlab.report.known_effects import CurveContext, Effect, curve_context
from cnnlab.spec import expand, parse_study
from tests.conftest import TINY_STUDY

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


SPEC_ORDER = ("none", "l2", "dropout", "batchnorm")


def _ranked(architecture: str, order: tuple[str, ...], repeats: int = 1) -> list[Curve]:
    """One architecture's curves in a ranking's order, each variant a little different."""
    curves = []
    for i, variant in enumerate(order):
        curve = _curve(f"{architecture}/{variant}", 6, repeats=repeats)
        curve.mean["val_accuracy"] = [v - 0.02 * i for v in curve.mean["val_accuracy"]]
        curves.append(curve)
    return curves


def test_a_variant_keeps_its_colour_in_every_figure_whatever_the_ranking():
    context = CurveContext(SPEC_ORDER, ("A", "B"))
    first = draw_overlay("A", _ranked("A", ("dropout", "none", "batchnorm", "l2")), context=context).drawn
    second = draw_overlay("B", _ranked("B", ("batchnorm", "l2", "none", "dropout")), context=context).drawn
    panels = draw_small_multiples(_ranked("A", ("l2", "batchnorm", "dropout", "none")), "accuracy",
                                  context=context).drawn
    expected = {variant: {colour_for(variant, SPEC_ORDER).lower()} for variant in SPEC_ORDER}
    assert first.colours() == second.colours() == panels.colours() == expected
    assert len({next(iter(c)) for c in expected.values()}) == 4
    # The legend names each variant in its colour, in the spec's order.
    legend = [entry for entry in first.legends[0].entries if entry[0] in SPEC_ORDER]
    assert [(label, colour) for label, colour, _ in legend] == [(v, colour_for(v, SPEC_ORDER).lower())
                                                              for v in SPEC_ORDER]


def test_train_is_solid_and_validation_dashed_in_every_figure_and_the_legend_says_so():
    curves = _ranked("A", ("none", "l2"))
    for drawn in (draw_small_multiples(curves, "accuracy").drawn, draw_small_multiples(curves, "loss").drawn,
                  draw_overlay("A", curves).drawn):
        assert drawn.styles() == {"train": {"-"}, "val": {"--"}}
        entries = {label: style for legend in drawn.legends for label, _, style in legend.entries}
        assert entries["train (solid)"] == "-" and entries["validation (dashed)"] == "--"


def test_bands_and_axes_stay_within_the_metrics_range():
    curve = _curve("A/none", 6, repeats=3)
    curve.low = {key: [-0.3 if "accuracy" in key else -0.5] * 6 for key in curve.mean}  # past 0
    curve.high = {key: [1.2 if "accuracy" in key else 3.0] * 6 for key in curve.mean}  # past 100%
    for drawn in (draw_small_multiples([curve], "accuracy").drawn, draw_overlay("A", [curve, _curve("A/l2", 6)]).drawn):
        accuracy = [i for i, axes in enumerate(drawn.axes) if axes.ylabel == "accuracy (%)"]
        bands = [band for band in drawn.bands if band.axes in accuracy]
        assert bands and all(0 <= band.y_range[0] <= band.y_range[1] <= 100 for band in bands)
        assert all(0 <= drawn.axes[i].ylim[0] <= drawn.axes[i].ylim[1] <= 100 for i in accuracy)
        lines = [line for line in drawn.lines if line.axes in accuracy and line.split]
        assert all(0 <= line.y_range[0] <= line.y_range[1] <= 100 for line in lines)
    loss = draw_small_multiples([curve], "loss").drawn
    assert loss.bands and all(band.y_range[0] >= 0 for band in loss.bands)
    assert loss.axes[0].yscale == "log" and loss.axes[0].ylim[0] > 0


def test_legends_lie_outside_the_data_every_axis_is_labelled_and_text_is_readable():
    curves = [_curve(f"A/v{i} conv.kernel=5", 6, repeats=2) for i in range(5)] + [_curve("B/v1", 6, missing_val=True)]
    figures = [draw_small_multiples(curves, "accuracy"), draw_small_multiples(curves, "loss"),
               draw_overlay("A", curves[:5]), draw_confusion(np.eye(3, dtype=int) * 5, ["a", "b", "c"], "test"),
               draw_confusion(np.eye(30, dtype=int) * 5, [f"c{i}" for i in range(30)], "test")]
    for png in figures:
        drawn = png.drawn
        assert drawn.legends_over_data() == [] and drawn.cut_off() == []
        assert drawn.smallest_font >= MIN_FONT
    for png in figures[2:]:  # axes of their own: each labelled on both
        assert all(axes.xlabel and axes.ylabel for axes in png.drawn.axes if axes.kind == "data")
    # Small multiples share their axes: the bottom panel of each column and the first of each row say them.
    panels = figures[0].drawn.axes
    assert [axes.xlabel for axes in panels].count("epoch") == 4 and [axes.ylabel for axes in panels].count(
        "accuracy (%)") == 2
    assert {axes.xlabel for axes in panels if axes.xlabel} == {"epoch"}
    assert {axes.ylabel for axes in figures[1].drawn.axes if axes.ylabel} == {"loss (log scale)"}
    assert {scale.label for scale in figures[4].drawn.scales} == {"images", "% of the true class"}
    assert "no validation curve" in figures[0].drawn.notes  # the panel that has none says so


def test_a_known_effect_is_said_beside_its_curve_and_explained_under_the_figure():
    warmup = Effect("batchnorm_warmup", "batch-norm warm-up: 38 steps/epoch", "Batch-norm warm-up, not a bug: ...")
    curves = _ranked("A", ("none", "batchnorm"))
    context = CurveContext(("none", "batchnorm"), ("A",), {"A/batchnorm": (warmup,)})
    panels = draw_small_multiples(curves, "accuracy", context=context).drawn
    assert panels.notes == [warmup.short, warmup.long]
    overlay = draw_overlay("A", curves, context=context).drawn
    assert overlay.notes == [warmup.long]
    assert any(label == f"batchnorm ({warmup.short})" for legend in overlay.legends for label, _, _ in legend.entries)
    assert draw_small_multiples(curves, "accuracy").drawn.notes == []  # no effect, no note


def _report_data(study: dict, phase: str = "select") -> SimpleNamespace:
    configs = expand(parse_study(study))
    runs, curves = [], []
    for config in configs:
        if config.repeat:
            continue
        label = config.label.replace(" (final)", "") + (" (final)" if phase == "final" else "")
        runs.append(SimpleNamespace(done=True, architecture=config.architecture, variant=config.variant,
                                    sweep=config.sweep, phase=phase, config=config.model_dump(mode="json"),
                                    split_sizes={"train": 400}))
        curves.append(_curve(label, 6, missing_val=phase == "final"))
    return SimpleNamespace(spec=study, runs=runs, curves=curves)


def test_batch_norm_with_few_steps_an_epoch_and_a_final_retrain_get_their_notes():
    study = copy.deepcopy(TINY_STUDY)
    study["variants"] = {"none": {}, "dropout": {"dropout": 0.25}, "batchnorm": {"batchnorm": True}}
    context = curve_context(_report_data(study))
    assert context.variants == ("none", "dropout", "batchnorm") and context.architectures == ("small",)
    steps = math.ceil(400 / 32)
    (effect,) = context.effects["small/batchnorm"]
    assert effect.kind == "batchnorm_warmup" and effect.short == f"batch-norm warm-up: {steps} steps/epoch"
    assert f"{100 * 0.99 ** steps:.0f}%" in effect.long and set(context.effects) == {"small/batchnorm"}
    study["train"]["batch_size"] = 2  # 200 steps an epoch: the moving statistics keep up
    assert curve_context(_report_data(study)).effects == {}
    final = curve_context(_report_data(study, phase="final"))
    assert {effect.kind for found in final.effects.values() for effect in found} == {"final_retrain"}
    drawn = draw_small_multiples(_report_data(study, phase="final").curves, "accuracy", context=final).drawn
    assert "final retrain: no validation curve" in drawn.notes
