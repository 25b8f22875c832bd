"""The figures added for graded reports, tested on what they show: the learning rate per epoch,
the metric against each swept value with its interval, per-class precision, recall and F1 beside
the confusion matrix, top-5 accuracy past 10 classes, the best configuration beside its baseline,
and vector files (--figures svg|pdf) for the Markdown report and explain."""

from __future__ import annotations

import copy
import dataclasses
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from sklearn import metrics

from cnnlab.analysis.classes import confusion_matrix
from cnnlab.analysis.comparisons import configuration_intervals
from cnnlab.api import open_store, run_study
from cnnlab.explain import explain_run
from cnnlab.explain.confusion import RunConfusion, draw_class_scores, draw_confusion_pair
from cnnlab.report import ReportError, figures_folder, write_markdown, write_report
from cnnlab.report.configuration_blocks import rate_lines, rate_plot, sweep_plot
from cnnlab.report.configuration_figures import Point, RateLine, draw_learning_rates, draw_sweep
from cnnlab.report.data import gather
from cnnlab.report.pairs import confusion_pair
from tests.conftest import TINY_STUDY

LRS = [0.001, 0.01, 0.1]


# ---------------------------------------------------------------- drawn from made-up numbers


def _sweep_points(values, means, lows=None, highs=None, variant="none"):
    lows, highs = lows or [None] * len(values), highs or [None] * len(values)
    return [Point("small", variant, {"train.optimizer.lr": v}, m, lo, hi)
            for v, m, lo, hi in zip(values, means, lows, highs)]


def test_the_sweep_plot_puts_each_configuration_at_its_swept_value_with_its_interval():
    points = (_sweep_points(LRS, [0.30, 0.90, 0.60], [0.10, 0.85, 0.0], [0.50, 0.95, 1.0])
              + _sweep_points(LRS, [0.25, 0.80, 0.70], [0.20, 0.60, 0.40], [0.30, 1.0, 1.0], "dropout"))
    plot = draw_sweep(points, "val_accuracy", ["train.optimizer.lr"], {"train.optimizer.lr": list(reversed(LRS))},
                      variants=["none", "dropout"])
    (none,) = plot.of("small/none", "val")
    assert none.x == tuple(LRS) and none.y == pytest.approx((30.0, 90.0, 60.0))
    assert none.low == pytest.approx((10.0, 85.0, 0.0)) and none.high == pytest.approx((50.0, 95.0, 100.0))
    for series in plot.series:  # every error bar within the metric's range, around its mean
        assert all(0.0 <= low <= y <= high <= 100.0 for low, y, high in zip(series.low, series.y, series.high))
    assert plot.scales[0] == ("log", "linear")  # the rates span two decades
    drawn = plot.png.drawn
    assert drawn.axes[0].xlabel == "train.optimizer.lr (log scale)" and drawn.axes[0].ylabel == "validation accuracy (%)"
    assert {line.linestyle for line in drawn.lines if line.series} == {"--"}  # validation's style
    assert drawn.colours()["small/none"] != drawn.colours()["small/dropout"]
    assert not drawn.legends_over_data()


def test_a_sweep_within_a_decade_is_linear_and_words_are_categories_in_the_specs_order():
    kernels = draw_sweep(_sweep_points([3, 5, 7], [0.5, 0.6, 0.55]), "val_accuracy", ["train.optimizer.lr"], {})
    assert kernels.scales[0] == ("linear", "linear") and kernels.series[0].x == (3.0, 5.0, 7.0)
    assert kernels.series[0].low == ()  # one run each: no error bars
    names = [Point("small", "none", {"train.optimizer.name": name}, mean) for name, mean in
             (("sgd", 0.4), ("adam", 0.7))]
    plot = draw_sweep(names, "val_loss", ["train.optimizer.name"], {"train.optimizer.name": ["adam", "sgd"]})
    assert plot.series[0].x == (0.0, 1.0) and plot.series[0].y == pytest.approx((0.7, 0.4))  # adam first, as listed
    assert {"adam", "sgd"} <= set(plot.png.drawn.text().split("\n"))


def test_the_learning_rate_figure_draws_each_stored_rate_on_a_log_axis_past_a_decade():
    step = [0.1, 0.05, 0.025, 0.0125, 0.00625]
    lines = [RateLine("A/none", "A", "none", [step, step]),
             RateLine("A/dropout", "A", "dropout", [step]),
             RateLine("A/plateau", "A", "plateau", [[0.1, 0.1, 0.01, 0.01, 0.01], [0.1, 0.1, 0.1, 0.01, 0.01]])]
    plot = draw_learning_rates(lines, variants=["none", "dropout", "plateau"])
    (shared,) = plot.of("A/none; A/dropout")  # the same rates: one line, both names
    assert shared.x == (1.0, 2.0, 3.0, 4.0, 5.0) and shared.y == pytest.approx(step)
    assert [s.y for s in plot.of("A/plateau")] == [pytest.approx(run) for run in lines[2].runs]  # each repeat
    assert plot.scales[0] == ("linear", "log") and plot.png.drawn.axes[0].ylabel == "learning rate (log scale)"
    flat = draw_learning_rates([RateLine("A/none", "A", "none", [[0.01, 0.005]])])
    assert flat.scales[0] == ("linear", "linear")


