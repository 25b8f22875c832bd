"""Which runs a study's numbers count: the latest plan's, never a quick trial's or an edited
architecture's; earlier runs are kept, named, listed with --all and removed on purpose."""

from __future__ import annotations

import copy

import pytest
import yaml

from cnnlab.api import open_store, run_study
from cnnlab.cli import main
from cnnlab.errors import SpecError
from tests.conftest import TINY_STUDY


def _study(**train) -> dict:
    study = copy.deepcopy(TINY_STUDY)
    study["repeats"] = 2
    study["train"].update(train)
    return study


def _table(result) -> list[tuple]:
    return [(row.configuration, row.runs, row.done, row.params_total, row.epochs, row.val_accuracy, row.ci)
            for row in result.rows]


def test_a_quick_trial_then_the_full_run_gives_the_full_runs_tables(tmp_path, capsys):
    alone = run_study(_study(), tmp_path / "alone")
    run_study(_study(), tmp_path / "both", epochs=1)  # the quick trial first
    both = run_study(_study(), tmp_path / "both")
    assert _table(both) == _table(alone)
    assert all(row.runs == 2 and row.epochs == 3 for row in both.rows)
    with open_store(tmp_path / "both") as store:
        assert len(store.runs("tiny")) == 4 and len(store.runs("tiny", earlier=True)) == 4
        assert len(store.runs("tiny", every=True)) == 8

    assert main(["ls", str(tmp_path / "both")]) == 0
    out = capsys.readouterr().out
    assert "4 runs from an earlier version of this study" in out and "are kept and not counted" in out
    assert main(["ls", str(tmp_path / "both"), "--all"]) == 0
    assert "Runs of earlier versions of the study, not counted above (4):" in capsys.readouterr().out

    assert main(["prune", str(tmp_path / "both")]) == 0
    assert "Removed 4 run(s) of earlier versions" in capsys.readouterr().out
    with open_store(tmp_path / "both") as store:
        assert len(store.runs("tiny", every=True)) == 4
        kept = {run.id for run in store.runs("tiny")}
    assert all((tmp_path / "both" / "artifacts" / run_id).is_dir() for run_id in kept)
    assert len(list((tmp_path / "both" / "artifacts").iterdir())) == 4  # the trial's files went too
    assert main(["prune", str(tmp_path / "both")]) == 0
    assert "Nothing to remove" in capsys.readouterr().out


def test_an_edited_architecture_under_the_same_name_never_shares_a_row_with_the_old_one(tmp_path):
    first = run_study(_study(epochs=1), tmp_path)
    wider = _study(epochs=1)
    wider["architectures"]["small"][0]["conv"]["filters"] = 16
    second = run_study(wider, tmp_path)
    assert first.rows[0].params_total != second.rows[0].params_total
    assert {row.runs for row in second.rows} == {2}  # 2 repeats, not 4 mixed ones
    from cnnlab.report import write_report

    text = write_report(tmp_path).read_text()
    assert "4 runs from an earlier version of this study" in text


def test_another_spec_file_with_the_same_study_name_is_its_next_version_and_nothing_is_overwritten(tmp_path):
    one, other = tmp_path / "one.yaml", tmp_path / "other.yaml"
    one.write_text(yaml.safe_dump(_study(epochs=1)))
    changed = _study(epochs=2)
    changed["variants"] = {"none": {}}
    other.write_text(yaml.safe_dump(changed))
    run_study(one, tmp_path / "out")
    second = run_study(other, tmp_path / "out")
    assert [row.configuration for row in second.rows] == ["small/none"] and second.rows[0].epochs == 2
    assert second.earlier_runs == 4
    with open_store(tmp_path / "out") as store:
        assert store.study("tiny").spec_text == other.read_text()
        history = store.db.execute("SELECT spec_text, spec_path FROM spec_history WHERE study = 'tiny'").fetchall()
        assert [tuple(row) for row in history] == [(one.read_text(), str(one))]
        assert len(store.runs("tiny", every=True)) == 6


def test_an_edited_spec_file_is_the_study_s_next_version_and_its_old_text_is_kept(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(_study(epochs=1)))
    old = spec.read_text()
    run_study(spec, tmp_path / "out")
    spec.write_text(yaml.safe_dump(_study(epochs=2)))
    run_study(spec, tmp_path / "out")
    with open_store(tmp_path / "out") as store:
        assert store.study("tiny").spec_text == spec.read_text()
        history = store.db.execute("SELECT spec_text FROM spec_history WHERE study = 'tiny'").fetchall()
    assert [row[0] for row in history] == [old]


def test_a_sweep_value_listed_twice_is_refused_when_the_plan_is_made(tmp_path, capsys):
    from cnnlab.spec.loader import parse_study
    from cnnlab.spec.plan import expand

    study = _study()
    study["sweep"] = {"conv.kernel": [3, [3, 3]]}
    with pytest.raises(SpecError, match=r"the sweep gives the same run twice: 'small/none conv.kernel=3'"):
        expand(parse_study(study))
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(study))
    assert main(["spec", str(path)]) == 2
    assert "list each sweep value once" in capsys.readouterr().err
