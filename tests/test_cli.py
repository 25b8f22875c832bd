"""The command line as a user meets it: real processes, exit statuses, messages, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cnnlab.cli import main
from tests.conftest import EXAMPLES

CNNLAB = [sys.executable, "-m", "cnnlab.cli"]


def _cnnlab(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CNNLAB, *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


def _write(tmp_path: Path, study: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_help_teaches_every_command():
    result = _cnnlab("--help")
    assert result.returncode == 0
    for command in ("run", "ls", "spec", "summary", "datasets", "examples:"):
        assert command in result.stdout
    run_help = _cnnlab("run", "--help").stdout
    for option in ("--out", "--data-dir", "--epochs", "--limit-train", "--force", "--quiet", "exit status"):
        assert option in run_help


def test_bad_spec_exits_2_with_one_paragraph_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: {name: digits}\narchitectures:\n  A: [flatten, {dense: {unit: 10}}]\n")
    result = _cnnlab("run", bad, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:4: architectures.A[1].dense.unit: unknown key 'unit' (did you mean 'units'?)" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing written for a spec that does not validate


def test_run_then_ls_shows_every_configuration(tmp_path, tiny_study):
    spec = _write(tmp_path, tiny_study)
    result = _cnnlab("run", spec, "--out", tmp_path / "out", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Results (2 done)" in result.stdout
    listed = _cnnlab("ls", tmp_path / "out")
    assert listed.returncode == 0
    for column in ("train acc %", "val acc %", "train loss", "val loss", "params", "time s", "small/none", "small/dropout"):
        assert column in listed.stdout
    rows = json.loads(_cnnlab("ls", tmp_path / "out", "--json").stdout)
    assert {r["configuration"] for r in rows} == {"small/none", "small/dropout"}
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["params_total"] > 0 for r in rows)


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_the_rerun_resumes(tmp_path, tiny_study):
    tiny_study["train"]["epochs"] = 40
    tiny_study["variants"] = {"none": {}}
    spec = _write(tmp_path, tiny_study)
    out = tmp_path / "out"
    process = subprocess.Popen([*CNNLAB, "run", str(spec), "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (out / "cnnlab.sqlite").exists():
                with sqlite3.connect(out / "cnnlab.sqlite") as db:
                    try:
                        done = db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
                    except sqlite3.OperationalError:
                        done = 0
                if done >= 3:
                    break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"resume with: cnnlab run {spec} --out {out}" in stderr
    with sqlite3.connect(out / "cnnlab.sqlite") as db:
        status, epochs_done = db.execute("SELECT status, epochs_done FROM runs").fetchone()
    assert status == "interrupted" and 0 < epochs_done < 40
    resumed = _cnnlab("run", spec, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stderr


@pytest.mark.parametrize("example, arch, variant, total, trainable, non_trainable", [
    ("study_a_regularization_cifar10.yaml", "A1", "none", 48_970, 48_970, 0),
    ("study_a_regularization_cifar10.yaml", "A2", "none", 1_442_902, 1_442_902, 0),
    ("study_a_regularization_cifar10.yaml", "A3", "none", 1_121_430, 1_121_430, 0),
    ("study_a_regularization_cifar10.yaml", "A1", "batchnorm", 53_322, 51_146, 2_176),
    ("study_a_regularization_cifar10.yaml", "A2", "batchnorm", 1_443_558, 1_443_230, 328),
    ("study_a_regularization_cifar10.yaml", "A3", "batchnorm", 1_122_086, 1_121_758, 328),
    ("study_d_fashion_mnist.yaml", "base", "none", 93_322, 93_322, 0),
    ("study_e_deep_cifar10.yaml", "E", "plain", 6_216_114, 6_216_094, 20),
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
    assert "12 runs = 3 architectures x 4 variants x 1 sweep points x 1 repeats" in out
    assert main(["spec", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"name", "dataset", "architectures", "variants", "sweep", "train", "repeats", "evaluate", "explain"} <= set(schema["properties"])


def test_spec_reports_sweep_points_that_cannot_be_built(tmp_path, capsys):
    from cnnlab.spec.loader import read_yaml

    study, _ = read_yaml((EXAMPLES / "study_c_mnist_sweep.yaml").read_text(), "c")
    study["sweep"]["conv.padding"] = ["same", "valid"]
    assert main(["spec", str(_write(tmp_path, study))]) == 1
    err = capsys.readouterr().err
    assert "mnist_net/none conv.kernel=5 conv.stride=1 conv.padding=valid" in err


def test_datasets_lists_every_dataset_and_the_embedded_one(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100", "digits", "npz", "folder"):
        assert name in out
    assert "embedded" in out


def test_ls_on_a_folder_without_a_store_says_what_to_do(tmp_path, capsys):
    assert main(["ls", str(tmp_path)]) == 2
    assert "cnnlab run SPEC --out" in capsys.readouterr().err
