"""The executor's side of stacked seeds: which runs become one task, what it says it chose, and
that every seed is still an ordinary run (its id, record, checkpoints, report)."""

from __future__ import annotations

import copy

import pytest
import yaml

from cnnlab.api import load_spec, open_store, run_study
from cnnlab.data import DataCache
from cnnlab.execute.grouping import plan_tasks
from cnnlab.spec.plan import expand
from cnnlab.train.stacked import CPU_MAX_STEP_FLOPS, choose

STUDY = {
    "name": "stacked",
    "dataset": {"name": "digits", "split": {"train": 400, "val": 200, "test": 200}},
    "architectures": {"tiny": [{"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, {"maxpool": 2}, "flatten",
                               {"dense": 10}]},
    "variants": {"none": {}, "dropout": {"dropout": 0.25}},
    "train": {"optimizer": {"name": "adam", "lr": 0.01}, "batch_size": 32, "epochs": 3},
    "repeats": 3,
}
# A2's size on digits: 1.2 GFLOP a step at batch 64, which a CPU trains faster as separate runs.
LARGE = [{"conv": {"filters": 256, "kernel": 3, "padding": "same"}}, {"conv": {"filters": 256, "kernel": 3,
         "padding": "same"}}, {"maxpool": 2}, "flatten", {"dense": 10}]


def _plan(study: dict):
    return expand(load_spec(study)[0])


def test_the_seeds_of_each_configuration_become_one_task_and_the_choice_is_said():
    said: list[str] = []
    plan = _plan(STUDY)
    tasks = plan_tasks(plan, DataCache(None), message=said.append)
    assert [[config.run_id for config in task.configs] for task in tasks] == \
        [[c.run_id for c in plan if c.variant == variant] for variant in ("none", "dropout")]
    assert [sorted(config.repeat for config in task.configs) for task in tasks] == [[0, 1, 2], [0, 1, 2]]
    assert said == ["Training the seeds of 2 configurations as one stacked model each (tiny/none, tiny/dropout); "
                    "--stack never trains them one by one"]


def test_never_and_a_large_net_on_a_cpu_train_one_by_one_and_always_stacks_it():
    cache = DataCache(None)
    assert all(not task.stacked for task in plan_tasks(_plan(STUDY), cache, "never"))
    large = copy.deepcopy(STUDY)
    large["architectures"] = {"big": LARGE}
    large["train"]["batch_size"] = 64
    large["train"]["device"] = "cpu"
    said: list[str] = []
    assert all(not task.stacked for task in plan_tasks(_plan(large), cache, message=said.append))
    assert len(said) == 1 and said[0].startswith("Training the seeds of 2 configurations one by one (big/none, "
                                                 "big/dropout: ") and "faster as separate runs on a CPU" in said[0]
    assert all(task.stacked for task in plan_tasks(_plan(large), cache, "always"))
    # The spec says it the same way, per study.
    large["train"]["stack"] = "always"
    assert all(task.stacked for task in plan_tasks(_plan(large), cache))


def test_the_cost_rule_stacks_small_steps_on_a_cpu_and_anything_on_a_gpu(monkeypatch):
    assert choose("auto", 3, CPU_MAX_STEP_FLOPS, "cpu").stack
    assert not choose("auto", 3, CPU_MAX_STEP_FLOPS * 1.01, "cpu").stack
    assert choose("auto", 3, CPU_MAX_STEP_FLOPS * 100, "cuda").stack
    assert not choose("auto", 1, 1.0, "cpu").stack  # one seed: nothing to stack
    assert not choose("always", 3, 1.0, "cpu", unstackable="layer warp1 (warp) has no stacked form").stack
    monkeypatch.setenv("CNNLAB_FAST", "0")  # stacking is only for speed: the switch that turns speed-ups off
    assert not choose("auto", 3, 1.0, "cpu").stack and choose("always", 3, 1.0, "cpu").stack


def test_stacked_seeds_are_ordinary_runs_with_their_ids_and_the_lone_runs_metrics(tmp_path):
    stacked = run_study(STUDY, tmp_path / "stacked", threads=1, stack="always")
    alone = run_study(STUDY, tmp_path / "alone", threads=1, stack="never")
    assert stacked.outcome.statuses == alone.outcome.statuses == {"done": 6}
    with open_store(tmp_path / "stacked") as ours, open_store(tmp_path / "alone") as theirs:
        runs = {run.id: run for run in theirs.runs()}
        assert {run.id for run in ours.runs()} == set(runs)
        for run in ours.runs():
            assert run.environment["stacked"] == 3 and "stacked" not in runs[run.id].environment
            assert run.test_accuracy == pytest.approx(runs[run.id].test_accuracy, abs=1 / 200)
            mine, their = ours.epochs(run.id), theirs.epochs(run.id)
            assert [e["val_loss"] for e in mine] == pytest.approx([e["val_loss"] for e in their], abs=1e-3)
            assert ours.checkpoint_bytes(run.id) is None  # finished: no checkpoint kept
    from cnnlab.report import write_report

    note = "trained together as one stacked model each"
    assert note in write_report(tmp_path / "stacked").read_text()
    assert note not in write_report(tmp_path / "alone").read_text()


def test_how_the_seeds_train_is_not_part_of_their_identity(tmp_path):
    first = run_study(STUDY, tmp_path, threads=1, stack="always", epochs=1)
    again = run_study({**STUDY, "train": {**STUDY["train"], "stack": "never"}}, tmp_path, threads=1, epochs=1)
    assert first.outcome.statuses == {"done": 6}
    assert again.outcome.skipped == 6 and not again.outcome.statuses  # nothing trained again


def _checkpoints(events: list[dict]) -> dict[tuple[str, int], bytes]:
    return {(item["run_id"], item["epoch"]): item["data"] for event in events if event["kind"] == "checkpoints"
            for item in event["checkpoints"]}


def test_resumed_members_stack_again_where_they_can_and_a_member_done_training_only_finishes():
    from cnnlab.execute.runner import train_group

    plan = _plan({**STUDY, "variants": {"none": {}}, "repeats": 3})
    ids = [config.run_id for config in plan]
    events: list[dict] = []
    assert train_group(plan, events.append, DataCache(None), resumes=[None] * 3, attempts=[1] * 3,
                       threads=1) == ["done"] * 3
    whole = {event["run_id"]: event["summary"] for event in events if event["kind"] == "finished"}
    saved = _checkpoints(events)
    # Every member's end is checkpointed (with the others') before any finishes: a kill between two
    # members' final writes leaves the others at their end.
    assert {(run_id, 2) for run_id in ids} <= saved.keys()
    events.clear()
    # Killed after member 0's final checkpoint but before the others reached theirs (a checkpoint after
    # epoch 1 of 3): member 0 only finishes, alone; members 1 and 2 stack again from epoch 1.
    resumes = [saved[(ids[0], 2)], saved[(ids[1], 0)], saved[(ids[2], 0)]]
    assert train_group(plan, events.append, DataCache(None), resumes=resumes, attempts=[2] * 3,
                       threads=1) == ["done"] * 3
    started = {event["run_id"]: event for event in events if event["kind"] == "started"}
    assert [started[run_id]["resumed_from"] for run_id in ids] == [3, 1, 1]
    assert [started[run_id]["info"]["environment"].get("stacked") for run_id in ids] == [None, 2, 2]
    assert not [event for event in events if event["kind"] == "epoch" and event["run_id"] == ids[0]]
    again = {event["run_id"]: event["summary"] for event in events if event["kind"] == "finished"}
    assert again[ids[0]]["test_accuracy"] == whole[ids[0]]["test_accuracy"]  # the same weights, finished alike
    for run_id in ids[1:]:
        assert again[run_id]["test_loss"] == pytest.approx(whole[run_id]["test_loss"], abs=1e-3)


def test_members_resuming_from_different_epochs_each_train_alone():
    from cnnlab.execute.runner import train_group, train_run

    plan = _plan({**STUDY, "variants": {"none": {}}, "repeats": 2})
    events: list[dict] = []
    train_run(plan[0], events.append, DataCache(None), threads=1)
    after_first = next(event["data"] for event in events if event["kind"] == "checkpoint" and event["epoch"] == 0)
    events.clear()
    statuses = train_group(plan, events.append, DataCache(None), resumes=[after_first, None], attempts=[2, 1],
                           threads=1)
    assert statuses == ["done", "done"]
    started = {event["run_id"]: event for event in events if event["kind"] == "started"}
    assert [started[config.run_id]["resumed_from"] for config in plan] == [1, 0]
    assert all("stacked" not in event["info"]["environment"] for event in started.values())


def test_a_bad_stack_setting_names_its_line_and_the_choices(tmp_path, capsys):
    from cnnlab.cli.main import main

    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump({**STUDY, "train": {**STUDY["train"], "stack": "sometimes"}}, sort_keys=False))
    assert main(["spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "study.yaml:" in err and "train.stack" in err and "'auto', 'always' or 'never'" in err
    with pytest.raises(SystemExit) as stop:
        main(["run", str(tmp_path / "any.yaml"), "--stack", "sometimes"])
    assert stop.value.code == 2
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err
