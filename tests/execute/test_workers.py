"""Worker processes: the same results as one process, faster for small models, and a killed
worker costs only the epochs since its run's last checkpoint."""

from __future__ import annotations

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cnnlab.api import open_store, run_study
from cnnlab.execute.local import _worker as REAL_WORKER
from cnnlab.execute.progress import StudyProgress

SMALL_MODEL_STUDY = {
    "name": "small-models",
    "dataset": {"name": "digits", "split": {"train": 1200, "val": 300, "test": 297}},
    "architectures": {"tiny": [{"conv": {"filters": 8, "kernel": 3, "padding": "same"}}, {"maxpool": 2}, "flatten",
                               {"dense": 10}]},
    "variants": {"none": {}, "dropout": {"dropout": 0.2}},
    "train": {"optimizer": "adam", "batch_size": 16, "epochs": 8},
    "repeats": 2,
}


def _epochs(folder: Path) -> dict:
    with open_store(folder) as store:
        return {r["id"]: [(e["epoch"], e["train_loss"], e["val_accuracy"]) for e in store.epochs(r["id"])]
                for r in store.runs()}


def test_two_workers_give_the_same_runs_and_metrics_as_one_process(tmp_path):
    # Lone runs here (a stacked group in a worker: the killed-worker test below, with stack "always").
    one = run_study(SMALL_MODEL_STUDY, tmp_path / "one", threads=1, stack="never")
    two = run_study(SMALL_MODEL_STUDY, tmp_path / "two", threads=1, workers=2, stack="never")
    assert one.outcome.statuses == two.outcome.statuses == {"done": 4}
    assert _epochs(tmp_path / "one") == _epochs(tmp_path / "two")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


