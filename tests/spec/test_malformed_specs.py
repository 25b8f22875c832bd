"""Malformed specs: each error names the file, the line, the field, what was expected and what was found."""

from __future__ import annotations

import textwrap

import pytest

from cnnlab.errors import SpecError
from cnnlab.spec.loader import load_study

GOOD = """\
name: t
dataset:
  name: digits
architectures:
  A:
    - conv: {filters: 8, kernel: 3}
    - maxpool: 2
    - flatten
    - dense: 10
"""

# (description, yaml text, line expected in the message, fragments expected in the message)
CASES = [
    ("unknown top-level key with did-you-mean", GOOD + "repeat: 3\n", 10, ["repeat", "did you mean 'repeats'"]),
    ("unknown layer type", GOOD.replace("maxpool: 2", "maxpol: 2"), 7, ["architectures.A[1]", "unknown layer type 'maxpol'", "did you mean 'maxpool'"]),
    ("unknown layer field", GOOD.replace("filters: 8", "filter: 8"), 6, ["architectures.A[0].conv.filter", "did you mean 'filters'"]),
    ("negative filters", GOOD.replace("filters: 8", "filters: -8"), 6, ["architectures.A[0].conv.filters", "greater than or equal to 1", "-8"]),
    ("filters of the wrong type", GOOD.replace("filters: 8", "filters: many"), 6, ["conv.filters", "integer", "'many'"]),
    ("bad padding", GOOD.replace("kernel: 3}", "kernel: 3, padding: full}"), 6, ["conv.padding", "'valid' or 'same'", "'full'"]),
    ("unknown dataset", GOOD.replace("name: digits", "name: cifar11"), 3, ["dataset.name", "did you mean 'cifar10'"]),
    ("missing dataset", GOOD.replace("dataset:\n  name: digits\n", ""), None, ["dataset", "required"]),
    ("no classifier", GOOD.replace("    - dense: 10\n", ""), 5, ["architectures.A:", "no dense layer"]),
    ("softmax on the classifier", GOOD.replace("dense: 10", "dense: {units: 10, activation: softmax}"), 9, ["softmax", "loss"]),
    ("unknown optimizer", GOOD + "train:\n  optimizer: {name: sgdd}\n", 11, ["train.optimizer.name", "'sgd'", "'sgdd'"]),
    ("negative learning rate", GOOD + "train:\n  optimizer: {name: adam, lr: -0.1}\n", 11, ["train.optimizer.lr", "greater than 0", "-0.1"]),
    ("batch size zero", GOOD + "train:\n  batch_size: 0\n", 11, ["train.batch_size", "greater than or equal to 1"]),
    ("dropout rate 1.5", GOOD + "variants:\n  d: {dropout: 1.5}\n", 11, ["variants.d.dropout", "less than 1"]),
    ("bad sweep key", GOOD + "sweep:\n  conv.kernal: [3, 5]\n", 11, ["sweep.conv.kernal", "did you mean 'kernel'"]),
    ("sweep of a non-list", GOOD + "sweep:\n  conv.kernel: 3\n", 11, ["sweep.conv.kernel", "list"]),
    ("kfold of one", GOOD + "evaluate:\n  kfold: 1\n", 11, ["evaluate.kfold", "at least 2"]),
    ("a layer given as a number", GOOD.replace("    - flatten\n", "    - 42\n"), 8, ["architectures.A[2]", "one-key mapping", "42"]),
    ("a layer with two keys", GOOD.replace("    - flatten\n", "    - {flatten: null, dense: 3}\n"), 8, ["architectures.A[2]", "one-key mapping"]),
    ("nesterov without momentum", GOOD + "train:\n  optimizer: {name: sgd, nesterov: true}\n", 11, ["train.optimizer", "nesterov"]),
    ("npz without a path", GOOD.replace("name: digits", "name: npz"), 2, ["dataset", "needs 'path:'"]),
    ("negative split count", GOOD.replace("name: digits", "name: digits\n  split: {val: -5}"), 4, ["dataset.split.val", "-5"]),
]


@pytest.mark.parametrize("text, line, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_spec_message_names_file_line_field_and_values(tmp_path, text, line, fragments):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_study(path)
    message = str(caught.value)
    assert str(path) in message
    if line is not None:
        assert f"{path}:{line}:" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: t\ndataset: {name: digits\narchitectures: []\n")
    with pytest.raises(SpecError, match=r"broken.yaml:\d+: not valid YAML"):
        load_study(path)


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_study(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(SpecError, match="empty"):
        load_study(tmp_path / "empty.yaml")


def test_a_list_at_the_top_is_refused(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="mapping"):
        load_study(tmp_path / "list.yaml")


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match="more than"):
        load_study(tmp_path / "bomb.yaml")


def test_yaml_12_scalars_on_is_a_key_and_1e_5_a_float(tmp_path):
    text = GOOD + textwrap.dedent("""\
        variants:
          l2: {l2: 1e-5, on: [dense]}
        """)
    (tmp_path / "s.yaml").write_text(text)
    study, _ = load_study(tmp_path / "s.yaml")
    assert study.variants["l2"].l2.factor == 1e-5
    assert study.variants["l2"].on == ["dense"]


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\ndataset: {name: digits}\narchitectures:\n  A: [flatten, {dense: 10}]\n"
                    "  B: [flatten, {dense: 10}]\n  A: [{conv: 4}, flatten, {dense: 10}]\n")
    with pytest.raises(SpecError) as error:
        load_study(path)
    assert str(error.value) == (f"{path}:6: the key 'A' appears twice in architectures (lines 4 and 6); YAML would "
                                "keep only the last one. Remove or rename one")


def test_a_key_written_twice_on_one_line_is_refused_too(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("name: flow\ndataset: {name: digits, name: mnist}\narchitectures:\n  A: [flatten, {dense: 10}]\n")
    with pytest.raises(SpecError, match=r"flow.yaml:2: the key 'name' appears twice in dataset \(lines 2 and 2\)"):
        load_study(path)


def test_names_holding_control_characters_are_refused_where_they_are_written(tmp_path):
    path = tmp_path / "escape.yaml"
    path.write_text('name: "study\\e[2J"\ndataset: {name: digits}\narchitectures:\n  "A\\u202e": [flatten, {dense: 10}]\n')
    with pytest.raises(SpecError) as error:
        load_study(path)
    message = str(error.value)
    assert "2 problems" in message
    assert f"{path}:1: name: the name 'study\\x1b[2J' holds a control character (U+001B) at position 5" in message
    assert f"{path}:3: architectures: the name 'A\\u202e' holds a control character (U+202E) at position 1" in message
    assert "\x1b" not in message and "\u202e" not in message  # shown escaped, never raw


def test_a_spec_path_that_is_not_a_regular_file_is_refused_before_reading(tmp_path):
    import os

    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)  # reading it would wait forever for a writer
    with pytest.raises(SpecError, match="not a regular file"):
        load_study(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2_000_000)
    with pytest.raises(SpecError, match="the file is 2,000,000 bytes; a spec is at most 1,000,000"):
        load_study(big)
