"""Honest conclusions end to end: selection blind to test, findings that say how sure they are."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.datasets import load_digits

from cnnlab.analysis.study import analyze
from cnnlab.api import open_store, run_study


def _digits_npz(path, permute_test: bool):
    digits = load_digits()
    images = (digits.images * 255.0 / 16.0).round().astype(np.uint8)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[order], labels[order]
    x_train, y_train, x_test, y_test = images[:1400], labels[:1400], images[1400:], labels[1400:]
    if permute_test:
        y_test = np.random.default_rng(1).permutation(y_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def test_permuting_the_test_labels_cannot_change_the_selection(tmp_path, tiny_study):
    chosen, tested = [], []
    for permute in (False, True):
        path = tmp_path / f"digits-{permute}.npz"
        _digits_npz(path, permute)
        study = copy.deepcopy(tiny_study)
        study["dataset"] = {"name": "npz", "path": str(path), "split": {"train": "rest", "val": 300, "test": "all"}}
        study["variants"] = {"none": {}, "dropout": {"dropout": 0.5}, "l2": {"l2": 0.01}}
        study["evaluate"] = {"retrain_on": "train+val", "test": True}  # every run measures test too
        out = tmp_path / f"out-{permute}"
        run_study(study, out)
        with open_store(out) as store:
            analysis = analyze(store)
        chosen.append((analysis.selection.configuration, analysis.selection.interval.mean))
        tested.append(sorted(r.metrics["test_accuracy"] for r in analysis.results))
    assert chosen[0] == chosen[1]
    assert tested[0] != tested[1]  # the test numbers did change: selection just never read them


def test_default_protocol_touches_the_test_split_once(tmp_path, tiny_study):
    tiny_study["evaluate"] = {"retrain_on": "train+val"}
    result = run_study(tiny_study, tmp_path)
    with open_store(tmp_path) as store:
        runs = store.runs()
    measured = [r for r in runs if r["test_accuracy"] is not None]
    assert len(runs) == 3 and [r["phase"] for r in measured] == ["final"]
    final = measured[0]
    assert final["split_sizes"]["val"] == 0 and final["split_sizes"]["train"] == 600
    assert result.outcome.statuses == {"done": 3}
    again = run_study(tiny_study, tmp_path)
    assert again.outcome.statuses == {} and again.outcome.skipped == 3


@pytest.mark.slow
def test_findings_on_real_mnist_call_the_harmful_variant_worse_and_the_neutral_one_no_win(tmp_path, mnist_dir):
    study = {
        "name": "mnist-honest",
        "dataset": {"name": "mnist", "split": {"train": "rest", "val": 2000, "test": "all"}},
        "architectures": {"net": [
            {"conv": {"filters": 8, "kernel": 3}}, {"maxpool": 2}, {"conv": {"filters": 16, "kernel": 3}}, {"maxpool": 2},
            "flatten", {"dense": 32}, {"dense": 10},
        ]},
        "variants": {"none": {}, "harmful": {"dropout": 0.9}, "neutral": {"l2": 1.0e-6}},
        "train": {"optimizer": {"name": "adam", "lr": 0.002}, "batch_size": 64, "epochs": 2},
        "repeats": 3,
    }
    run_study(study, tmp_path, data_dir=mnist_dir, limit_train=4000)
    with open_store(tmp_path) as store:
        analysis = analyze(store)
    by_variant = {c.variant_name: c for c in analysis.comparisons}
    harmful, neutral = by_variant["harmful"], by_variant["neutral"]
    for finding in analysis.findings:
        print(finding.text)
    assert harmful.n == 3 and harmful.better is False
    assert harmful.test.difference.high < 0  # the interval excludes zero, below it
    assert neutral.better is not True
    texts = [f.text for f in analysis.findings if f.kind == "comparison" and "validation accuracy" in f.text]
    assert any("'harmful' lowered validation accuracy" in t and "95% CI" in t and "3 paired seeds" in t for t in texts)
    assert not any("'neutral' raised" in t for t in texts)


def test_compare_command_prints_intervals_and_pairs(tmp_path, tiny_study, capsys):
    from cnnlab.cli import main

    tiny_study["repeats"] = 2
    run_study(tiny_study, tmp_path)
    capsys.readouterr()
    assert main(["compare", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "small/dropout vs small/none" in out and "95% CI" in out and "Holm" in out
    assert main(["compare", str(tmp_path), "small/dropout", "small/none", "--metric", "val_loss", "--json"]) == 0
    (row,) = __import__("json").loads(capsys.readouterr().out)
    assert row["baseline"] == "small/dropout" and row["configuration"] == "small/none" and row["n"] == 2
    assert main(["compare", str(tmp_path), "small/nope", "small/none"]) == 2
    assert "did you mean 'small/none'" in capsys.readouterr().err
