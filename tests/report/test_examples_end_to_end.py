"""Each reference-study example trained end to end (one epoch, on small data shaped like its
dataset), its report opened in headless Chromium, and every table and figure its study had there."""

from __future__ import annotations

import re

import pytest

from cnnlab.cli import main
from tests.conftest import EXAMPLES
from tests.report.example_data import small_example
from tests.report.test_browser import visit

# Per example: figure alt texts (regular expressions) and element ids the study's report needs.
EXPECTED = {
    "study_a_regularization_cifar10.yaml": {
        "figures": [r"Train and validation accuracy per epoch", r"Train and test curves of final 1, A\d/\w+",
                    r"conv1 filters", r"conv2 filters", r"The last 8 filters of conv1 vs conv2",
                    r"Input sample:china"] + [r"^\w+ \(64, \d+, \d+\) for sample:china"] * 4,
        "ids": ["final-1", "parameters-1-a1", "parameters-3-a3"],
        "text": ["Model summaries", "retrained on train+val", "measured after"],
    },
    "study_b_depth_cifar10.yaml": {
        "figures": [r"Train and test curves of final 1, B\d/\w+", r"Train and test curves of final 2, B\d/\w+",
                    r"conv1 \(64, 30, 30\) for test:0", r"conv2 \(64, 13, 13\) for test:0"],
        "ids": ["final-1", "final-2"],
        "text": ["conv layers", "best train acc %", "best val acc %", "smallest train-validation gap"],
    },
    "study_c_mnist_sweep.yaml": {
        "figures": [r"Validation accuracy against each swept value", r"validation = test split accuracy per epoch",
                    r"Weight and bias histograms", r"Correctly and incorrectly classified test images",
                    r"conv1 \(4, \d+, \d+\)", r"conv2 \(8, \d+, \d+\)", r"conv3 \(16, \d+, \d+\)"],
        "ids": ["sweep"],
        "text": ["optimistic", "validate_on", "penalty"],
    },
    "study_c_cifar10_sweep.yaml": {
        "figures": [r"Validation accuracy against each swept value", r"Weight and bias histograms",
                    r"Correctly and incorrectly classified test images", r"conv3 \(64, \d+, \d+\)"],
        "ids": ["sweep", "changes"],
        "text": ["optimistic", "0.002", "Changes from the original"],
    },
    "study_d_fashion_mnist.yaml": {
        "figures": [r"Accuracy and loss per fold", r"Per-fold learning curves", r"Train and test curves of final 1",
                    r"Train and test curves of final 2", r"Confusion matrix of base/none on the test split"],
        "ids": ["kfold-table", "kfold-folds", "final-1", "final-2"],
        "text": ["val loss", "lr_halving", "candidate"],
    },
    "study_e_deep_cifar10.yaml": {
        "figures": [r"Train and test curves of final 1, E/bn_dropout", r"Train and test curves of final 2, E/bn$",
                    r"Train and test curves of final 3, E/no_bn", r"Train and test curves of final 4, E/neither",
                    r"conv1 filters: 64 kernels 3x3", r"Top-activating patches of conv4",
                    r"Neurons of conv4 by the class", r"Guided backpropagation of the top units of conv4"],
        "ids": ["parameters-1-e"],
        "text": ["960,896", "5,255,218", "131,072", "2,058", "6,216,114"],
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_trains_end_to_end_and_its_report_has_every_figure_the_study_had(example, tmp_path, browser):
    spec = small_example(EXAMPLES / example, tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--epochs", "1", "--workers", "1"]) == 0
    report = out / "report.html"
    expected = EXPECTED[example]
    with visit(browser, report) as seen:
        page = seen.page
        alts = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.alt)")
        assert all(page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"))
        for pattern in expected["figures"]:
            matching = [alt for alt in alts if re.search(pattern, alt)]
            assert matching, f"{example}: no figure matches {pattern!r}; figures: {alts}"
        for pattern in set(expected["figures"]):  # a pattern listed n times needs n figures
            assert len([a for a in alts if re.search(pattern, a)]) >= expected["figures"].count(pattern)
        for anchor in expected["ids"]:
            assert page.locator(f"#{anchor}").count() == 1, f"{example}: no #{anchor}"
        body = page.inner_text("body")
        for words in expected["text"]:
            assert words in body, f"{example}: the report never says {words!r}"
    assert seen.errors == []