def test_precision_recall_and_f1_beside_the_confusion_equal_scikit_learns():
    confusion = np.array([[8, 2, 0], [1, 6, 3], [0, 0, 0]])
    true = np.repeat([0, 0, 1, 1, 1], [8, 2, 1, 6, 3])
    predicted = np.repeat([0, 1, 0, 1, 2], [8, 2, 1, 6, 3])
    plot = draw_class_scores(RunConfusion("A/none (run x)", "test", ["cat", "dog", "$bird$"], confusion))
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(true, predicted, labels=[0, 1, 2], zero_division=0)
    np.testing.assert_allclose(plot.images["scores"], 100 * np.column_stack([precision, recall, f1]))
    np.testing.assert_allclose(plot.images["confusion"][1], [10.0, 60.0, 30.0])  # % of the true class
    drawn = plot.png.drawn
    assert [scale.label for scale in drawn.scales] == ["% of the true class's images", "precision, recall, F1 (%)"]
    assert r"\$bird\$" in drawn.text() and "top-5" not in drawn.text()  # a name, not mathematics
    assert "top-1 accuracy 100.0%, top-5 90.0%" in draw_class_scores(
        RunConfusion("B", "test", [str(i) for i in range(12)], np.eye(12, dtype=int), 0.9)).png.drawn.text()
    pair = draw_confusion_pair(RunConfusion("best", "val", ["a", "b"], np.array([[3, 1], [0, 4]])),
                               RunConfusion("baseline", "val", ["a", "b"], np.array([[1, 3], [2, 2]])))
    np.testing.assert_allclose(pair.images["baseline"], [[25.0, 75.0], [50.0, 50.0]])
    assert len(pair.png.drawn.scales) == 1  # one colour scale for both


# ---------------------------------------------------------------- a real study


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory):
    """2 variants x 3 rates x 2 repeats, the rate halved every epoch; the report sets the best
    configuration beside its baseline."""
    study = copy.deepcopy(TINY_STUDY)
    study.update(name="lr_sweep", repeats=2, sweep={"train.optimizer.lr": LRS},
                 explain={"confusion": ["best", "baseline"]})
    study["train"].update(epochs=3, schedule={"name": "step", "every": 1, "factor": 0.5})
    out = tmp_path_factory.mktemp("lr-sweep")
    assert run_study(study, out).outcome.ok
    with open_store(out) as store:
        data = gather(store)
        stored = {run.id: [epoch["lr"] for epoch in store.epochs(run.id)] for run in store.runs()}
    return out, data, stored


def test_the_reports_learning_rates_are_the_stored_ones(lr_sweep):
    _, data, stored = lr_sweep
    lines = rate_lines(data)
    assert len(lines) == 6 and all(len(line.runs) == 2 for line in lines)
    plot = rate_plot(data)
    drawn = [list(series.y) for series in plot.series]
    for run_id, rates in stored.items():
        assert rates[1] == pytest.approx(rates[0] / 2)  # the schedule did change the rate
        assert any(y == pytest.approx(rates) for y in drawn), f"run {run_id}'s rates {rates} are not drawn"
    assert plot.scales[0][1] == "log"


def test_the_reports_sweep_plot_shows_the_analysis_intervals_at_the_swept_values(lr_sweep):
    _, data, _ = lr_sweep
    plot = sweep_plot(data, ["train.optimizer.lr"])
    intervals = configuration_intervals([r for r in data.analysis.results if r.phase == "select"], "val_accuracy")
    for variant in ("none", "dropout"):
        (series,) = plot.of(f"small/{variant}", "val")
        assert series.x == tuple(LRS)
        for lr, y, low, high in zip(LRS, series.y, series.low, series.high):
            interval = intervals[f"small/{variant} train.optimizer.lr={lr}"]
            assert (y, low, high) == pytest.approx((100 * interval.mean, 100 * interval.low, 100 * interval.high))
            assert 0.0 <= low <= y <= high <= 100.0


def test_the_best_configuration_is_set_beside_its_baseline_on_one_split(lr_sweep):
    out, data, _ = lr_sweep
    best = data.evaluation.configuration
    other = "dropout" if " none " in f" {best.split('/')[1]} " or best.startswith("small/none") else "none"
    # Whichever variant won, name the other as the baseline, so that there is a pair to draw.
    spec = {**data.study.spec, "evaluate": {**(data.study.spec.get("evaluate") or {}), "baseline": other}}
    asked = dataclasses.replace(data, study=dataclasses.replace(data.study, spec=spec))
    with open_store(out) as store:
        (first, second), reason = confusion_pair(store, asked)
        assert reason is None and first.split == second.split == "test"
        assert second.label.startswith(f"baseline: small/{other} ")
        for run in (first, second):
            run_id = run.label.rsplit("run ", 1)[1].rstrip(")")
            found = store.load_predictions(run_id).splits["test"]
            np.testing.assert_array_equal(run.confusion, confusion_matrix(found.labels, found.probabilities, 10))
    # With the winner as its own baseline there is no pair, and the report says why.
    winner = dataclasses.replace(data.study, spec={**spec, "evaluate": {"baseline": best.split("/")[1].split(" ")[0]}})
    with open_store(out) as store:
        pair, reason = confusion_pair(store, dataclasses.replace(data, study=winner))
    assert pair is None and "is its architecture's baseline variant" in reason


