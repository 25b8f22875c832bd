"""Environment faults: a read-only output folder, a full disk, a dataset deleted mid-study, a
SIGTERM (a batch scheduler's time limit, systemd, ``kill``).

Each gives a clear error (no traceback) or a clean stop, keeps every finished run, and once the
fault is fixed the same study resumes to exactly the results of an undisturbed run.

Read-only folders: root ignores file permissions, so as root the folder is made read-only by a
read-only bind mount in a private mount namespace (``unshare -m``); other users get ``chmod``.
A full disk is a per-file size limit (``RLIMIT_FSIZE``, any user) and, as root, a small tmpfs.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnlab.api import run_study

from .conftest import (CNNLAB, assert_clean_error, check_folder, child_env, cnnlab, connect, epochs_table, fast_study,
                       runs_table, tree, write_digits_npz, write_spec)

ROOT = os.geteuid() == 0
THREADS = 1
RUN_ARGS = ("--quiet", "--threads", str(THREADS))


def _can_unshare() -> bool:
    if not ROOT or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp && touch /tmp/x"],
                           capture_output=True)
    return probe.returncode == 0


UNSHARE = _can_unshare()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The spec files (one variant, then two), the dataset, and the undisturbed results."""
    base = tmp_path_factory.mktemp("faults")
    npz = write_digits_npz(base / "digits.npz")
    full = fast_study(npz, "faults")
    first = {**full, "variants": {"none": {}}}
    specs = {"first": write_spec(base / "first.yaml", first), "full": write_spec(base / "full.yaml", full)}
    threads = torch.get_num_threads()
    try:
        assert run_study(specs["full"], base / "reference", threads=THREADS).outcome.ok
    finally:
        torch.set_num_threads(threads)
    return {"npz": npz, "specs": specs, "epochs": epochs_table(base / "reference"), "runs": runs_table(base / "reference")}


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def assert_undisturbed_results(folder: Path, study: dict) -> None:
    runs, epochs = runs_table(folder), epochs_table(folder)
    assert runs == study["runs"]
    assert epochs == study["epochs"]


def resume(study: dict, folder: Path) -> None:
    """The fault fixed: the same study finishes in the same folder, as if nothing happened."""
    result = run_study(study["specs"]["full"], folder, threads=THREADS)
    assert result.outcome.ok, result.outcome.describe()
    check_folder(folder)
    assert_undisturbed_results(folder, study)


def finished(folder: Path) -> dict[str, Any]:
    """The finished runs and what they hold, to prove a fault took none of them."""
    with connect(folder) as db:
        done = [row[0] for row in db.execute("SELECT id FROM runs WHERE status = 'done'")]
    runs = runs_table(folder)
    return {run_id: (runs[run_id], tree(folder / "artifacts" / run_id)) for run_id in done}


# ---------------------------------------------------------------- read-only


def run_read_only(folder: Path, *args: Any) -> subprocess.CompletedProcess:
    """``cnnlab ARGS`` with ``folder`` read-only for it."""
    if not ROOT:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for path, mode in modes.items():
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            return cnnlab(*args)
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
    if not UNSHARE:
        pytest.skip("running as root without mount namespaces: cannot make a folder read-only")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, str(folder), *CNNLAB, *map(str, args)],
                          capture_output=True, text=True, env=child_env(), timeout=300)


def test_an_output_folder_under_a_read_only_parent_is_a_clean_error(study, tmp_path):
    parent = tmp_path / "readonly"
    parent.mkdir()
    result = run_read_only(parent, "run", study["specs"]["full"], "--out", parent / "new", *RUN_ARGS)
    assert_clean_error(result, 2, str(parent / "new"), "cannot write")
    assert list(parent.iterdir()) == []


def test_a_read_only_output_folder_keeps_its_runs_can_be_read_and_resumes_once_writable(study, tmp_path):
    out = tmp_path / "out"
    assert run_study(study["specs"]["first"], out, threads=THREADS).outcome.ok
    kept = finished(out)
    before = tree(out)
    result = run_read_only(out, "run", study["specs"]["full"], "--out", out, *RUN_ARGS)
    assert_clean_error(result, 2, str(out), "read-only")
    assert tree(out) == before
    listed = run_read_only(out, "ls", out)  # results on a read-only disk can still be read
    assert listed.returncode == 0 and "small/none" in listed.stdout, listed.stderr
    resume(study, out)
    assert {run_id: finished(out)[run_id] for run_id in kept} == kept  # not retrained, not rewritten


