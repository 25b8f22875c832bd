"""Real MNIST: study C's MNIST net with Adam reaches at least 98% test accuracy within 5 epochs."""

from __future__ import annotations

import pytest

from cnnlab.api import open_store, run_study


@pytest.mark.slow
def test_study_c_mnist_net_reaches_98_percent_on_real_mnist(tmp_path, mnist_dir):
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
    }
    result = run_study(study, tmp_path, data_dir=mnist_dir)
    assert result.outcome.ok
    with open_store(tmp_path) as store:
        (run,) = store.runs()
        epochs = store.epochs(run["id"])
    print(f"MNIST net: test accuracy {100 * run['test_accuracy']:.2f}% after {len(epochs)} epochs, "
          f"{run['train_seconds']:.1f} s, {epochs[-1]['images_per_second']:,.0f} img/s")
    assert run["split_sizes"] == {"train": 55000, "val": 5000, "test": 10000}
    assert run["params_total"] == 1 * 25 * 4 + 4 + 4 * 25 * 8 + 8 + 8 * 25 * 16 + 16 + 16 * 7 * 7 * 64 + 64 + 64 * 10 + 10
    assert run["test_accuracy"] >= 0.98