def _svg_root(path):
    root = ElementTree.parse(path).getroot()
    assert root.tag.endswith("svg"), f"{path} is not an SVG ({root.tag})"
    return root


def test_figures_svg_writes_vector_figures_that_parse_and_the_markdown_links_them(lr_sweep, tmp_path):
    out, _, _ = lr_sweep
    path = write_report(out, tmp_path / "report.md", format="md", figures="svg")
    files = sorted(figures_folder(path).iterdir())
    assert files and {f.suffix for f in files} == {".svg"}
    for file in files:
        _svg_root(file)
        assert f"report_figures/{file.name})" in path.read_text()
    assert any("learning-rate" in f.name for f in files) and any("sweep" in f.name for f in files)
    assert any("class-scores" in f.name for f in files)
    # A rebuild drops figures of ours in any format that it no longer has, and nothing else.
    (figures_folder(path) / "98-old-figure.pdf").write_bytes(b"%PDF")
    (figures_folder(path) / "notes.svg").write_text("the user's own")
    write_markdown(path, lr_sweep[1], [])
    assert sorted(f.name for f in figures_folder(path).iterdir()) == ["notes.svg"]
    with pytest.raises(ReportError, match="add --format md"):
        write_report(out, tmp_path / "r.html", figures="svg")


def test_explain_writes_its_figures_as_svg_or_pdf(lr_sweep, tmp_path):
    out, data, _ = lr_sweep
    paths = explain_run(out, data.evaluation.run_id, what="confusion,filters", out_folder=tmp_path, figures="svg")
    assert [p.name for p in paths] == ["confusion.svg", "filters_conv1.svg"]
    root = _svg_root(paths[0])
    assert root.find(".//{http://www.w3.org/2000/svg}path") is not None  # lines and glyphs, not only a picture
    (pdf,) = explain_run(out, data.evaluation.run_id, what="confusion", out_folder=tmp_path, figures="pdf")
    assert pdf.name == "confusion.pdf" and pdf.read_bytes().startswith(b"%PDF")


# ---------------------------------------------------------------- more than 10 classes


@pytest.fixture(scope="module")
def twelve_classes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twelve")
    rng = np.random.default_rng(0)
    labels = np.arange(480) % 12
    images = (rng.integers(0, 60, (480, 8, 8)) + 15 * labels[:, None, None]).astype(np.uint8)
    np.savez(folder / "twelve.npz", x_train=images[:360], y_train=labels[:360], x_test=images[360:],
             y_test=labels[360:])
    study = copy.deepcopy(TINY_STUDY)
    study.update(name="twelve", variants={"none": {}},
                 dataset={"name": "npz", "path": str(folder / "twelve.npz")})
    study["architectures"]["small"][-1] = {"dense": 12}
    study["train"]["epochs"] = 2
    out = folder / "out"
    assert run_study(study, out).outcome.ok
    return out


def test_top_5_accuracy_of_a_twelve_class_run_is_computed_from_its_stored_predictions(twelve_classes):
    with open_store(twelve_classes) as store:
        data = gather(store)
        found = store.load_predictions(data.evaluation.run_id).splits[data.evaluation.split]
    ranks = [(-row).argsort(kind="stable").tolist().index(label) for row, label in zip(found.probabilities, found.labels)]
    assert data.evaluation.top_k == pytest.approx(sum(rank < 5 for rank in ranks) / len(ranks))
    text = write_report(twelve_classes, format="md").read_text()
    assert f"top-5 {100 * data.evaluation.top_k:.1f}%" in text


def test_cnnlab_explain_draws_the_confusion_of_the_best_run_a_run_or_a_configuration(lr_sweep, tmp_path, capsys):
    from cnnlab.cli.main import main

    out, data, _ = lr_sweep
    label = "small/dropout train.optimizer.lr=0.1"
    assert main(["explain", str(out), "--what", "confusion", "--config", label, "--figures", "svg",
                 "--out", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(tmp_path / "c" / "confusion.svg") and f"explaining {label} by its run" in printed.err
    chosen = printed.err.split("by its run ")[1].split(" ")[0]
    with open_store(out) as store:
        assert store.run(chosen).variant == "dropout" and store.run(chosen).sweep == {"train.optimizer.lr": 0.1}
    _svg_root(tmp_path / "c" / "confusion.svg")
    assert main(["explain", str(out), "--what", "confusion", "--best", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "confusion.png").read_bytes().startswith(b"\x89PNG")
    capsys.readouterr()
    assert main(["explain", str(out), "--what", "confusion", "--config", "small/nothing"]) == 2
    error = capsys.readouterr().err
    assert "no finished configuration 'small/nothing'" in error and "Traceback" not in error
    assert error.count("\n") == 1  # one paragraph
