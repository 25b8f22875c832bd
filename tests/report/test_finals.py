"""The finals in the report, as a user reads them: one block per final (study B retrains two) with
the rule that chose it, what it trained on and for how long, its test result and its train and
test curves (test dotted, said to be measured after the choice); the warning when validation was
the test split (study C); losses with the kernel penalty added only when the spec asks (Keras')."""

from __future__ import annotations

import copy
import dataclasses
import html
import re
from pathlib import Path

import pytest

from cnnlab.api import open_store, run_study
from cnnlab.report import write_report
from cnnlab.report.data import gather
from cnnlab.report.document import Figure, build_sections
from cnnlab.spec.plan import configuration_label
from tests.conftest import TINY_STUDY

MEASURED_AFTER = "measured after the choice was made"
WARNING = "Warning: validation = test split."


def _study(name: str, **evaluate) -> dict:
    study = copy.deepcopy(TINY_STUDY)
    study["name"] = name
    study["train"]["epochs"] = 3
    # Every candidate carries an L2 penalty, so each final's Keras-style loss differs from the stored one.
    study["variants"] = {"l2": {"l2": 0.01}, "l2drop": {"l2": 0.01, "dropout": 0.25},
                         "l2heavy": {"l2": 0.05}, "decay": {"l2": 0.01, "candidate": False}}
    study["evaluate"] = evaluate
    return study


def _train(study: dict, out: Path) -> Path:
    result = run_study(study, out)
    assert result.outcome.ok, result.outcome.describe()
    return out


@pytest.fixture(scope="module")
def finals_store(tmp_path_factory) -> Path:
    """Study B's protocol in small: the best on validation accuracy, then the smallest gap among the
    rest, each retrained on train+val for a fixed 2 epochs, losses shown as Keras reports them."""
    return _train(_study("two-finals", retrain_on="train+val", finals=["val_accuracy", "gap"], final_epochs=2,
                         keras_loss=True), tmp_path_factory.mktemp("finals"))


@pytest.fixture(scope="module")
def on_test_store(tmp_path_factory) -> Path:
    """Study C's protocol: no validation split, the test split serves as the per-epoch validation data."""
    study = _study("validated-on-test", validate_on="test")
    study["dataset"]["split"] = {"train": 400, "val": 0, "test": 200}
    return _train(study, tmp_path_factory.mktemp("on-test"))


class _SpecSays:
    """The same store, its study's stored spec with some ``evaluate`` settings changed: the same runs
    reported with and without a setting that only changes how the report reads them."""

    def __init__(self, store, **evaluate) -> None:
        self._store, self._evaluate = store, evaluate

    def __getattr__(self, name):
        return getattr(self._store, name)

    def study(self, name=None):
        record = self._store.study(name)
        spec = copy.deepcopy(record.spec)
        spec["evaluate"].update(self._evaluate)
        return dataclasses.replace(record, spec=spec)


