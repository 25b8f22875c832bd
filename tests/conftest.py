"""Shared fixtures: where the examples and the real MNIST files are, and small study dicts."""

from __future__ import annotations

import copy
import signal
from pathlib import Path

import pytest

# Started in the background (`nohup ... &`), a shell hands its children SIGINT ignored, and an
# ignored signal survives exec: the subprocesses of the Ctrl-C tests would never see it. A handler,
# unlike SIG_IGN, is reset by exec, so with one here they get Ctrl-C as a terminal user's would.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# The real MNIST files live in the shared folder beside the repository (here and in CI).
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"

TINY_STUDY = {
    "name": "tiny",
    "seed": 0,
    "dataset": {"name": "digits", "split": {"train": 400, "val": 200, "test": 200}},
    "architectures": {
        "small": [
            {"conv": {"filters": 4, "kernel": 3, "padding": "same"}},
            {"maxpool": 2},
            "flatten",
            {"dense": 10},
        ],
    },
    "variants": {"none": {}, "dropout": {"dropout": 0.25}},
    "train": {"optimizer": {"name": "adam", "lr": 0.01}, "batch_size": 32, "epochs": 3},
}


@pytest.fixture
def tiny_study() -> dict:
    """A 2-run study on digits that trains in about a second."""
    return copy.deepcopy(TINY_STUDY)


@pytest.fixture
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"the real MNIST files are missing from {MNIST_DIR}")
    return MNIST_DIR
