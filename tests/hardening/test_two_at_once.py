"""Two at once: a second ``cnnlab run`` of a running study is refused with a message naming the
running process and changes nothing; two different studies share an output folder safely.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from cnnlab.fsutil import TEMP_PREFIX, atomic_path, remove_stale_temporaries
from cnnlab.store import Store

from .conftest import (assert_clean_error, check_folder, cnnlab, connect, fast_study, start_cnnlab, temporaries,
                       wait_for_training, write_digits_npz, write_spec)


def test_a_second_run_of_a_running_study_is_refused_naming_its_pid(tmp_path):
    npz = write_digits_npz(tmp_path / "digits.npz")
    # Long enough that the second process starts, and is refused, while the first trains.
    spec = write_spec(tmp_path / "study.yaml", fast_study(npz, "busy", epochs=40))
    out = tmp_path / "out"
    first = start_cnnlab("run", spec, "--out", out, "--quiet", "--threads", "1", log=tmp_path / "first.log")
    try:
        wait_for_training(out, first)
        second = cnnlab("run", spec, "--out", out, "--quiet", "--threads", "1")
        assert first.poll() is None, "the first run ended before the second was refused; the test proves nothing"
        assert_clean_error(second, 2, f"pid {first.pid}", "busy")
        first.send_signal(signal.SIGINT)  # Ctrl-C: it stops after marking its run interrupted
        assert first.wait(timeout=120) == 130
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    check_folder(out)
    with connect(out) as db:
        statuses = sorted(row[0] for row in db.execute("SELECT status FROM runs"))
        attempts = db.execute("SELECT MAX(attempts) FROM runs").fetchone()[0]
    assert "interrupted" in statuses and attempts == 1  # the refused process started nothing


def test_two_studies_share_one_output_folder_at_the_same_time(tmp_path, capsys):
    """One study in a ``cnnlab run`` process, the other through the Python API in this process,
    both writing one store at once."""
    import torch

    from cnnlab.api import run_study

    npz = write_digits_npz(tmp_path / "digits.npz")
    out = tmp_path / "shared"
    one, two = (write_spec(tmp_path / f"{name}.yaml", fast_study(npz, name)) for name in ("one", "two"))
    process = start_cnnlab("run", one, "--out", out, "--quiet", "--threads", "1", log=tmp_path / "one.log")
    threads = torch.get_num_threads()
    try:
        wait_for_training(out, process)
        assert run_study(two, out, threads=1).outcome.ok
        overlapped = process.poll() is None
        status = process.wait(timeout=300)
    finally:
        torch.set_num_threads(threads)
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "one.log").read_text()
    assert status == 0 and "Traceback" not in log, log
    assert overlapped, "the first study ended before the second; the test proves nothing"
    counts = check_folder(out)
    assert counts["done"] == 8
    from cnnlab.cli import main

    assert main(["ls", str(out), "--study", "two"]) == 0 and "small/dropout" in capsys.readouterr().out
    with Store(out, create=False) as store:
        assert sorted(s["name"] for s in store.studies()) == ["one", "two"]
        for name in ("one", "two"):
            runs = store.runs(name)
            assert len(runs) == 4 and all(r["status"] == "done" and r["attempts"] == 1 for r in runs)
            assert all(len(store.epochs(r["id"])) == 3 for r in runs)


def test_opening_a_store_never_deletes_a_live_writers_temporary_file(tmp_path):
    """The store is opened by every ``cnnlab run`` before it takes its study's lock, and it clears
    what killed processes left; it must leave alone a file another live process is writing."""
    with Store(tmp_path):
        pass
    target = tmp_path / "artifacts" / "0123456789abcdef" / "checkpoint.pt"
    with atomic_path(target) as temp:
        temp.write_bytes(b"half of a checkpoint")
        with Store(tmp_path):  # another process's open, in the middle of this write
            pass
        assert temp.exists()
        temp.write_bytes(b"a whole checkpoint")
    assert target.read_bytes() == b"a whole checkpoint"
    assert temporaries(tmp_path) == []


def test_temporaries_of_dead_processes_and_old_names_are_removed(tmp_path):
    folder = tmp_path / "artifacts" / "run"
    folder.mkdir(parents=True)
    with atomic_path(folder / "weights.safetensors") as temp:
        host = temp.name[len(TEMP_PREFIX):].split("-")[1]  # .tmp-cnnlab-<pid>-<host>-<random><suffix>
    dead = _dead_pid()
    debris = [folder / f"{TEMP_PREFIX}{dead}-{host}-abc.pt",  # its writer was killed
              folder / f"{TEMP_PREFIX}k2j3h4.pt"]  # named by an older cnnlab
    old = folder / f"{TEMP_PREFIX}{os.getpid()}-{host}-old.pt"  # a live pid, but untouched for two hours
    kept = [folder / f"{TEMP_PREFIX}{os.getpid()}-{host}-new.pt",  # being written by a live process
            folder / f"{TEMP_PREFIX}{dead}-zzzzzz-abc.pt"]  # another machine's, recent
    for path in (*debris, old, *kept):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert remove_stale_temporaries(tmp_path) == 3
    assert not any(p.exists() for p in (*debris, old))
    assert all(p.exists() for p in kept)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
