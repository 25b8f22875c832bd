"""The overfitting diagnosis: validation loss that rises while training loss falls, on curves
built by hand so every number in the sentence can be checked."""

from __future__ import annotations

from cnnlab.analysis.comparisons import RunResult
from cnnlab.analysis.findings import overfitting_findings


def _run(variant: str, repeat: int, train_loss, val_loss, train_acc, val_acc) -> RunResult:
    history = [{"train_loss": tl, "val_loss": vl, "train_accuracy": ta, "val_accuracy": va}
               for tl, vl, ta, va in zip(train_loss, val_loss, train_acc, val_acc)]
    return RunResult(f"{variant}{repeat}", "net", variant, {}, "select", repeat, None, {}, history)


def test_validation_loss_rising_while_training_loss_falls_is_called_overfitting_with_its_numbers():
    # Two repeats whose mean curves: val loss lowest at epoch 2 (0.5), then 0.6 (20% up, past
    # the 5% threshold) while train loss keeps falling; best val accuracy at epoch 2.
    runs = [_run("wide", 0, [1.0, 0.6, 0.3, 0.1], [0.9, 0.5, 0.55, 0.6], [0.5, 0.8, 0.9, 0.99], [0.5, 0.7, 0.69, 0.68]),
            _run("wide", 1, [1.0, 0.6, 0.3, 0.1], [0.9, 0.5, 0.55, 0.6], [0.5, 0.8, 0.9, 0.97], [0.5, 0.7, 0.67, 0.66])]
    (finding,) = overfitting_findings(runs)
    assert finding.kind == "overfitting"
    assert finding.text == ("net/wide overfits: validation loss rose from 0.5 (epoch 2) to 0.6 while training loss fell "
                            "from 0.6 to 0.1; best validation accuracy at epoch 2 of 4, gap there 10.0 points "
                            "(mean of 2 runs).")


def test_a_rise_within_five_percent_or_with_training_loss_rising_too_is_not_overfitting():
    small_rise = _run("none", 0, [1.0, 0.6, 0.3], [0.9, 0.5, 0.52], [0.5, 0.8, 0.9], [0.5, 0.7, 0.72])
    both_rise = _run("hot", 0, [1.0, 0.6, 0.9], [0.9, 0.5, 0.8], [0.5, 0.8, 0.7], [0.5, 0.7, 0.6])
    (finding,) = overfitting_findings([small_rise, both_rise])
    assert finding.text == ("No overfitting seen (validation loss did not rise while training loss fell) in: "
                            "net/none (best validation accuracy at epoch 3 of 3, gap there 18.0 points); "
                            "net/hot (best validation accuracy at epoch 2 of 3, gap there 10.0 points).")


def test_final_retrains_and_runs_without_curves_are_left_out():
    final = _run("wide", 0, [1.0, 0.1], [0.5, 0.9], [0.5, 0.9], [0.5, 0.4])
    final = RunResult(final.run_id, "net", "wide", {}, "final", 0, None, {}, final.history)
    empty = RunResult("x", "net", "none", {}, "select", 0, None, {}, [])
    assert overfitting_findings([final, empty]) == []
