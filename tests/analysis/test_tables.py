"""The results table on hand-made run records (no training): one row per configuration with the
means over its finished repeats, the runs that did not finish counted by status, the 95% interval
after each accuracy, the sort order, every cell as printed, and the note on earlier runs."""

from __future__ import annotations

import dataclasses
import math

import pytest

from cnnlab.analysis.tables import (
    RESULT_COLUMNS, ResultRow, earlier_runs_note, format_results, interval_suffix, result_cells, result_rows,
)
from cnnlab.records import RunRecord
from tests.analysis.stored_runs import run_record

SWEEP = {"conv.kernel": 3, "dense": 32}


def _record(run_id: str, variant: str = "none", *, status: str = "done", sweep=SWEEP, phase: str = "select",
            **metrics) -> RunRecord:
    return run_record(**{"id": run_id, "variant": variant, "sweep": sweep, "phase": phase, "status": status,
                         **metrics})


def _repeats() -> list[RunRecord]:
    """Three finished repeats of one configuration and a fourth that failed."""
    return [
        _record("r0", train_accuracy=0.95, val_accuracy=0.90, train_loss=0.2, val_loss=0.3, train_seconds=10.0,
                best_epoch=1, epochs_done=3, params_total=12345, params_trainable=12000, params_non_trainable=345),
        _record("r1", train_accuracy=0.96, val_accuracy=0.91, train_loss=0.1, val_loss=0.25, train_seconds=11.0,
                best_epoch=2, epochs_done=4, params_total=12345),
        # The same sweep point written in another key order is the same configuration.
        _record("r2", sweep={"dense": 32, "conv.kernel": 3}, train_accuracy=0.97, val_accuracy=0.92, train_loss=0.15,
                val_loss=0.35, train_seconds=12.0, best_epoch=3, epochs_done=5, params_total=12345),
        _record("r3", status="failed", params_total=12345),
    ]


def test_a_row_averages_the_finished_repeats_and_counts_every_run():
    (row,) = result_rows(_repeats())
    assert row.configuration == "net/none conv.kernel=3 dense=32"
    assert (row.architecture, row.variant, row.sweep, row.phase) == ("net", "none", SWEEP, "select")
    assert (row.runs, row.done, row.statuses) == (4, 3, {"done": 3, "failed": 1})
    assert row.run_ids == ["r0", "r1", "r2", "r3"]
    assert (row.params_total, row.params_trainable, row.params_non_trainable) == (12345, 12000, 345)
    assert row.train_accuracy == pytest.approx(0.96) and row.val_accuracy == pytest.approx(0.91)
    assert row.train_loss == pytest.approx(0.15) and row.val_loss == pytest.approx(0.3)
    assert row.train_seconds == pytest.approx(11.0)
    assert row.test_accuracy is None and row.test_loss is None
    assert row.best_epoch == 3.0  # stored 0-based (1, 2, 3), shown 1-based
    assert row.epochs == 4.0
    assert row.gap == pytest.approx(0.05)  # train minus validation accuracy


def test_the_interval_covers_each_metric_with_several_values_but_not_the_time():
    (row,) = result_rows(_repeats())
    assert set(row.ci) == {"train_accuracy", "val_accuracy", "train_loss", "val_loss"}
    # The 95% t-interval over the three repeats: 0.91 ± t(0.975, 2) · 0.01 / √3.
    half = 4.302652729911275 * 0.01 / math.sqrt(3)
    assert row.ci["val_accuracy"] == pytest.approx((0.91 - half, 0.91 + half))
    two = result_rows(_repeats()[:2])[0]  # two values are enough for an interval
    assert set(two.ci) == {"train_accuracy", "val_accuracy", "train_loss", "val_loss"}
    one = result_rows(_repeats()[:1])[0]  # one value gives none
    assert one.ci == {} and one.val_accuracy == 0.90