def _visible(path: Path) -> str:
    """The report's text as a browser shows it: tags and scripts gone, one space between words."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _section(sections, anchor: str):
    return next(section for section in sections if section.anchor == anchor)


def _final_figures(sections) -> list[Figure]:
    return [figure for figure in _section(sections, "best").figures() if figure.name.startswith("final-")]


# ---------------------------------------------------------------- the finals


def test_each_final_has_its_block_its_rule_its_training_and_its_test_result(finals_store):
    with open_store(finals_store) as store:
        data = gather(store)
        runs = {run.id: run for run in store.runs()}
    first, second = data.finals
    assert (first.number, first.rule, second.number, second.rule) == (1, "val_accuracy", 2, "gap")
    assert first.configuration != second.configuration  # the second is chosen among those not chosen before
    assert {"decay"}.isdisjoint({first.curve.variant, second.curve.variant})  # candidate: false, never chosen
    text = _visible(write_report(finals_store))
    for final in (first, second):
        run = runs[final.run_id]
        assert run.phase == "final" and run.config["merge_val"] and run.epochs_done == 2
        assert f"Final {final.number} of 2: {final.configuration}" in text
        assert f"accuracy {100 * run.test_accuracy:.2f}%" in text  # its own test result, beside its block
    assert "Chosen by the best validation accuracy, among the candidates: " in text
    assert ("Chosen by the smallest train-validation gap (train minus validation accuracy at the best epoch, closest to zero either way), "
            "among the candidates not chosen before: ") in text
    assert text.count("The final retrain trained on train+val for 2 epochs (as evaluate.final_epochs says), without "
                      "early stopping (no validation data is left to watch), with a constant learning rate of 0.01 "
                      "(600 images).") == 2
    assert "never candidates (candidate: false), trained and shown but never chosen: decay." in text
    # The findings name both finals' test results, not the first alone.
    assert f"{first.configuration} retrained on train+val for 2 epochs" in text
    assert f"{second.configuration} (a further final) retrained on train+val for 2 epochs" in text


def test_each_final_draws_its_train_curve_solid_and_its_test_curve_dotted_measured_after_the_choice(finals_store):
    with open_store(finals_store) as store:
        data = gather(store)
        sections = build_sections(data)
        stored = {final.run_id: store.epochs(final.run_id) for final in data.finals}
    figures = _final_figures(sections)
    assert len(figures) == 2
    for final, figure in zip(data.finals, figures):
        drawn = figure.png.drawn
        assert drawn.styles() == {"train": {"-"}, "test": {":"}}  # no validation split left in a train+val retrain
        test_accuracy = [line for line in drawn.lines if line.split == "test" and drawn.axes[line.axes].title == "Accuracy"]
        measured = [100 * epoch["test_accuracy"] for epoch in stored[final.run_id]]
        assert [line.y_range for line in test_accuracy] == [pytest.approx((min(measured), max(measured)))]
        assert MEASURED_AFTER in " ".join(drawn.notes)
        assert "test (dotted), measured after the choice" in [entry[0] for entry in drawn.legends[0].entries]
        assert MEASURED_AFTER in figure.caption and "never used for any choice" in figure.caption


# ---------------------------------------------------------------- validation on the test split


def test_validation_on_the_test_split_is_warned_of_at_the_top_and_beside_every_choice(on_test_store, finals_store):
    path = write_report(on_test_store)
    text = _visible(path)
    assert text.count(WARNING) == 4  # the study header, the results, the learning curves, the best configuration
    assert text.index(WARNING) < text.index("Study validated-on-test")  # the header's first words, above its facts
    assert "Chosen on validation, which was the test split; these are measured on the test split, which the " \
           "choice saw." in text
    assert "validation = test split 200, test 200" in text
    assert "Accuracy per configuration: train (solid) and validation = test split (dashed)" in text
    with open_store(on_test_store) as store:
        sections = build_sections(gather(store))
    panels = _section(sections, "curves").figures()[0].png.drawn
    assert "validation = test split (dashed)" in [entry[0] for entry in panels.legends[0].entries]
    assert "validation (dashed)" not in [entry[0] for entry in panels.legends[0].entries]
    assert "validation = test split" not in _visible(write_report(finals_store))
    # Drawn as a warning (boxed), not as body text, in HTML and Markdown alike.
    assert path.read_text().count('<p class="warning" role="note">' + WARNING) == 4
    markdown = write_report(on_test_store, format="md").read_text()
    assert markdown.count("> **" + WARNING) == 4


# ---------------------------------------------------------------- Keras-style losses


def test_losses_include_the_penalty_only_when_the_spec_asks(finals_store):
    with open_store(finals_store) as store:
        keras = gather(store)
        plain = gather(_SpecSays(store, keras_loss=False))
        runs = {run.id: run for run in store.runs()}
        histories = {run_id: store.epochs(run_id) for run_id in runs}
    for with_penalty, without in zip(keras.curves, plain.curves):
        (run_id,) = [r for r in runs if _label(runs[r]) == with_penalty.configuration]
        history = histories[run_id]
        for key in ("train_loss", "val_loss", "test_loss"):
            stored = [epoch.get(key) for epoch in history]
            assert without.mean[key] == stored  # the stored values, as they are
            assert with_penalty.mean[key] == [None if v is None else pytest.approx(v + e["penalty"])
                                              for v, e in zip(stored, history)]
        assert all(epoch["penalty"] > 0 for epoch in history)  # every variant here has an L2 penalty
    for with_penalty, without in zip(keras.finals, plain.finals):
        assert without.test_loss == runs[without.run_id].test_loss
        assert with_penalty.test_loss == pytest.approx(without.test_loss + histories[without.run_id][-1]["penalty"])
    # What a user reads: the caption and the axis say what the losses are, with the penalty or without.
    for data, words, axis in ((keras, "loss incl. L2 penalty, as Keras reports it.", "loss + L2 penalty (log scale)"),
                              (plain, "loss (cross-entropy, without the weight penalty).", "loss (log scale)")):
        loss = _section(build_sections(data), "curves").figures()[1]
        assert loss.caption.endswith(words)
        assert {axes.ylabel for axes in loss.png.drawn.axes if axes.ylabel} == {axis}
    # The results table: each loss column is the rows' stored loss plus its last epoch's penalty.
    for data, header, add in ((keras, "val loss + penalty", True), (plain, "val loss", False)):
        table = next(b for b in _section(build_sections(data), "results").blocks
                     if getattr(b, "anchor", None) == "results-table")
        column = table.columns.index(header)
        checked = 0
        for cells, row in zip(table.rows, data.rows):
            if row.val_loss is not None:  # a final on train+val has no validation loss
                assert row.penalty > 0
                assert cells[column].sort == pytest.approx(row.val_loss + (row.penalty if add else 0.0), abs=1e-4)
                checked += 1
        assert checked >= 2
    drawn = _section(build_sections(keras), "curves").figures()[1].png.drawn
    first = keras.curves[0]
    (train_line,) = [line for line in drawn.lines if line.split == "train" and line.axes == 0]
    shown = [v for v in first.mean["train_loss"] if v is not None]
    assert train_line.y_range == pytest.approx((min(shown), max(shown)))


def _label(run) -> str:
    return configuration_label(run.architecture, run.variant, run.sweep or {}, run.phase)
