"""The study lock: held across processes, freed by the OS when its holder dies, never through a link."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from cnnlab.errors import StoreError
from cnnlab.store.lock import StoreLock

HOLD = (
    "import sys, time; from cnnlab.store.lock import StoreLock\n"
    "lock = StoreLock(sys.argv[1], 'tiny').__enter__(); print('locked', flush=True); time.sleep(60)"
)


def _holder(folder) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_lock_held_by_another_process_is_refused_naming_its_pid(tmp_path):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(StoreError, match=rf"study 'tiny' is being run by another cnnlab process \(pid {holder.pid}\)"):
            StoreLock(tmp_path, "tiny").__enter__()
        with StoreLock(tmp_path, "another study"):
            pass  # another study in the same folder is fine
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kill -9 is a POSIX signal")
def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(tmp_path):
    holder = _holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock = StoreLock(tmp_path, "tiny")
    assert lock.pid_path.read_text() == str(holder.pid)  # killed before it could remove it
    with lock:
        assert lock.pid_path.read_text() == str(os.getpid())
    assert not lock.pid_path.exists() and lock.path.exists()


def test_a_lock_in_this_process_is_refused_too_and_released_on_exit(tmp_path):
    with StoreLock(tmp_path, "tiny"), pytest.raises(StoreError, match=f"pid {os.getpid()}"):
        StoreLock(tmp_path, "tiny").__enter__()
    with StoreLock(tmp_path, "tiny"):
        pass


@pytest.mark.parametrize("dangling", [False, True])
def test_a_link_at_the_lock_name_is_refused_and_its_target_left_as_it_is(tmp_path, dangling):
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious")
    lock = StoreLock(tmp_path / "out", "study")
    lock.path.parent.mkdir()
    lock.path.symlink_to(victim)
    with pytest.raises(StoreError, match="cannot use this lock file .it is a link; remove it.; nothing was changed"), lock:
        pass
    assert victim.read_text() == "precious" if not dangling else not victim.exists()
    assert not lock.pid_path.exists()


def test_a_hard_link_at_the_lock_name_is_never_written(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock = StoreLock(tmp_path, "study")
    os.link(victim, lock.path)
    with lock:
        pass
    assert victim.read_text() == "precious"


def test_a_link_at_the_pid_name_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock = StoreLock(tmp_path / "out", "study")
    lock.path.parent.mkdir()
    lock.pid_path.symlink_to(victim)
    with lock:
        assert not lock.pid_path.is_symlink() and lock.pid_path.read_text() == str(os.getpid())
    assert victim.read_text() == "precious"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="fifos are POSIX")
def test_a_fifo_at_the_lock_name_is_refused_without_waiting(tmp_path):
    lock = StoreLock(tmp_path, "study")
    os.mkfifo(lock.path)
    with pytest.raises(StoreError, match="it is not a plain file; remove it"), lock:
        pass


def test_an_odd_pid_file_reads_as_unknown(tmp_path):
    holder = _holder(tmp_path)
    try:
        lock = StoreLock(tmp_path, "tiny")
        lock.pid_path.write_text("x" * 10_000)
        with pytest.raises(StoreError, match=r"\(pid unknown\)"):
            lock.__enter__()
    finally:
        holder.kill()
        holder.wait()
