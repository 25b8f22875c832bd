"""Settings on the command line (``cnnlab run|spec SPEC KEY=VALUE ...``): the plan an edit of the
file gives, one clear error per bad override with nothing written, ``--epochs`` and ``--precision``
as two of them, and what the store, ``cnnlab ls`` and the report keep of them."""

from __future__ import annotations

import json

import pytest
import yaml

from cnnlab.api import run_study
from cnnlab.cli import main
from cnnlab.errors import SpecError
from cnnlab.spec.loader import read_yaml
from cnnlab.spec.overrides import parse_overrides
from tests.conftest import EXAMPLES

from .conftest import cnnlab, write_study


def _plan(capsys, spec, *words) -> list[str]:
    """The run ids ``cnnlab spec SPEC WORDS --json`` lists."""
    assert main(["spec", str(spec), *map(str, words), "--json"]) == 0
    return [run["id"] for run in json.loads(capsys.readouterr().out)["runs"]]


def _edited(tmp_path, study: dict, name: str = "edited.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_values_are_read_as_the_spec_s_yaml_is():
    values = parse_overrides(["a=on", "b=1e-4", "c=[3, 5]", "d={rate: 0.3, after: [conv1]}", "e=", "f=yes", "g=x=y"])
    # PyYAML alone reads on and yes as True; the spec's loader keeps them text, and 1e-4 a number.
    assert values == {"a": "on", "b": 1e-4, "c": [3, 5], "d": {"rate": 0.3, "after": ["conv1"]}, "e": None,
                      "f": "yes", "g": "x=y"}


def test_overrides_plan_the_runs_an_edit_of_the_file_plans(tmp_path, capsys, tiny_study):
    tiny_study["variants"]["l2"] = {"l2": 1e-3}
    spec = write_study(tmp_path, tiny_study)
    words = ["train.optimizer.lr=0.05", "repeats=2", "variants.l2.l2=1e-4", "architectures.small[0].conv.filters=8",
             "variants.dropout.dropout.rate=0.5", "sweep.conv.kernel=[3, 5]", "variants.bn={batchnorm: true}",
             "train.early_stopping.patience=1"]
    edited = json.loads(json.dumps(tiny_study))
    edited["train"]["optimizer"]["lr"] = 0.05
    edited["repeats"] = 2
    edited["variants"]["l2"]["l2"] = 1e-4
    edited["architectures"]["small"][0]["conv"]["filters"] = 8
    edited["variants"]["dropout"]["dropout"] = {"rate": 0.5}
    edited["sweep"] = {"conv.kernel": [3, 5]}
    edited["variants"]["bn"] = {"batchnorm": True}
    edited["train"]["early_stopping"] = {"patience": 1}
    by_overrides = _plan(capsys, spec, *words)
    assert len(by_overrides) == 4 * 2 * 2  # 4 variants x 2 kernels x 2 repeats
    assert by_overrides == _plan(capsys, _edited(tmp_path, edited))
    assert set(by_overrides).isdisjoint(_plan(capsys, spec))
    # The words may follow options too, as any option may come last.
    assert main(["spec", str(spec), "--json", *words]) == 0
    assert [run["id"] for run in json.loads(capsys.readouterr().out)["runs"]] == by_overrides


@pytest.mark.parametrize("example, words, edit", [
    ("study_a_regularization_cifar10.yaml", ["train.optimizer.lr=0.01", "repeats=2"],
     lambda s: (s["train"]["optimizer"].__setitem__("lr", 0.01), s.__setitem__("repeats", 2))),
    ("study_c_mnist_sweep.yaml", ["seed=7", "train.batch_size=64"],
     lambda s: (s.__setitem__("seed", 7), s["train"].__setitem__("batch_size", 64))),
])
def test_overrides_of_the_examples_give_the_edited_files_run_ids(tmp_path, capsys, example, words, edit):
    study, _ = read_yaml((EXAMPLES / example).read_text(), example)  # on: stays a key, as cnnlab reads it
    edit(study)
    assert _plan(capsys, EXAMPLES / example, *words) == _plan(capsys, _edited(tmp_path, study))


def test_overrides_that_only_make_sense_together_are_validated_together(tmp_path, capsys, tiny_study):
    spec = write_study(tmp_path, tiny_study)
    points = "variants.dropout.points=[{conv.kernel: 5}]"
    assert main(["spec", str(spec), points]) == 2
    assert (f"the command line ({points}): variants.dropout.points[0]: {{'conv.kernel': 5}} is not a point of the "
            "sweep") in capsys.readouterr().err
    assert len(_plan(capsys, spec, points, "sweep.conv.kernel=[3, 5]")) == 3  # dropout at kernel 5 alone


def test_spec_shows_the_overrides_over_the_file(tmp_path, capsys, tiny_study):
    spec = write_study(tmp_path, tiny_study)
    assert main(["spec", str(spec), "repeats=3", "train.optimizer.lr=1e-4"]) == 0
    out = capsys.readouterr().out
    assert f"with repeats=3 train.optimizer.lr=0.0001 over {spec}" in out
    assert "6 runs: 2 configurations x 3 repeats" in out and "lr 0.0001" in out


@pytest.mark.parametrize("words, message", [
    (["train.optimizer.lr=-1"],
     "the command line (train.optimizer.lr=-1): train.optimizer.lr: expected greater than 0; found -1"),
    (["train.optimizer.lrr=0.1"],
     "'train.optimizer.lrr' is not a setting of the spec: train.optimizer has no 'lrr' (did you mean 'lr'?)"),
    (["repeat=3"], "'repeat' is not a setting of the spec: the spec has no 'repeat' (did you mean 'repeats'?)"),
    (["variants.dropuot.dropout=0.3"], "variants has no 'dropuot' (did you mean 'dropout'?); its keys: none, dropout"),
    (["architectures.small[9].conv.filters=8"], "architectures.small has 4 items; [9] is past its end"),
    (["train.epochs.max=3"], "the command line (train.epochs.max=3): train.epochs holds a value, not settings"),
    (["repeats=2", "train.batch_size=0"],
     "the command line (train.batch_size=0): train.batch_size: expected greater than or equal to 1; found 0"),
    (["train.epochs=[1"], "the command line (train.epochs=[1): not valid YAML"),
    (["train.epochs"], "'train.epochs' is not a setting: write KEY=VALUE"),
    (["train.epochs=2", "train.epochs=3"], "train.epochs is set twice (train.epochs=2 and train.epochs=3)"),
    (["train.precision=fp32", "--precision", "bf16"], "--precision bf16 and train.precision=fp32 disagree"),
    (["variants.dropout.dropout.after=[conv9]"], "variants.dropout: on architecture 'small': dropout after: this architecture has no layer 'conv9'"),
])
def test_each_bad_override_is_one_error_that_names_it_and_nothing_is_written(tmp_path, capsys, tiny_study, words,
                                                                              message):
    spec = write_study(tmp_path, tiny_study)
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet", *words]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1
    assert not out.exists()
    if "--precision" not in words:
        assert main(["spec", str(spec), *words]) == 2
        assert message in capsys.readouterr().err


def test_a_bad_override_in_a_real_process_has_no_traceback_and_debug_after_it_shows_one(tmp_path, tiny_study):
    spec = write_study(tmp_path, tiny_study)
    result = cnnlab("run", spec, "train.optimizer.lr=-1", "--out", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the command line (train.optimizer.lr=-1): train.optimizer.lr: expected greater than 0" in result.stderr
    with pytest.raises(SpecError, match="expected greater than 0"):
        main(["run", str(spec), "train.optimizer.lr=-1", "--debug"])
    assert not (tmp_path / "out").exists()


def test_the_api_takes_overrides_and_refuses_a_bad_one_before_writing(tmp_path, tiny_study):
    with pytest.raises(SpecError, match=r"the command line \(variants.none.l2=-0.5\): variants.none.l2: expected"):
        run_study(tiny_study, tmp_path / "out", overrides={"variants.none.l2": -0.5})
    assert not (tmp_path / "out").exists()


def test_epochs_and_precision_flags_are_overrides_kept_with_the_study_and_shown(tmp_path, capsys, tiny_study):
    tiny_study["variants"]["dropout"]["train"] = {"epochs": 5}  # --epochs shortens a variant's own epochs too
    spec = write_study(tmp_path, tiny_study)
    out = tmp_path / "out"
    result = cnnlab("run", spec, "--out", out, "--quiet", "--epochs", "1", "--precision", "bf16",
                    "train.optimizer.lr=0.02")
    assert result.returncode == 0, result.stderr
    edited = json.loads(json.dumps(tiny_study))
    edited["train"].update(epochs=1, precision="bf16")
    edited["train"]["optimizer"]["lr"] = 0.02
    edited["variants"]["dropout"]["train"]["epochs"] = 1
    runs = json.loads(cnnlab("ls", out, "--runs", "--json").stdout)
    assert [run["id"] for run in runs] == _plan(capsys, _edited(tmp_path, edited))
    assert [run["epochs_done"] for run in runs] == [1, 1]
    shown = "train.optimizer.lr=0.02 train.precision=bf16 --epochs 1"
    assert f"Study 'tiny' in {out}: 2 runs (with {shown})" in cnnlab("ls", out).stdout
    report = (out / "report.html").read_text()
    assert "Overrides" in report and shown in report
    # A rerun with --epochs alone is another version of the study: the store shows what this one was given.
    assert cnnlab("run", spec, "--out", out, "--quiet", "--epochs", "1", "--no-report").returncode == 0
    assert "(with --epochs 1)" in cnnlab("ls", out).stdout
