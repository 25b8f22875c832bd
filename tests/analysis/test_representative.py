"""Which run stands for a configuration (``cnnlab explain --config``) and which configuration is
another's baseline (the report's side-by-side confusion matrices)."""

from __future__ import annotations

import pytest

from cnnlab.analysis.comparisons import RunResult
from cnnlab.analysis.representative import baseline_configuration, configuration_run_id
from cnnlab.errors import StoreError


def _run(variant: str, repeat: int, accuracy: float, phase: str = "select", kernel: int = 3) -> RunResult:
    return RunResult(f"{variant}-{kernel}-{phase}-{repeat}", "small", variant, {"conv.kernel": kernel}, phase, repeat,
                     None, {"val_accuracy": accuracy})


RESULTS = [_run("none", 0, 0.80), _run("none", 1, 0.90), _run("none", 2, 0.70),
           _run("dropout", 0, 0.95), _run("dropout", 1, 0.85),
           _run("none", 0, 0.60, kernel=5), _run("dropout", 0, 0.65, kernel=5),
           _run("dropout", 0, 0.97, phase="final")]


def test_a_configuration_is_explained_by_its_median_repeat_never_its_luckiest():
    assert configuration_run_id(RESULTS, "small/none conv.kernel=3") == "none-3-select-0"  # 0.80 of 0.70, 0.80, 0.90
    # Two repeats: the lower middle one, the worse (as the best run is chosen); a retrain label is its run.
    assert configuration_run_id(RESULTS[:5], "small/dropout conv.kernel=3") == "dropout-3-select-1"
    assert configuration_run_id(RESULTS, "small/dropout conv.kernel=3 (final)") == "dropout-3-final-0"
    with pytest.raises(StoreError, match="no finished configuration 'small/drop conv.kernel=3'"):
        configuration_run_id(RESULTS, "small/drop conv.kernel=3")


def test_the_baseline_is_the_first_or_the_named_variant_of_the_same_architecture_and_sweep_point():
    assert baseline_configuration(RESULTS, "small/dropout conv.kernel=3") == "small/none conv.kernel=3"
    assert baseline_configuration(RESULTS, "small/dropout conv.kernel=5") == "small/none conv.kernel=5"
    assert baseline_configuration(RESULTS, "small/none conv.kernel=3") is None  # it is the baseline
    assert baseline_configuration(RESULTS, "small/none conv.kernel=3", "dropout") == "small/dropout conv.kernel=3"
    assert baseline_configuration(RESULTS, "small/none conv.kernel=3", "l2") is None  # no such variant