def test_values_that_are_missing_or_not_a_number_are_left_out_of_the_mean():
    runs = [_record("a", val_accuracy=0.8, val_loss=0.4, best_epoch=None, epochs_done=2),
            _record("b", val_accuracy=0.9, val_loss=float("nan"), best_epoch=4, epochs_done=5)]
    (row,) = result_rows(runs)
    assert row.val_accuracy == pytest.approx(0.85)
    assert row.val_loss == 0.4
    assert row.best_epoch == 5.0 and row.epochs == 3.5
    assert row.train_accuracy is None and row.gap is None  # no train accuracy: no gap either


def test_a_configuration_with_no_finished_run_has_counts_and_no_numbers():
    runs = [_record("a", status="diverged", sweep=None), _record("b", status="failed", sweep=None),
            _record("c", status="diverged", sweep=None)]
    (row,) = result_rows(runs)
    assert row.configuration == "net/none" and row.sweep == {}
    assert (row.runs, row.done, row.statuses) == (3, 0, {"diverged": 2, "failed": 1})
    assert row.val_accuracy is None and row.best_epoch is None and row.epochs is None and row.ci == {}


def _accuracies(run_id: str, variant: str, val, train, **changes) -> RunRecord:
    return _record(run_id, variant, sweep={}, val_accuracy=val, train_accuracy=train, **changes)


def test_rows_sort_by_validation_accuracy_then_training_accuracy_unfinished_and_retrains_last():
    runs = [
        _accuracies("f", "best", None, None, phase="final", test_accuracy=0.99),
        _accuracies("u", "unfinished", None, None, status="running"),
        _accuracies("z", "zero", 0.0, 0.0),
        _accuracies("t", "tied-low", 0.9, 0.92),
        _accuracies("m", "middle", 0.8, 0.95),
        _accuracies("h", "tied-high", 0.9, 0.97),
        _accuracies("w", "weak", 0.0, 0.05),
    ]
    assert [row.variant for row in result_rows(runs)] == [
        "tied-high", "tied-low", "middle", "weak", "zero", "unfinished", "best"]
    assert result_rows(runs)[-1].configuration == "net/best (final)"
    assert result_rows(runs)[-1].phase == "final"


def test_a_retrain_is_its_own_row_apart_from_the_repeats_it_retrains():
    runs = [_accuracies("a", "none", 0.9, 0.95), _accuracies("b", "none", None, None, phase="final",
                                                                test_accuracy=0.93)]
    rows = result_rows(runs)
    assert [(row.configuration, row.phase, row.runs) for row in rows] == [
        ("net/none", "select", 1), ("net/none (final)", "final", 1)]
    assert rows[1].test_accuracy == 0.93


def test_a_symmetric_interval_prints_its_half_width_and_a_clipped_one_its_ends():
    assert interval_suffix(0.9, None) == ""
    assert interval_suffix(0.9, (0.88, 0.92)) == " ± 2.00"  # accuracies in percent by default
    assert interval_suffix(0.9, (0.85, 0.92)) == " (85.00 to 92.00)"
    assert interval_suffix(0.99, (0.97, 1.0)) == " (97.00 to 100.00)"  # clipped at 100%
    assert interval_suffix(0.3, (0.25, 0.35), scale=1.0) == " ± 0.05"  # a loss, as it is


def test_symmetric_means_within_a_billionth_of_the_mean_not_of_the_display():
    # Rounding noise far below the printed digits still reads as symmetric ...
    assert interval_suffix(0.9, (0.88 - 2e-10, 0.92)) == " ± 2.00"
    # ... while an interval off-centre by 1.5e-9 of a mean below 1 prints its ends.
    assert interval_suffix(0.5, (0.2, 0.8 + 3e-9), scale=1.0) == " (0.20 to 0.80)"


def _row(**changes) -> ResultRow:
    row = ResultRow("net/none", "net", "none", {}, runs=3, done=3, statuses={"done": 3})
    return dataclasses.replace(row, **changes)


