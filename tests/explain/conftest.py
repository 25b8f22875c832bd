"""Fixtures for explain: a finished tiny digits study in a store (trained once per test session)."""

from __future__ import annotations

import copy

import pytest

from cnnlab.api import open_store, run_study
from tests.conftest import TINY_STUDY

# Two conv layers (one 'same', one 'valid'), pooling, a hidden dense: every figure has something
# to draw; three variants so the histogram overlay has L1 and L2 side by side.
EXPLAIN_STUDY = copy.deepcopy(TINY_STUDY)
EXPLAIN_STUDY.update(
    name="tiny-explain",
    architectures={"small": [
        {"conv": {"filters": 8, "kernel": 3, "padding": "same"}}, {"maxpool": 2},
        {"conv": {"filters": 16, "kernel": 3}}, "flatten", {"dense": 32}, {"dense": 10},
    ]},
    variants={"none": {}, "l1": {"l1": 1.0e-3}, "l2": {"l2": 1.0e-2}},
)


@pytest.fixture(scope="session")
def explain_store(tmp_path_factory):
    """A store holding the 3 finished runs of EXPLAIN_STUDY (about 2 s to train, once per session)."""
    folder = tmp_path_factory.mktemp("explain-store")
    result = run_study(copy.deepcopy(EXPLAIN_STUDY), folder)
    assert result.outcome.ok
    return folder


@pytest.fixture
def store(explain_store):
    with open_store(explain_store) as opened:
        yield opened
