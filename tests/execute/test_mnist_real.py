"""Real MNIST: study C's MNIST net with Adam reaches at least 98% test accuracy within 5 epochs,
in float32 and with bf16 autocast, which costs at most 0.3 points (the same seed, init and batches)."""

from __future__ import annotations

import pytest

from cnnlab.api import open_store, run_study


@pytest.mark.slow
def test_study_c_mnist_net_reaches_98_percent_on_real_mnist_in_fp32_and_bf16(tmp_path, mnist_dir):
    study = {
        "name": "mnist-c",
        "dataset": {"name": "mnist", "split": {"train": "rest", "val": 5000, "test": "all"}},
        "architectures": {"mnist_net": [
            {"conv": {"filters": 4, "kernel": 5, "padding": "same"}}, {"maxpool": 2},
            {"conv": {"filters": 8, "kernel": 5, "padding": "same"}}, {"maxpool": 2},
            {"conv": {"filters": 16, "kernel": 5, "padding": "same"}}, "flatten",
            {"dense": 64}, {"dense": 10},
        ]},
        "train": {"optimizer": {"name": "adam", "lr": 0.001}, "batch_size": 32, "epochs": 5},
        "sweep": {"train.precision": ["fp32", "bf16"]},
    }
    result = run_study(study, tmp_path, data_dir=mnist_dir)
    assert result.outcome.ok
    accuracy = {}
    with open_store(tmp_path) as store:
        for run in store.runs():
            epochs = store.epochs(run["id"])
            precision = run["config"]["train"]["precision"]
            accuracy[precision] = run["test_accuracy"]
            print(f"MNIST net, {precision}: test accuracy {100 * run['test_accuracy']:.2f}% after {len(epochs)} "
                  f"epochs, {run['train_seconds']:.1f} s, {epochs[-1]['images_per_second']:,.0f} img/s")
            assert run["split_sizes"] == {"train": 55000, "val": 5000, "test": 10000}
            assert run["params_total"] == (1 * 25 * 4 + 4 + 4 * 25 * 8 + 8 + 8 * 25 * 16 + 16 + 16 * 7 * 7 * 64 + 64
                                           + 64 * 10 + 10)
    assert accuracy["fp32"] >= 0.98 and accuracy["bf16"] >= 0.98
    assert abs(accuracy["bf16"] - accuracy["fp32"]) <= 0.003