def test_the_cells_of_a_row_as_printed():
    (row,) = result_rows(_repeats())
    assert result_cells(row) == ["net/none conv.kernel=3 dense=32", "3/4 (1 failed)", "12,345", "11.0", "3.0",
                                 "96.00 ± 2.48", "91.00 ± 2.48", "", "0.1500", "0.3000", "+5.00"]
    assert len(result_cells(row)) == len(RESULT_COLUMNS)
    assert result_cells(_row()) == ["net/none", "3", "", "", "", "", "", "", "", "", ""]
    final = _row(test_accuracy=0.9312, train_loss=0.123456, gap=-0.012, train_seconds=3.25, best_epoch=2.5)
    assert result_cells(final) == ["net/none", "3", "", "3.2", "2.5", "", "", "93.12", "0.1235", "", "-1.20"]


def test_runs_that_did_not_finish_are_named_by_status_in_the_runs_cell():
    assert result_cells(_row())[1] == "3"
    running = _row(runs=3, done=1, statuses={"running": 1, "done": 1, "diverged": 1})
    assert result_cells(running)[1] == "1/3 (1 diverged, 1 running)"
    assert result_cells(_row(runs=2, done=0, statuses={"failed": 2}))[1] == "0/2 (2 failed)"


def test_the_results_table_with_its_title_and_notes():
    rows = result_rows(_repeats()) + [_row(configuration="net/none (final)", test_accuracy=0.9312, phase="final")]
    text = format_results(rows, title="Study 's' in out: 5 runs")
    assert text.splitlines() == [
        "Study 's' in out: 5 runs",
        "configuration                              runs  params  time s  best ep   train acc %     val acc %"
        "  test acc %  train loss  val loss  gap pts",
        "-------------------------------  --------------  ------  ------  -------  ------------  ------------"
        "  ----------  ----------  --------  -------",
        "net/none conv.kernel=3 dense=32  3/4 (1 failed)  12,345    11.0      3.0  96.00 ± 2.48  91.00 ± 2.48"
        "                  0.1500    0.3000    +5.00",
        "net/none (final)                              3                                                            93.12",
        "Sorted by validation accuracy; accuracies are means ± the half-width of a 95% t-interval over seeds "
        "(corrected resampled t over folds), or the interval itself where 0-100% clips it; test numbers are never "
        "used to choose.",
    ]


def test_a_table_without_intervals_or_test_numbers_says_only_how_it_is_sorted():
    text = format_results([_row(val_accuracy=0.9)])
    lines = text.splitlines()
    assert lines[0].startswith("configuration") and lines[1].startswith("--------")
    assert lines[2].startswith("net/none") and "90.00" in lines[2]
    assert lines[-1] == "Sorted by validation accuracy."
    assert format_results([]).splitlines()[-1] == "Sorted by validation accuracy."


def test_a_row_as_plain_data_for_json():
    (row,) = result_rows(_repeats())
    data = row.to_dict()
    assert data["configuration"] == "net/none conv.kernel=3 dense=32" and data["statuses"] == {"done": 3, "failed": 1}
    assert data["val_accuracy"] == pytest.approx(0.91) and set(data["ci"]) == set(row.ci)
    assert data["run_ids"] == ["r0", "r1", "r2", "r3"] and data["phase"] == "select"


def test_the_note_on_runs_of_earlier_versions_names_how_many_and_the_commands():
    assert earlier_runs_note(0, "out") == ""
    assert earlier_runs_note(1, "out") == (
        "1 run from an earlier version of this study (another --epochs, --limit-train or --precision, or an edited "
        "spec) is kept and not counted: 'cnnlab ls out --all' lists them, 'cnnlab prune out' removes them.")
    assert earlier_runs_note(3, "results/x").startswith("3 runs from an earlier version of this study (")
    assert " are kept and not counted: 'cnnlab ls results/x --all' lists them" in earlier_runs_note(3, "results/x")
