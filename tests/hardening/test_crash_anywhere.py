"""Crash anywhere: ``cnnlab run`` killed with SIGKILL at random moments, rerun to completion each
time, ends with exactly the results of an uninterrupted run, an intact store and no debris.

Random kills land mostly in training (where the time goes); the injected kills make the rarer
moments certain: half-way through an atomic file write (the temporary file written, not yet
renamed), just after a rename (the file in place, its ``artifacts`` row not yet written) and
inside a store transaction (statements run, COMMIT not reached).

The figures (kills done, where each landed) are printed; see them with ``pytest -s``.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from cnnlab.fsutil import TEMP_PREFIX

from .conftest import (check_folder, child_env, cnnlab, epochs_table, fast_study, runs_table, start_cnnlab,
                       wait_for_training, write_digits_npz, write_spec)

# 4 runs x 4 epochs with everything that carries state across epochs (dropout, augmentation,
# a plateau schedule, early stopping with best-weight restore): a few seconds of work.
TRAIN = {"epochs": 4, "schedule": {"name": "plateau", "patience": 1},
         "early_stopping": {"monitor": "val_loss", "patience": 10}}
RUN_ARGS = ("--quiet", "--threads", "1")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its tables, and how long it works from its first run's start."""
    base = tmp_path_factory.mktemp("crash")
    folder = base / "reference"
    spec = write_spec(base / "study.yaml", fast_study(write_digits_npz(base / "digits.npz"), "crash", **TRAIN))
    process = start_cnnlab("run", spec, "--out", folder, *RUN_ARGS)
    training = wait_for_training(folder, process)
    assert process.wait(timeout=300) == 0
    work = time.monotonic() - training
    counts = check_folder(folder)
    assert counts["done"] == 4
    return {"spec": spec, "work": work, "epochs": epochs_table(folder), "runs": runs_table(folder)}


def where_it_landed(folder: Path) -> str:
    """What the killed process left: runs done, the run in progress and its epoch, debris."""
    path = folder / "cnnlab.sqlite"
    if not path.exists():
        return "before the store existed"
    # Read-only, so the recovery after the crash is left to cnnlab.
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        runs = db.execute("SELECT status, epochs_done FROM runs ORDER BY position").fetchall()
    except sqlite3.DatabaseError:
        return "while creating the store"
    finally:
        db.close()
    if not runs:
        return "before the runs were registered"
    done = sum(status == "done" for status, _ in runs)
    text = f"{done}/{len(runs)} runs done"
    current = next(((i, epochs) for i, (status, epochs) in enumerate(runs) if status == "running"), None)
    if current is not None:
        text += f", run {current[0] + 1} after epoch {current[1]}"
    temps = list(folder.rglob(TEMP_PREFIX + "*"))
    if temps:
        text += f", mid-write of {', '.join(sorted({t.parent.name + '/' + t.suffix for t in temps}))}"
    return text


def assert_same_results(folder: Path, reference: dict) -> None:
    epochs, runs = epochs_table(folder), runs_table(folder)
    assert set(runs) == set(reference["runs"])
    for run_id, row in runs.items():
        assert row == reference["runs"][run_id], f"run {run_id} differs"
    assert epochs.keys() == reference["epochs"].keys()
    for key, row in epochs.items():
        assert row == reference["epochs"][key], f"epoch {key} differs"


def rerun_to_completion(spec: Path, folder: Path) -> int:
    """Run again until cnnlab exits 0 (it must within two tries); return the tries."""
    for tries in (1, 2):
        result = cnnlab("run", spec, "--out", folder, *RUN_ARGS)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 0:
            return tries
    raise AssertionError(f"cnnlab run did not complete after a crash: {result.returncode}\n{result.stderr}")


