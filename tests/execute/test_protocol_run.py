"""The study protocol run end to end: finals chosen by their rules and measured on test after every
epoch (the selection runs never touch test), the k-fold experiment beside the fixed split, a variant
with its own settings, and validation on the test split when the spec asks for it."""

from __future__ import annotations

import copy

from cnnlab.analysis import analyze, best_run_id, study_best_run_id
from cnnlab.api import open_store, run_study


def _study(tiny_study: dict, **evaluate) -> dict:
    study = copy.deepcopy(tiny_study)
    study["variants"] = {"none": {}, "dropout": {"dropout": 0.25},
                         "slow": {"train": {"optimizer": {"lr": 0.001}, "epochs": 2}},
                         "aside": {"train": {"schedule": {"name": "step", "every": 1, "factor": 0.5}}, "candidate": False}}
    study["evaluate"] = evaluate
    return study


def _runs(folder):
    with open_store(folder) as store:
        return [(run, store.epochs(run.id)) for run in store.runs()]


def test_two_finals_by_their_rules_with_test_curves_and_nothing_else_touches_test(tmp_path, tiny_study):
    study = _study(tiny_study, retrain_on="train+val", finals=["val_accuracy", "gap"], final_epochs=2)
    result = run_study(study, tmp_path)
    assert result.outcome.ok
    runs = _runs(tmp_path)
    finals = [(run, epochs) for run, epochs in runs if run.phase == "final"]
    assert len(finals) == 2 and len({run.variant for run, _ in finals}) == 2
    for run, epochs in finals:
        assert run.epochs_done == 2 and run.config["merge_val"] and run.config["test_curve"]
        assert all("test_accuracy" in e and "test_loss" in e for e in epochs)
        assert run.test_accuracy == epochs[-1]["test_accuracy"]
        assert run.variant != "aside"
    for run, epochs in runs:
        if run.phase == "select":
            assert run.test_accuracy is None and not any("test_accuracy" in e for e in epochs)
    # The finals are the ones the rules choose from the selection runs: the best validation accuracy,
    # then the smallest gap among the rest.
    with open_store(tmp_path) as store:
        analysis = analyze(store)
    assert [s.metric for s in analysis.finals] == ["val_accuracy", "gap"]
    assert [r.configuration for r in analysis.final_runs] == [s.configuration + " (final)" for s in analysis.finals]
    chosen = {run.variant for run, _ in finals}
    assert {s.runs[0].variant for s in analysis.finals} == chosen
    candidates = {r.variant: r.metrics for r in analysis.results if r.phase == "select" and r.variant != "aside"}
    best = max(candidates, key=lambda v: candidates[v]["val_accuracy"])
    assert analysis.finals[0].runs[0].variant == best
    rest = {v: m for v, m in candidates.items() if v != best}
    assert analysis.finals[1].runs[0].variant == min(rest, key=lambda v: abs(rest[v]["gap"]))  # closest to zero
    # Every "best" is the report's: explain --best, export, predict and load_model read study_best_run_id.
    with open_store(tmp_path) as store:
        assert study_best_run_id(store) == best_run_id(analysis.results, analysis.selection)
        assert analysis.final.configuration == analysis.selection.configuration + " (final)"
    # A variant's own settings: 2 epochs and lr 0.001 (the study: 3 epochs, lr 0.01).
    slow = next(run for run, _ in runs if run.variant == "slow" and run.phase == "select")
    assert slow.epochs_done == 2 and slow.config["train"]["optimizer"]["lr"] == 0.001


def test_the_kfold_experiment_runs_beside_the_fixed_split_and_is_never_chosen(tmp_path, tiny_study):
    study = _study(tiny_study, kfold={"folds": 3, "on": ["dropout"]}, retrain_on="train", finals=1)
    run_study(study, tmp_path)
    runs = _runs(tmp_path)
    folds = sorted((run.fold, run.config["kfold"]) for run, _ in runs if run.phase == "kfold")
    assert folds == [(0, 3), (1, 3), (2, 3)]
    assert all(run.variant == "dropout" and run.split_sizes["val"] > 0 for run, _ in runs if run.phase == "kfold")
    # The fixed split's runs all hold out the same validation images; the folds hold out a third of the pool.
    fixed = {run.split_sizes["val"] for run, _ in runs if run.phase == "select"}
    assert fixed == {200}
    final = next(run for run, _ in runs if run.phase == "final")
    assert not final.config["merge_val"] and final.split_sizes["train"] == 400
    with open_store(tmp_path) as store:
        analysis = analyze(store)
    assert analysis.selection.runs[0].phase == "select" and analysis.selection.configuration != "small/aside"


def test_validation_on_the_test_split_measures_val_on_the_test_images(tmp_path, tiny_study, capsys):
    study = copy.deepcopy(tiny_study)
    study["dataset"]["split"] = {"train": 400, "val": 0, "test": 200}
    study["evaluate"] = {"validate_on": "test"}
    run_study(study, tmp_path)
    for run, epochs in _runs(tmp_path):
        assert run.config["validate_on_test"] and run.split_sizes["val"] == 200
        assert run.val_accuracy == run.test_accuracy and run.val_loss == run.test_loss
        assert all("val_accuracy" in e for e in epochs)
    from cnnlab.cli import main

    assert main(["ls", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "every choice saw the test numbers" in out and "never used to choose" not in out


def test_the_best_is_the_first_finals_and_never_a_variant_that_is_no_candidate(tmp_path, tiny_study):
    # finals: [gap] with select: val_accuracy: the one retrained is the choice, and its test number is its own.
    study = _study(tiny_study, retrain_on="train", finals=["gap"], final_epochs=1)
    run_study(study, tmp_path, epochs=2)
    with open_store(tmp_path) as store:
        analysis = analyze(store)
        best = store.run(study_best_run_id(store))
    assert analysis.selection.metric == "gap" and best.phase == "final"
    assert analysis.final.run_id == best.id and best.variant == analysis.selection.runs[0].variant != "aside"
    assert best.epochs_done == 1  # --epochs 2 shortens a final of 1 epoch to nothing longer
