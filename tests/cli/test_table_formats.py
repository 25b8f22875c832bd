"""``cnnlab ls`` and ``cnnlab compare`` as CSV, Markdown and LaTeX: CSV holds the rows --json
holds, LaTeX compiles as written (special characters escaped), --json keeps working."""

from __future__ import annotations

import copy
import csv
import io
import json
import re

import pytest

from cnnlab.api import run_study
from cnnlab.cli.main import main
from cnnlab.cli.tables import csv_text, latex_escape, latex_text
from tests.conftest import TINY_STUDY


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two variants x 2 repeats, one epoch, a study name with an underscore."""
    study = copy.deepcopy(TINY_STUDY)
    study.update(name="tiny_formats", repeats=2)
    study["train"]["epochs"] = 1
    out = tmp_path_factory.mktemp("formats")
    assert run_study(study, out).outcome.ok
    return out


def _printed(capsys, *args) -> str:
    capsys.readouterr()
    assert main([str(a) for a in args]) == 0
    return capsys.readouterr().out


def test_ls_csv_has_the_rows_and_values_of_ls_json(store, capsys):
    rows = json.loads(_printed(capsys, "ls", store, "--json"))
    table = list(csv.DictReader(io.StringIO(_printed(capsys, "ls", store, "--format", "csv"))))
    assert [r["configuration"] for r in table] == [r["configuration"] for r in rows] and len(rows) == 2
    for row, line in zip(rows, table):
        for key in ("val_accuracy", "train_loss", "test_accuracy", "gap", "best_epoch"):
            assert float(line[key]) == row[key]  # full precision: the same numbers a script reads
        low, high = row["ci"]["val_accuracy"]
        assert (float(line["ci.val_accuracy.low"]), float(line["ci.val_accuracy.high"])) == (low, high)
        assert line["run_ids"].split() == row["run_ids"] and int(line["statuses.done"]) == 2


def test_ls_runs_and_compare_csv_have_the_rows_of_their_json(store, capsys):
    runs = json.loads(_printed(capsys, "ls", store, "--runs", "--json"))
    table = list(csv.DictReader(io.StringIO(_printed(capsys, "ls", store, "--runs", "--format", "csv"))))
    assert [r["id"] for r in table] == [r["id"] for r in runs] and len(runs) == 4
    assert [float(r["val_accuracy"]) for r in table] == [r["val_accuracy"] for r in runs]
    comparisons = json.loads(_printed(capsys, "compare", store, "--json"))
    table = list(csv.DictReader(io.StringIO(_printed(capsys, "compare", store, "--format", "csv"))))
    assert [(r["baseline"], r["configuration"]) for r in table] == [(c["baseline"], c["configuration"]) for c in comparisons]
    assert [float(r["difference"]) for r in table] == [c["difference"] for c in comparisons]


def test_latex_tables_hold_a_tabular_with_underscores_and_percent_signs_escaped(store, capsys):
    text = _printed(capsys, "ls", store, "--format", "latex")
    assert "\\begin{tabular}" in text and "\\end{tabular}" in text
    assert "tiny\\_formats" in text and "train acc \\%" in text and "$\\pm$" in text
    body = text.split("\\begin{tabular}", 1)[1]
    cells = body.replace(" & ", " ").replace("$\\pm$", "")  # the column separators and ± are meant
    assert not re.search(r"(?<!\\)[_%&#]", cells), body  # nothing else unescaped
    rows = [line for line in body.splitlines() if line.endswith("\\\\")]
    assert len(rows) == 3 and all(line.count(" & ") == 10 for line in rows)  # header + 2 rows, 11 columns
    compare = _printed(capsys, "compare", store, "--format", "latex")
    assert "\\begin{tabular}{lrrrrrrrl}" in compare and "small/dropout vs small/none" in compare


def test_markdown_tables_are_pipe_tables_with_the_terminals_cells(store, capsys):
    text = _printed(capsys, "ls", store, "--format", "md")
    lines = text.splitlines()
    assert lines[0].startswith("| configuration | runs |") and lines[1].startswith("|---|---:|")
    assert sum(1 for line in lines if line.startswith("| small/")) == 2 and " ± " in text
    runs = _printed(capsys, "ls", store, "--runs", "--format", "md")
    assert sum(1 for line in runs.splitlines() if line.startswith("| ")) == 5


def test_json_and_format_together_are_refused_with_exit_status_2(store, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ls", str(store), "--json", "--format", "csv"])
    assert exit_.value.code == 2 and "not allowed with argument --json" in capsys.readouterr().err
    assert json.loads(_printed(capsys, "compare", store, "--format", "json"))  # --format json is --json


def test_escaping_and_csv_by_hand():
    assert latex_escape("a_b 5% & #1 {x} ~ ^ \\ $ ± Δ") == (
        "a\\_b 5\\% \\& \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{} \\$ $\\pm$ $\\Delta$")
    table = latex_text(["name", "acc %"], [["a_1", "50.00"], ["b", ""]], caption="100% sure")
    assert "\\begin{tabular}{lr}" in table and "a\\_1 & 50.00 \\\\" in table and "\\caption{100\\% sure}" in table
    rows = list(csv.reader(io.StringIO(csv_text([{"a": 1, "b": {"c": [1, 2]}, "d": None}, {"a": "x,y", "e": 2.5}]))))
    assert rows == [["a", "b.c", "d", "e"], ["1", "1 2", "", ""], ["x,y", "", "", "2.5"]]
