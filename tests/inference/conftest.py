"""Fixtures for inference: a finished quickstart-like study (trained once per session), its best run's
model, its test split, and a fresh Python process to run exported files in."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab.api import load_model, open_store, run_study
from cnnlab.data import DataCache
from cnnlab.spec.plan import RunConfig
from tests.conftest import TINY_STUDY

# The quickstart's shape, small: digits, standardize (so the stored scale and shift are the training
# split's own statistics, not 1/255), a batchnorm variant (its running statistics must be exported in
# eval mode), two seeds per configuration so "best" is the median repeat of the chosen configuration.
INFERENCE_STUDY = copy.deepcopy(TINY_STUDY)
INFERENCE_STUDY.update(name="tiny-inference", repeats=2, variants={"none": {}, "batchnorm": {"batchnorm": True}})
INFERENCE_STUDY["dataset"]["normalize"] = "standardize"


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """The output folder of INFERENCE_STUDY's 4 finished runs (about 2 s to train, once per session)."""
    folder = tmp_path_factory.mktemp("inference-store")
    result = run_study(copy.deepcopy(INFERENCE_STUDY), folder)
    assert result.outcome.ok
    return folder


@pytest.fixture(scope="session")
def best(trained):
    """The best run's LoadedModel."""
    return load_model(trained)


@pytest.fixture(scope="session")
def test_split(trained, best):
    """The best run's test split: uint8 images N x 1 x 8 x 8 (200 of them) and labels, as the run cut it."""
    with open_store(trained) as store:
        config = RunConfig.model_validate(store.run(best.run_id).config)
    splits, _ = DataCache().split(config)
    return splits.test.images.numpy(), splits.test.labels.numpy()


def fresh_python(code: str, *args: object) -> str:
    """Run ``code`` in a new Python process (nothing of this one's imports); its stdout. A failure
    shows the child's stderr."""
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def save_images(path: Path, images: np.ndarray) -> Path:
    np.savez(path, images=images)
    return path