def kill_and_recover(reference: dict, tmp_path: Path, kills: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    spec, work = reference["spec"], reference["work"]
    landed = []
    for number in range(kills):
        folder = tmp_path / f"killed-{number}"
        # Stratified: kill k lands in the k-th slice of the uninterrupted run's work.
        delay = (number + rng.random()) / kills * work
        for _ in range(5):
            shutil.rmtree(folder, ignore_errors=True)
            process = start_cnnlab("run", spec, "--out", folder, *RUN_ARGS)
            training = wait_for_training(folder, process)
            time.sleep(max(0.0, training + delay - time.monotonic()))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
                break
            delay *= 0.6  # this machine ran faster than the reference did: aim earlier
        else:
            raise AssertionError("cnnlab always finished before the kill")
        where = where_it_landed(folder)
        tries = rerun_to_completion(spec, folder)
        check_folder(folder)
        assert_same_results(folder, reference)
        landed.append(f"kill {number + 1} at {delay:.2f} s: {where}; recovered in {tries} rerun(s)")
    return landed


def test_killed_runs_recover_to_the_uninterrupted_results(reference, tmp_path):
    landed = kill_and_recover(reference, tmp_path, kills=5, seed=1)
    print(f"\n[crash anywhere] {len(landed)} SIGKILLs survived (work {reference['work']:.1f} s):")
    print("\n".join("  " + line for line in landed))


@pytest.mark.slow
def test_ten_kills_recover_to_the_uninterrupted_results(reference, tmp_path):
    landed = kill_and_recover(reference, tmp_path, kills=10, seed=2)
    print(f"\n[crash anywhere, slow] {len(landed)} SIGKILLs survived (work {reference['work']:.1f} s):")
    print("\n".join("  " + line for line in landed))


# ---------------------------------------------------------------- injected kills

# Runs ``cnnlab run`` in a process that SIGKILLs itself at the N-th occurrence of a moment.
INJECTOR = r"""
import os, signal, sys
point, target = sys.argv[1], int(sys.argv[2])
count = [0]

def hit():
    count[0] += 1
    if count[0] == target:
        os.kill(os.getpid(), signal.SIGKILL)

import cnnlab.fsutil as fsutil
import cnnlab.store.store as store_module

if point in ("before-rename", "after-rename"):
    real_replace = fsutil.os.replace
    class _Os:
        def __getattr__(self, name):
            return getattr(os, name)
        @staticmethod
        def replace(source, target):
            if point == "before-rename":
                hit()
            real_replace(source, target)
            if point == "after-rename":
                hit()
    fsutil.os = _Os()
elif point == "before-commit":
    real_transaction = store_module.Store.transaction
    import contextlib
    @contextlib.contextmanager
    def transaction(self):
        with real_transaction(self) as db:
            yield db
            hit()  # every statement ran; COMMIT is next
    store_module.Store.transaction = transaction

from cnnlab.cli import main
sys.exit(main(sys.argv[3:]))
"""


def count_moments(reference: dict, tmp_path: Path) -> dict[str, int]:
    """How often each moment occurs in an uninterrupted run (target beyond it: never killed)."""
    counts = {}
    for point in ("before-rename", "before-commit"):
        folder = tmp_path / f"count-{point}"
        probe = INJECTOR.replace("os.kill(os.getpid(), signal.SIGKILL)", "pass") + ""
        script = probe.replace("sys.exit(main(sys.argv[3:]))",
                               "status = main(sys.argv[3:])\nprint('MOMENTS', count[0], file=sys.stderr)\nsys.exit(status)")
        import subprocess

        result = subprocess.run([sys.executable, "-c", script, point, "0", "run", str(reference["spec"]),
                                 "--out", str(folder), *RUN_ARGS], capture_output=True, text=True, env=child_env(), timeout=300)
        assert result.returncode == 0, result.stderr
        counts[point] = int(result.stderr.rsplit("MOMENTS", 1)[1].split()[0])
    counts["after-rename"] = counts["before-rename"]
    return counts


def injected_kill(reference: dict, folder: Path, point: str, target: int) -> str:
    import subprocess

    result = subprocess.run([sys.executable, "-c", INJECTOR, point, str(target), "run", str(reference["spec"]),
                             "--out", str(folder), *RUN_ARGS], capture_output=True, text=True, env=child_env(), timeout=300)
    assert result.returncode == -signal.SIGKILL, f"not killed at {point} #{target}: {result.returncode}\n{result.stderr}"
    where = where_it_landed(folder)
    rerun_to_completion(reference["spec"], folder)
    check_folder(folder)
    assert_same_results(folder, reference)
    return f"{point} #{target}: {where}"


def test_kills_in_the_middle_of_writes_and_transactions(reference, tmp_path):
    # A run writes a checkpoint after each epoch but the last, then weights, predictions and
    # examples: write 8 is the second run's second checkpoint (its first one in place), write 4
    # the first run's weights. Transaction 20 falls in the first run's epochs.
    landed = [injected_kill(reference, tmp_path / point, point, target)
              for point, target in (("before-rename", 8), ("after-rename", 4), ("before-commit", 20))]
    print("\n[crash anywhere, injected] " + str(len(landed)) + " kills survived:\n  " + "\n  ".join(landed))


@pytest.mark.slow
def test_kills_at_every_kind_of_moment_spread_over_the_study(reference, tmp_path):
    counts = count_moments(reference, tmp_path)
    rng = random.Random(7)
    landed = []
    for point, total in counts.items():
        # The first and last occurrences, and a few in between.
        targets = sorted({1, total, *rng.sample(range(2, total), min(3, total - 2))})
        for target in targets:
            landed.append(injected_kill(reference, tmp_path / f"{point}-{target}", point, target))
    print(f"\n[crash anywhere, injected, slow] {len(landed)} kills survived (moments per run-through: {counts}):\n  "
          + "\n  ".join(landed))
