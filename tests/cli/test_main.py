"""The command line as a user meets it: help, exit statuses, one-paragraph errors, --debug."""

from __future__ import annotations

import pytest

from cnnlab.cli import main
from cnnlab.errors import CnnlabError, SpecError

from .conftest import cnnlab


def test_help_teaches_every_command():
    result = cnnlab("--help")
    assert result.returncode == 0
    for command in ("run", "ls", "spec", "summary", "datasets", "examples:"):
        assert command in result.stdout
    run_help = cnnlab("run", "--help").stdout
    for option in ("--out", "--data-dir", "--epochs", "--limit-train", "--force", "--quiet", "exit status"):
        assert option in run_help


def test_bad_spec_exits_2_with_one_paragraph_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: {name: digits}\narchitectures:\n  A: [flatten, {dense: {unit: 10}}]\n")
    result = cnnlab("run", bad, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:4: architectures.A[1].dense.unit: unknown key 'unit' (did you mean 'units'?)" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing written for a spec that does not validate


def test_ls_on_a_folder_without_a_store_says_what_to_do(tmp_path, capsys):
    assert main(["ls", str(tmp_path)]) == 2
    assert "cnnlab run SPEC --out" in capsys.readouterr().err


def test_debug_shows_the_error_before_or_after_the_command(tmp_path):
    with pytest.raises(CnnlabError, match="cnnlab run SPEC --out"):
        main(["--debug", "ls", str(tmp_path)])
    with pytest.raises(CnnlabError, match="cnnlab run SPEC --out"):
        main(["ls", str(tmp_path), "--debug"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: {name: digits}\narchitectures:\n  A: [flatten, {dense: {unit: 10}}]\n")
    with pytest.raises(SpecError, match="unknown key 'unit'"):
        main(["run", str(bad), "--out", str(tmp_path / "out"), "--debug"])
    result = cnnlab("run", bad, "--out", tmp_path / "out", "--debug")
    assert result.returncode == 1 and "Traceback" in result.stderr  # Python's own exit for an uncaught error


@pytest.mark.parametrize("option, value, expected", [
    ("--threads", "100000", "expected a number of at most 1,024, found 100,000"),
    ("--limit-train", "10000000000", "expected a number of at most 1,000,000,000"),
    ("--workers", "5000", "expected a number of at most 1,024"),
    ("--gpus-per-run", "nan", "expected a number of GPUs from 0 to 64, found nan"),
])
def test_command_line_options_are_bounded_like_the_spec_s_fields(tmp_path, capsys, option, value, expected):
    with pytest.raises(SystemExit) as stop:
        main(["run", "study.yaml", option, value])
    assert stop.value.code == 2 and expected in capsys.readouterr().err
