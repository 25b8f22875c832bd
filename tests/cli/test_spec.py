"""``cnnlab summary``, ``cnnlab spec`` and ``cnnlab datasets``: what a study means before it runs."""

from __future__ import annotations

import json

import pytest

from cnnlab.cli import main
from tests.conftest import EXAMPLES

from .conftest import write_study


@pytest.mark.parametrize("example, arch, variant, total, trainable, non_trainable", [
    ("study_a_regularization_cifar10.yaml", "A1", "none", 48_970, 48_970, 0),
    ("study_a_regularization_cifar10.yaml", "A2", "none", 1_442_902, 1_442_902, 0),
    ("study_a_regularization_cifar10.yaml", "A3", "none", 1_121_430, 1_121_430, 0),
    ("study_a_regularization_cifar10.yaml", "A1", "batchnorm", 53_322, 51_146, 2_176),
    ("study_a_regularization_cifar10.yaml", "A2", "batchnorm", 1_443_558, 1_443_230, 328),
    ("study_a_regularization_cifar10.yaml", "A3", "batchnorm", 1_122_086, 1_121_758, 328),
    ("study_d_fashion_mnist.yaml", "base", "none", 93_322, 93_322, 0),
    ("study_e_deep_cifar10.yaml", "E", "bn", 6_216_114, 6_216_094, 20),
    ("study_e_deep_cifar10.yaml", "E", "neither", 6_216_074, 6_216_074, 0),
])
def test_summary_of_each_example_reproduces_the_published_counts(capsys, example, arch, variant, total, trainable, non_trainable):
    assert main(["summary", str(EXAMPLES / example), "--arch", arch, "--variant", variant, "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert (summary["total_params"], summary["trainable_params"], summary["non_trainable_params"]) == (total, trainable, non_trainable)


def test_summary_table_reads_like_keras(capsys):
    assert main(["summary", str(EXAMPLES / "study_a_regularization_cifar10.yaml"), "--arch", "A1", "--variant", "batchnorm"]) == 0
    text = capsys.readouterr().out
    assert 'Model: "A1/batchnorm"' in text
    assert "batchnorm2 (BatchNormalization)  (None, 1024)" in text
    assert "Total params: 53,322" in text and "Non-trainable params: 2,176" in text


def test_spec_lists_the_plan_and_the_schema_is_json(capsys):
    assert main(["spec", str(EXAMPLES / "study_a_regularization_cifar10.yaml")]) == 0
    out = capsys.readouterr().out
    assert "12 runs: 12 configurations x 1 repeat (3 architectures, 4 variants, 1 sweep point)" in out
    assert main(["spec", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"name", "dataset", "architectures", "variants", "sweep", "train", "repeats", "evaluate", "explain"} <= set(schema["properties"])


def test_spec_reports_sweep_points_that_cannot_be_built(tmp_path, capsys):
    from cnnlab.spec.loader import read_yaml

    study, _ = read_yaml((EXAMPLES / "study_c_mnist_sweep.yaml").read_text(), "c")
    # The grid the study did not run: with valid padding most kernel/stride pairs shrink the third conv's
    # input to nothing, which 'cnnlab spec' lists before anything trains.
    study["sweep"] = {"conv.kernel": [3, 5, 7], "conv.stride": [1, 2, 3], "conv.padding": ["same", "valid"]}
    assert main(["spec", str(write_study(tmp_path, study))]) == 1
    err = capsys.readouterr().err
    assert "mnist_net/none conv.kernel=5 conv.stride=1 conv.padding=valid" in err


def test_datasets_lists_every_dataset_and_the_embedded_one(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100", "digits", "npz", "folder"):
        assert name in out
    assert "embedded" in out
