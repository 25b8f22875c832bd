"""Three tables of the reference studies, as the report shows them: study B's conv layers and best
accuracies of any epoch in the results table, study E's parameter table with its conv / dense
split, and study C's changes from the original of a variant that trains with its own settings."""

from __future__ import annotations

import copy
import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cnnlab.analysis.tables import result_rows
from cnnlab.api import open_store, run_study
from cnnlab.cli.main import main
from cnnlab.models import build_model, format_summary, summarize
from cnnlab.models.summary import input_shapes, model_parts
from cnnlab.records import StudyRecord
from cnnlab.report import write_report
from cnnlab.report.architecture_tables import change_blocks, parameter_blocks
from cnnlab.report.data import ModelCard, ReportData
from cnnlab.report.document import Table
from cnnlab.report.html import render_html
from cnnlab.report.sections import model_summaries
from cnnlab.spec.loader import load_study, parse_study
from cnnlab.spec.plan import expand
from tests.analysis.stored_runs import run_record
from tests.conftest import EXAMPLES, TINY_STUDY

CIFAR = ([3, 32, 32], [f"class{i}" for i in range(10)])


class Tables(HTMLParser):
    """Every table of a page by its id: header cells, then each body row's cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table, self._row, self._cell = None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or f"table{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(page)
    return parser.tables


def _data(example: str, folder: Path, metrics=None) -> ReportData:
    """A study's report data from its example spec, one finished run per configuration and no
    training: what the report builds its model tables from."""
    study, _ = load_study(EXAMPLES / example)
    runs = []
    for position, config in enumerate(c for c in expand(study) if c.repeat == 0 and c.fold is None):
        values = (metrics or {}).get(config.label, {})
        runs.append(run_record(id=f"r{position}", position=position, architecture=config.architecture,
                               variant=config.variant, sweep=config.sweep, config=config.model_dump(mode="json"),
                               input_shape=CIFAR[0], class_names=CIFAR[1], **values))
    record = StudyRecord(study.name, "", study.model_dump(mode="json"), None, None, "", "", 0.0)
    rows = result_rows(runs)
    return ReportData(folder, record, runs, rows, [], [], None, None, "", {})


# ---------------------------------------------------------------- study E: parameters per architecture


def _summary(example: str, label: str):
    study, _ = load_study(EXAMPLES / example)
    config = next(c for c in expand(study) if c.label == label)
    return summarize(build_model(config.layer_list(), (3, 32, 32), 10, variant=config.variant_spec))


def test_study_e_splits_parameters_and_neurons_between_its_conv_and_dense_parts():
    summary = _summary("study_e_deep_cifar10.yaml", "E/bn_dropout")  # as published
    parts = model_parts(summary)
    assert (parts.conv.params, parts.dense.params, parts.total.params) == (960_896, 5_255_218, 6_216_114)
    assert (parts.conv.neurons, parts.dense.neurons) == (131_072, 2_058)
    assert input_shapes(summary)[:2] == [(None, 32, 32, 3), (None, 32, 32, 64)]
    # The arm without batch norm loses the output BN's 40 parameters from the dense part only.
    no_bn = model_parts(_summary("study_e_deep_cifar10.yaml", "E/no_bn"))
    assert (no_bn.conv.params, no_bn.dense.params, no_bn.dense.neurons) == (960_896, 5_255_178, 2_058)


def test_a_batch_norm_after_a_conv_counts_in_the_conv_part():
    # TINY_STUDY's net: conv(4, 3x3, same) > maxpool > flatten > dense(10); batch norm after each conv.
    config = expand(parse_study({**copy.deepcopy(TINY_STUDY), "variants": {"bn": {"batchnorm": True}}}))[0]
    parts = model_parts(summarize(build_model(config.layer_list(), (1, 8, 8), 10, variant=config.variant_spec)))
    assert (parts.conv.params, parts.dense.params) == (40 + 16, 650)  # the BN's 4 x 4 with its conv
    assert parts.parts == ("conv", "conv", "conv", "dense", "dense")


def test_the_model_section_shows_each_architectures_parameter_table(tmp_path):
    data = _data("study_e_deep_cifar10.yaml", tmp_path)
    blocks = parameter_blocks(data)
    assert [b.text for b in blocks if b.kind == "subheading"] == ["Parameters of E, layer by layer (E/bn_dropout)"]
    data.models = [ModelCard(row.configuration, format_summary(_summary("study_e_deep_cifar10.yaml", row.configuration)),
                             1, 1, 0) for row in data.rows]
    page = tables(render_html(data, [model_summaries(data)]))
    layers = page["parameters-1-e-layers"]
    assert layers[0] == ["layer", "type", "input shape", "output shape", "parameters", "part"]
    assert layers[1] == ["conv1", "Conv2D", "(None, 32, 32, 3)", "(None, 32, 32, 64)", "1,792", "conv"]
    assert layers[3] == ["dropout1", "Dropout", "(None, 16, 16, 64)", "(None, 16, 16, 64)", "0", "conv"]
    assert layers[-1] == ["batchnorm1", "BatchNormalization", "(None, 10)", "(None, 10)", "40", "dense"]
    assert page["parameters-1-e-split"] == [
        ["part", "parameters", "% of parameters", "neurons", "% of neurons"],
        ["conv", "960,896", "15.5", "131,072", "98.5"],
        ["dense", "5,255,218", "84.5", "2,058", "1.5"],
        ["total", "6,216,114", "100.0", "133,130", "100.0"],
    ]


# ---------------------------------------------------------------- study C: changes from the original


def test_study_c_tuned_run_is_tabled_against_the_original_setting_by_setting(tmp_path):
    point = "conv.kernel=3 conv.stride=1"
    metrics = {f"cifar_net/none {point}": {"val_accuracy": 0.712}, f"cifar_net/l2_all {point}": {"val_accuracy": 0.488},
               f"cifar_net/l2_tuned {point}": {"val_accuracy": 0.6795}}
    data = _data("study_c_cifar10_sweep.yaml", tmp_path, metrics)
    blocks = change_blocks(data)
    assert [b.text for b in blocks if b.kind == "subheading"] == ["Changes from the original"]
    (table,) = [b for b in blocks if isinstance(b, Table)]  # l2_all trains as the study does: no table
    assert table.caption == f"cifar_net/l2_tuned {point} against the original, cifar_net/none {point}"
    assert [[cell.text for cell in row] for row in table.rows] == [
        ["L2 penalty", "none", "0.01 on conv1, conv3, dense1"],
        ["learning rate (optimizer.lr)", "0.001", "0.002"],
        ["epochs", "15", "20"],
        ["result: val acc %", "71.20", "67.95"],
    ]


def test_a_study_whose_variants_train_alike_has_no_changes_table(tmp_path):
    assert change_blocks(_data("study_e_deep_cifar10.yaml", tmp_path)) == []


# ---------------------------------------------------------------- a trained study, end to end


@pytest.fixture(scope="module")
def tuned_store(tmp_path_factory) -> Path:
    """TINY_STUDY (3 epochs) plus a variant with dropout, its own learning rate and 2 epochs."""
    study = copy.deepcopy(TINY_STUDY)
    study["name"] = "tuned"
    study["variants"]["tuned"] = {"dropout": {"rate": 0.25, "after": ["maxpool1"]},
                                  "train": {"optimizer": {"lr": 0.02}, "epochs": 2}}
    out = tmp_path_factory.mktemp("tuned")
    assert run_study(study, out).outcome.ok
    write_report(out)
    return out


def test_the_results_table_has_conv_layers_and_the_best_accuracies_of_any_epoch(tuned_store):
    page = tables((tuned_store / "report.html").read_text())
    header, *body = page["results-table"]
    assert header[header.index("params") + 1] == "conv layers"
    assert header[header.index("val acc %") + 1: header.index("val acc %") + 3] == ["best train acc %", "best val acc %"]
    with open_store(tuned_store) as store:
        runs = {run.variant: run for run in store.runs()}
        best_train = {variant: max(e["train_accuracy"] for e in store.epochs(run.id)) for variant, run in runs.items()}
        epochs = {variant: len(store.epochs(run.id)) for variant, run in runs.items()}
    assert epochs == {"none": 3, "dropout": 3, "tuned": 2}
    assert len(body) == 3
    for cells in body:
        variant = cells[header.index("variant")]
        assert cells[header.index("conv layers")] == "1"
        assert cells[header.index("best train acc %")] == f"{100 * best_train[variant]:.2f}"
        assert cells[header.index("best val acc %")] == f"{100 * runs[variant].best_val_accuracy:.2f}"
        assert float(cells[header.index("best val acc %")]) >= float(cells[header.index("val acc %")])


def test_the_report_tables_the_tuned_variants_changes_and_the_architectures_parameters(tuned_store):
    text = (tuned_store / "report.html").read_text()
    page = tables(text)
    with open_store(tuned_store) as store:
        val = {run.variant: run.val_accuracy for run in store.runs()}
        test = {run.variant: run.test_accuracy for run in store.runs()}
    assert page["changes-tuned"] == [
        ["setting", "original", "this variant"],
        ["dropout", "none", "0.25 after maxpool1"],
        ["learning rate (optimizer.lr)", "0.01", "0.02"],
        ["epochs", "3", "2"],
        ["result: val acc %", f"{100 * val['none']:.2f}", f"{100 * val['tuned']:.2f}"],
        ["result: test acc %", f"{100 * test['none']:.2f}", f"{100 * test['tuned']:.2f}"],
    ]
    assert "<caption>small/tuned against the original, small/none</caption>" in text
    assert text.index("Changes from the original") < text.index('id="curves"')  # under the results table
    assert page["parameters-1-small-split"][1:] == [["conv", "40", "5.8", "256", "96.2"],
                                                    ["dense", "650", "94.2", "10", "3.8"],
                                                    ["total", "690", "100.0", "266", "100.0"]]
    markdown = write_report(tuned_store, format="md").read_text()
    assert "| learning rate (optimizer.lr) | 0.01 | 0.02 |" in markdown
    assert "| conv1 | Conv2D | (None, 8, 8, 1) | (None, 8, 8, 4) | 40 | conv |" in markdown


def test_ls_csv_and_json_carry_the_conv_layers_and_best_validation_accuracy(tuned_store, capsys):
    capsys.readouterr()
    assert main(["ls", str(tuned_store), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert main(["ls", str(tuned_store), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["conv_layers"] for row in rows] == [1, 1, 1]
    for row, line in zip(rows, table):
        assert int(line["conv_layers"]) == row["conv_layers"]
        assert float(line["best_val_accuracy"]) == row["best_val_accuracy"] >= row["val_accuracy"]