# ---------------------------------------------------------------- a full disk


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_file_size_limit_mid_study_is_a_clean_error_and_the_study_resumes(study, tmp_path):
    out = tmp_path / "out"
    # The store's write-ahead log passes 250 kB after a run or two (as a disk filling up would).
    result = subprocess.run([*CNNLAB, "run", str(study["specs"]["full"]), "--out", str(out), *RUN_ARGS],
                            capture_output=True, text=True, env=child_env(), timeout=300, preexec_fn=_limit_file_size(250_000))
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    assert "cannot write" in result.stderr
    counts = check_folder(out)
    assert counts["done"] < 4
    kept = finished(out)
    resume(study, out)
    assert {run_id: finished(out)[run_id] for run_id in kept} == kept


@pytest.mark.slow
@pytest.mark.skipif(not UNSHARE, reason="needs root and mount namespaces for a small tmpfs")
def test_a_full_disk_mid_study_is_a_clean_error_and_the_study_resumes(study, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    # 450 kB: room for the store and about one run's files; the tmpfs lives only in the namespace,
    # so what cnnlab left is copied out before it goes.
    script = ('disk="$0"; keep="$1"; shift; mount -t tmpfs -o size=450k tmpfs "$disk" && '
              '"$@" > "$keep/stdout" 2> "$keep/stderr"; echo $? > "$keep/status"; cp -a "$disk/." "$keep/"')
    subprocess.run(["unshare", "-m", "sh", "-c", script, str(disk), str(tmp_path),
                    *CNNLAB, "run", str(study["specs"]["full"]), "--out", str(disk / "out"), *RUN_ARGS],
                   env=child_env(), timeout=300, check=True)
    status, stderr = int((tmp_path / "status").read_text()), (tmp_path / "stderr").read_text()
    assert status in (1, 2) and "Traceback" not in stderr, stderr
    assert "No space left on device" in stderr or "disk is full" in stderr, stderr
    out = tmp_path / "out"  # the folder as the full disk held it
    assert not (disk / "out").exists()
    counts = check_folder(out)
    assert counts["done"] < 4
    kept = finished(out)
    resume(study, out)  # on a disk with room: the same folder finishes
    assert {run_id: finished(out)[run_id] for run_id in kept} == kept


# ---------------------------------------------------------------- the dataset goes away


def test_a_dataset_deleted_mid_study_is_a_clear_error_and_the_study_resumes_once_restored(study, tmp_path):
    npz = tmp_path / "digits.npz"
    shutil.copy(study["npz"], npz)
    specs = {name: write_spec(tmp_path / f"{name}.yaml", {**_load(path), "dataset": {**_load(path)["dataset"], "path": str(npz)}})
             for name, path in study["specs"].items()}
    out = tmp_path / "out"
    assert run_study(specs["first"], out, threads=THREADS).outcome.ok
    kept = finished(out)
    npz.unlink()
    result = cnnlab("run", specs["full"], "--out", out, "--threads", "1")  # not --quiet: the runs' errors are shown
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    assert f"{npz} does not exist" in result.stderr
    assert {run_id: finished(out)[run_id] for run_id in kept} == kept
    check_folder(out)
    shutil.copy(study["npz"], npz)
    result = run_study(specs["full"], out, threads=THREADS)
    assert result.outcome.ok
    check_folder(out)
    assert {run_id: finished(out)[run_id] for run_id in kept} == kept
    assert len(runs_table(out)) == 4


def _load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


# A ``cnnlab run`` whose disk fills up just as it writes the report at the end.
FULL_AT_THE_REPORT = r"""
import errno, sys
import cnnlab.fsutil as fsutil
real = fsutil.write_bytes_atomic

def write_bytes_atomic(path, data):
    if str(path).endswith((".html", ".md")):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    real(path, data)

fsutil.write_bytes_atomic = write_bytes_atomic
from cnnlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_disk_that_fills_up_at_the_report_keeps_the_runs_and_warns(study, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([CNNLAB[0], "-c", FULL_AT_THE_REPORT, "run", str(study["specs"]["full"]), "--out", str(out),
                             *RUN_ARGS], capture_output=True, text=True, env=child_env(), timeout=300)
    check_folder(out)
    assert_undisturbed_results(out, study)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0 and "report was not written" in result.stderr and "No space left" in result.stderr


# ---------------------------------------------------------------- SIGTERM: a scheduler, systemd, kill


def _workers_of(pid: int) -> list[int]:
    """The spawn pool's worker processes of ``pid`` (not its resource tracker, also a child)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except OSError:
                pass
    return found


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                                    if line.startswith("State:")).lower()
    except OSError:
        return False


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_a_study_as_ctrl_c_does_and_the_rerun_resumes(study, tmp_path, workers):
    spec = write_spec(tmp_path / "long.yaml", fast_study(study["npz"], "term", epochs=30))
    out = tmp_path / "out"
    args = ("--threads", "1", "--workers", str(workers))
    process = subprocess.Popen([*CNNLAB, "run", str(spec), "--out", str(out), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=child_env())
    pool: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
            if not (out / "cnnlab.sqlite").exists():
                continue
            try:
                with connect(out) as db:  # two epochs of a run in flight: it has a checkpoint to keep
                    training = db.execute("SELECT COUNT(*) FROM runs r WHERE status = 'running' AND EXISTS "
                                          "(SELECT 1 FROM epochs e WHERE e.run_id = r.id AND e.epoch >= 1)").fetchone()[0]
            except sqlite3.Error:
                continue
            pool = _workers_of(process.pid) if workers > 1 else []
            if training and len(pool) == (workers if workers > 1 else 0):
                break
        else:
            raise AssertionError(f"no run was training to stop (exit {process.returncode})")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr  # 128 + SIGTERM, as a shell reports it
    assert "Traceback" not in stderr, stderr
    assert f"resume with: cnnlab run {spec} --out {out}" in stderr
    assert not [pid for pid in pool if _alive(pid)], "a worker outlived the study it trained for"
    with connect(out) as db:
        statuses = [row[0] for row in db.execute("SELECT status FROM runs")]
        kept = db.execute("SELECT COUNT(*) FROM artifacts WHERE kind = 'checkpoint'").fetchone()[0]
    assert "running" not in statuses and "interrupted" in statuses and "failed" not in statuses, statuses
    assert kept >= 1
    check_folder(out)
    resumed = cnnlab("run", spec, "--out", out, *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stderr
    assert check_folder(out)["done"] == 4


def test_cnnlab_run_handles_sigterm_only_while_it_runs_and_the_library_never(study, tmp_path, monkeypatch):
    import cnnlab.execute.progress as progress_module
    from cnnlab.cli.main import main
    from cnnlab.execute.progress import StudyProgress

    seen = []

    class Handlers(StudyProgress):
        def run_start(self, *args: Any) -> None:
            seen.append(signal.getsignal(signal.SIGTERM))

    def mine(signum: int, frame: Any) -> None:  # what a program embedding cnnlab had installed
        raise AssertionError("not to be called")

    monkeypatch.setattr(progress_module, "make_progress", lambda **options: Handlers())
    previous = signal.signal(signal.SIGTERM, mine)
    try:
        assert run_study(study["specs"]["first"], tmp_path / "library", threads=THREADS, progress=Handlers()).outcome.ok
        assert seen and all(handler is mine for handler in seen)  # run_study leaves signals alone
        seen.clear()
        assert main(["run", str(study["specs"]["first"]), "--out", str(tmp_path / "cli"), "--threads", "1",
                     "--no-report"]) == 0
        assert seen and all(handler is not mine for handler in seen)  # cnnlab run handles it ...
        assert signal.getsignal(signal.SIGTERM) is mine  # ... and puts back what was there
    finally:
        signal.signal(signal.SIGTERM, previous)