@pytest.mark.parametrize("stack", ["never", "always"])
def test_a_killed_worker_costs_only_its_epochs_since_the_checkpoint(tmp_path, stack):
    """Killed mid-epoch, a lone run (never) or a stacked group of two seeds (always) resumes from
    its members' last checkpoints in a new worker and ends with the metrics of an uninterrupted run."""
    study = copy.deepcopy(SMALL_MODEL_STUDY)
    study["train"]["epochs"] = 6
    reference = run_study(study, tmp_path / "reference", threads=1, workers=2, stack=stack)
    assert reference.outcome.ok
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(study))
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "cnnlab.cli", "run", str(spec), "--out", str(out), "--workers", "2",
                                "--threads", "1", "--stack", stack, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            if not (out / "cnnlab.sqlite").exists():
                continue
            with sqlite3.connect(out / "cnnlab.sqlite") as db:
                try:
                    # Both workers are training (a worker still starting up has no run to lose).
                    training, epochs = db.execute("SELECT COUNT(DISTINCT run_id), MAX(epoch) FROM epochs").fetchone()
                except sqlite3.OperationalError:
                    continue
            # The spawn pool's workers (not its resource tracker, also a child).
            workers = [p for p in _children(process.pid)
                       if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
            if training >= 2 and epochs >= 2 and workers:
                os.kill(workers[0], signal.SIGKILL)
                killed = workers[0]
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert killed is not None, "no worker to kill was found"
    assert process.returncode == 0, stderr
    with open_store(out) as store:
        runs = store.runs()
        assert [r["status"] for r in runs] == ["done"] * 4
        # exactly one task was retried: one run, or both members of one stacked group
        retried = 1 if stack == "never" else 2
        assert sorted(r["attempts"] for r in runs) == [1] * (4 - retried) + [2] * retried
        assert all((r["environment"] or {}).get("stacked") == (2 if stack == "always" else None) for r in runs)
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _epochs(out) == _epochs(tmp_path / "reference")
    assert f"{retried} retried after a lost worker" in stdout
    print(f"killed worker {killed}; study completed: {stdout.splitlines()[0]}")


def test_auto_decides_runs_x_threads_from_the_plans_arithmetic(tmp_path):
    from cnnlab.api import load_spec
    from cnnlab.execute.local import auto_workers
    from cnnlab.data import DataCache
    from cnnlab.spec.plan import expand
    from cnnlab.train.device import SMALL_STEP_FLOPS, cpu_count, threads_for

    study = load_spec(SMALL_MODEL_STUDY)[0]
    cache = DataCache(None)
    # 4 digits runs of 8 epochs are seconds of work: not worth starting workers.
    assert auto_workers(expand(study), cache, None) == 1
    # The same runs at 100,000 epochs are minutes: one single-threaded run per core.
    long_plan = expand(study, epochs=100_000)
    assert auto_workers(long_plan, cache, None) == (min(cpu_count(), 4) if cpu_count() > 1 else 1)
    assert auto_workers(long_plan, cache, threads=2) == 1  # asked for multi-threaded runs
    assert auto_workers(long_plan[:1], cache, None) == 1
    assert threads_for(SMALL_STEP_FLOPS / 2) == 1 and threads_for(SMALL_STEP_FLOPS * 2) == cpu_count()


def test_precision_override_trains_bf16_runs_with_their_own_identity(tmp_path):
    fp32 = run_study(SMALL_MODEL_STUDY, tmp_path, epochs=1)
    bf16 = run_study(SMALL_MODEL_STUDY, tmp_path, epochs=1, precision="bf16")
    assert fp32.outcome.statuses == bf16.outcome.statuses == {"done": 4}
    assert not {c.run_id for c in fp32.plan} & {c.run_id for c in bf16.plan}
    with open_store(tmp_path) as store:
        precisions = sorted(r["config"]["train"]["precision"] for r in store.runs())
    assert precisions == ["bf16"] * 4 + ["fp32"] * 4


# ---------------------------------------------------------------- workers that die on cue

# "RUN_ID:EPOCH:ATTEMPTS:STAMP": the worker training RUN_ID kills itself (SIGKILL, as the kernel's
# out-of-memory killer would) once it reports epoch EPOCH or later, in attempts 1 to ATTEMPTS,
# after writing the time to the file STAMP. Read in the worker processes, which inherit it.
DIE = "CNNLAB_TEST_WORKER_DIES"


def dying_worker(*args):
    """Stands in for the pool's worker function (spawn pickles a function by name, so the
    workers run this one): the real worker, with ``train_group`` made to die on cue."""
    import cnnlab.execute.local as local

    run_id, epoch, attempts, stamp = os.environ[DIE].split(":", 3)
    real = local.train_group

    def train_group(configs, emit, cache, **options):
        ids = [config.run_id for config in configs]
        if run_id not in ids or options["attempts"][ids.index(run_id)] > int(attempts):
            return real(configs, emit, cache, **options)

        def emit_then_die(event):
            emit(event)
            if event["kind"] == "epoch" and event["epoch"] >= int(epoch):
                Path(stamp).write_text(repr(time.time()))
                os.kill(os.getpid(), signal.SIGKILL)

        return real(configs, emit_then_die, cache, **options)

    local.train_group = train_group
    REAL_WORKER(*args)


class _Starts(StudyProgress):
    """Progress that notes when each attempt of each run began (the driver's ``begin``)."""

    def __init__(self):
        self.starts: dict[str, list[float]] = {}

    def run_start(self, run_id, label, epochs, resumed_from, number):
        self.starts.setdefault(run_id, []).append(time.time())


def _die(monkeypatch, tmp_path, run_id: str, epoch: int, attempts: int) -> Path:
    import cnnlab.execute.local as local

    stamp = tmp_path / "died-at"
    monkeypatch.setenv(DIE, f"{run_id}:{epoch}:{attempts}:{stamp}")
    monkeypatch.setattr(local, "_worker", dying_worker)
    return stamp


def test_a_dead_worker_is_noticed_at_once_and_its_run_resumes_to_the_same_results(tmp_path, monkeypatch):
    from cnnlab.api import load_spec
    from cnnlab.spec.plan import expand

    study = copy.deepcopy(SMALL_MODEL_STUDY)
    study["train"]["epochs"] = 5
    study["train"]["stack"] = "never"  # one run per worker (a stacked group's worker: the test above)
    reference = run_study(study, tmp_path / "reference", threads=1)
    assert reference.outcome.statuses == {"done": 4}
    victim = expand(load_spec(study)[0])[1].run_id
    stamp = _die(monkeypatch, tmp_path, victim, epoch=2, attempts=1)
    progress = _Starts()
    result = run_study(study, tmp_path / "killed", threads=1, workers=2, progress=progress)
    assert result.outcome.statuses == {"done": 4} and result.outcome.retried == 1
    with open_store(tmp_path / "killed") as store:
        attempts = {r["id"]: r["attempts"] for r in store.runs()}
    assert attempts[victim] == 2 and sorted(attempts.values()) == [1, 1, 1, 2]
    assert _epochs(tmp_path / "killed") == _epochs(tmp_path / "reference")
    # Noticed through the worker's sentinel and pipe, not when the others go quiet: the run's
    # second attempt began (a new worker started, the checkpoint sent) within a second.
    noticed = progress.starts[victim][1] - float(stamp.read_text())
    print(f"\nworker killed at epoch 3 of {victim}: its run began again {noticed * 1000:.0f} ms later")
    assert 0 <= noticed < 1.0


def test_a_run_whose_worker_always_dies_fails_after_max_attempts_and_the_study_goes_on(tmp_path, monkeypatch, capsys):
    from cnnlab.api import load_spec
    from cnnlab.cli.main import main
    from cnnlab.execute.driver import MAX_ATTEMPTS
    from cnnlab.spec.plan import expand

    study = copy.deepcopy(SMALL_MODEL_STUDY)
    study["train"]["epochs"] = 3
    study["repeats"] = 1
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(study))
    victim = expand(load_spec(study)[0])[0].run_id
    # It would die in a few more attempts than the bound, then train: unbounded retries end 'done'.
    _die(monkeypatch, tmp_path, victim, epoch=0, attempts=MAX_ATTEMPTS + 2)
    status = main(["run", str(spec), "--out", str(tmp_path / "out"), "--workers", "2", "--threads", "1", "--quiet",
                   "--no-report"])
    err = capsys.readouterr().err
    assert status == 1, err  # as for any failed run
    with open_store(tmp_path / "out") as store:
        runs = {r["id"]: r for r in store.runs()}
    assert runs[victim]["status"] == "failed" and runs[victim]["attempts"] == MAX_ATTEMPTS
    assert f"its worker process died {MAX_ATTEMPTS} times (last: killed by SIGKILL" in runs[victim]["error"]
    assert [r["status"] for run_id, r in runs.items() if run_id != victim] == ["done"]
    assert f"died {MAX_ATTEMPTS} times" in err and "Traceback" not in err
