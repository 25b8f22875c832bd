"""Crash anywhere: ``cnnlab run`` killed with SIGKILL at random moments, rerun to completion each
time, ends with exactly the results of an uninterrupted run (every epoch row but its timings,
every run's status and final metrics), an intact store (``PRAGMA integrity_check``), no
temporary file, no half-written weights or report, and no checkpoint kept by a finished run.

Each kill aims at a random point of the study's timeline (its 16 epochs, then the report that
``cnnlab run`` writes last), measured in epochs so that a busy machine does not push every kill
past the end: it waits until the killed process has recorded k epochs in all (k drawn at random,
stratified over the timeline), then a random part of one more. Random kills land mostly in
training, where the time goes; the injected kills make the rarer moments certain: half-way
through an atomic write (the temporary file written, not renamed), just after a rename (the
file in place, its ``artifacts`` row not yet written), inside a store transaction (statements
run, COMMIT not reached), between a run's 'done' and the removal of its checkpoint, and in the
middle of writing the report. CI runs 5 random kills and 2 injected ones; the slow marker adds
10 random kills and 13 injected ones spread over every kind of moment.

The killed process is a real ``cnnlab run``; the rerun that completes the study is ``run_study``
in this process (the same code, without paying for a fresh interpreter and torch import each
time). The figures (kills done, where each landed) are printed; see them with ``pytest -s``.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.api import run_study
from cnnlab.fsutil import TEMP_PREFIX

from .conftest import (check_folder, child_env, epochs_table, fast_study, runs_table, start_cnnlab, write_digits_npz,
                       write_spec)

# 4 runs x 4 epochs with everything that carries state across epochs (dropout, augmentation,
# a plateau schedule, early stopping with best-weight restore).
TRAIN = {"epochs": 4, "schedule": {"name": "plateau", "patience": 1},
         "early_stopping": {"monitor": "val_loss", "patience": 10}}
EPOCHS_IN_ALL = 4 * 4
THREADS = 1  # the killed processes and the reruns here compute alike only with the same threads
try:  # cnnlab run writes the report last; its writing is one more moment to kill
    import cnnlab.report  # noqa: F401

    REPORT = True
except ImportError:  # pragma: no cover - the report is not part of this build
    REPORT = False
REPORT_EPOCHS = 20  # the report takes about as long as this many of these epochs
RUN_ARGS = ("--quiet", "--threads", str(THREADS))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its tables and its time per epoch."""
    base = tmp_path_factory.mktemp("crash")
    folder = base / "reference"
    spec = write_spec(base / "study.yaml", fast_study(write_digits_npz(base / "digits.npz"), "crash", **TRAIN))
    threads = torch.get_num_threads()
    try:
        assert run_study(spec, folder, threads=THREADS).outcome.ok
    finally:
        torch.set_num_threads(threads)
    counts = check_folder(folder)
    assert counts["done"] == 4
    epochs = epochs_table(folder)
    assert len(epochs) == EPOCHS_IN_ALL
    with sqlite3.connect(folder / "cnnlab.sqlite") as db:
        seconds = db.execute("SELECT AVG(seconds) FROM epochs").fetchone()[0]
    return {"spec": spec, "epoch_seconds": seconds, "epochs": epochs, "runs": runs_table(folder)}


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def epochs_done(path: Path) -> int:
    """Epochs recorded in all (-1 before the first run starts), read without writing: the
    recovery after the crash is left to cnnlab."""
    if not path.exists():
        return -1
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            if not db.execute("SELECT 1 FROM runs WHERE status != 'queued' LIMIT 1").fetchone():
                return -1
            return db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return -1


def where_it_landed(folder: Path) -> str:
    """What the killed process left: runs done, the run in progress and its epoch, debris."""
    path = folder / "cnnlab.sqlite"
    if not path.exists():
        return "before the store existed"
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
        epoch = current[1] + 1
        text += f", run {current[0] + 1} " + (f"in epoch {epoch}" if epoch <= TRAIN["epochs"] else "after its last epoch")
    temps = list(folder.rglob(TEMP_PREFIX + "*"))
    if temps:
        text += ", in the middle of writing " + ", ".join(sorted({"a " + t.suffix.lstrip(".") + " file" for t in temps}))
    return text


def assert_same_results(folder: Path, reference: dict) -> None:
    epochs, runs = epochs_table(folder), runs_table(folder)
    assert set(runs) == set(reference["runs"])
    for run_id, row in runs.items():
        assert row == reference["runs"][run_id], f"run {run_id} differs"
    assert epochs.keys() == reference["epochs"].keys()
    for key, row in epochs.items():
        assert row == reference["epochs"][key], f"epoch {key} differs"


def complete(reference: dict, folder: Path) -> None:
    """Rerun to completion as ``cnnlab run`` would (the report last, when the killed process had
    reached it), then check the folder and compare with the uninterrupted run."""
    reached_the_report = where_it_landed(folder).startswith("4/4 runs done")
    result = run_study(reference["spec"], folder, threads=THREADS)
    assert result.outcome.ok, result.outcome.describe()
    if reached_the_report and REPORT:
        from cnnlab.report import write_report

        write_report(folder)
        assert (folder / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    check_folder(folder)
    assert_same_results(folder, reference)


def kill_and_recover(reference: dict, tmp_path: Path, kills: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    landed = []
    for number in range(kills):
        folder = tmp_path / f"killed-{number}"
        # Stratified over the study and the report written after it (one more unit of time):
        # kill k lands after roughly k/kills of the way.
        point = (number + rng.random()) / kills * (EPOCHS_IN_ALL + (1 if REPORT else 0))
        whole, part = int(point), point - int(point)
        for _ in range(3):
            shutil.rmtree(folder, ignore_errors=True)
            process = start_cnnlab("run", reference["spec"], "--out", folder, *RUN_ARGS)
            while process.poll() is None and epochs_done(folder / "cnnlab.sqlite") < whole:
                time.sleep(0.005)
            # Past the last epoch, the unit is the report's writing, which takes longer than an epoch.
            time.sleep(part * reference["epoch_seconds"] * (REPORT_EPOCHS if whole >= EPOCHS_IN_ALL else 1))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
                break
            part /= 2  # it finished first: aim a little earlier
        else:
            raise AssertionError("cnnlab run always finished before the kill")
        where = where_it_landed(folder)
        complete(reference, folder)
        when = f"after {point:.1f} of {EPOCHS_IN_ALL} epochs" if whole < EPOCHS_IN_ALL else "after the last epoch"
        landed.append(f"kill {number + 1} {when}: {where}")
    return landed


def test_killed_runs_recover_to_the_uninterrupted_results(reference, tmp_path):
    landed = kill_and_recover(reference, tmp_path, kills=5, seed=1)
    print(f"\n[crash anywhere] {len(landed)} SIGKILLs survived, each rerun to the uninterrupted results:")
    print("\n".join("  " + line for line in landed))


@pytest.mark.slow
def test_ten_kills_recover_to_the_uninterrupted_results(reference, tmp_path):
    landed = kill_and_recover(reference, tmp_path, kills=10, seed=2)
    print(f"\n[crash anywhere, slow] {len(landed)} SIGKILLs survived, each rerun to the uninterrupted results:")
    print("\n".join("  " + line for line in landed))


# ---------------------------------------------------------------- injected kills

# Runs ``cnnlab ARGS`` in a process that SIGKILLs itself at the N-th occurrence of a moment
# (N = 0: never; it then prints how many there were).
INJECTOR = r"""
import contextlib, os, signal, sys
point, target = sys.argv[1], int(sys.argv[2])
out_folder = os.path.abspath(sys.argv[sys.argv.index("--out") + 1]) + os.sep
count = [0]

def hit():
    count[0] += 1
    if count[0] == target:
        os.kill(os.getpid(), signal.SIGKILL)

import cnnlab.fsutil as fsutil
import cnnlab.store.store as store_module

if point in ("before-rename", "after-rename", "report"):
    real_replace = os.replace

    class _Os:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def replace(source, destination):
            # Only the study's own files: the user cache (the compiled max-pool kernel, built by
            # whichever process comes first) is not part of the study's timeline.
            ours = os.path.abspath(destination).startswith(out_folder)
            if ours and (point == "before-rename" or (point == "report" and str(destination).endswith(".html"))):
                hit()
            real_replace(source, destination)
            if ours and point == "after-rename":
                hit()

    fsutil.os = _Os()
elif point == "before-commit":
    real_transaction = store_module.Store.transaction

    @contextlib.contextmanager
    def transaction(self):
        with real_transaction(self) as db:
            yield db
            hit()  # every statement of the transaction ran; COMMIT is next

    store_module.Store.transaction = transaction
elif point == "before-checkpoint-drop":
    real_drop = store_module.Store.drop_checkpoint

    def drop_checkpoint(self, run_id):
        hit()  # the run is recorded done; its checkpoint is about to go
        real_drop(self, run_id)

    store_module.Store.drop_checkpoint = drop_checkpoint

from cnnlab.cli import main
status = main(sys.argv[3:])
print("MOMENTS", count[0], file=sys.stderr)
sys.exit(status)
"""


def inject(reference: dict, folder: Path, point: str, target: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", INJECTOR, point, str(target), "run", str(reference["spec"]),
                           "--out", str(folder), *RUN_ARGS], capture_output=True, text=True, env=child_env(), timeout=300)


def injected_kill(reference: dict, folder: Path, point: str, target: int) -> str:
    result = inject(reference, folder, point, target)
    assert result.returncode == -signal.SIGKILL, f"not killed at {point} #{target}: {result.returncode}\n{result.stderr}"
    where = where_it_landed(folder)
    complete(reference, folder)
    return f"{point} #{target}: {where}"


def test_kills_in_a_checkpoint_write_and_between_done_and_the_checkpoint_drop(reference, tmp_path):
    # A run writes a checkpoint after each epoch but the last, then its weights, predictions
    # and examples: write 8 is the second run's second checkpoint, with its first one in place.
    # The first run's checkpoint is dropped right after the run is recorded done.
    moments = [("before-rename", 8), ("before-checkpoint-drop", 1)]
    landed = [injected_kill(reference, tmp_path / point, point, target) for point, target in moments]
    print(f"\n[crash anywhere, injected] {len(landed)} kills survived:\n  " + "\n  ".join(landed))


@pytest.mark.slow
def test_kills_at_every_kind_of_moment_spread_over_the_study(reference, tmp_path):
    counts = {}
    for point in ("before-rename", "before-commit"):
        result = inject(reference, tmp_path / f"count-{point}", point, 0)
        assert result.returncode == 0, result.stderr
        counts[point] = int(result.stderr.rsplit("MOMENTS", 1)[1].split()[0])
    counts["after-rename"] = counts["before-rename"]
    counts["before-checkpoint-drop"] = 4
    if REPORT:
        counts["report"] = 1
    rng = random.Random(7)
    landed = []
    for point in counts:
        total = counts[point]
        targets = sorted({1, total, rng.randrange(2, total) if total > 2 else 1})  # first, last, one between
        for target in targets:
            landed.append(injected_kill(reference, tmp_path / f"{point}-{target}", point, target))
    print(f"\n[crash anywhere, injected, slow] {len(landed)} kills survived (moments in one run-through: "
          f"{counts}):\n  " + "\n  ".join(landed))


@pytest.mark.slow
def test_killing_a_run_with_workers_leaves_no_worker_behind(reference, tmp_path):
    import os

    folder = tmp_path / "workers"
    process = start_cnnlab("run", reference["spec"], "--out", folder, "--quiet", "--workers", "2", "--threads", "1")
    try:
        while process.poll() is None and epochs_done(folder / "cnnlab.sqlite") < 1:
            time.sleep(0.01)
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        assert children, "no worker processes to check"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + 5
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in children if os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid)]
    for pid in alive:  # leave the machine as it was
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    assert not alive, f"{len(alive)} worker process(es) still running 5 s after the driver was killed"
    complete(reference, folder)


def _state(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((line for line in status if line.startswith("State:")), "").lower()
    except OSError:
        return "gone"


def test_a_download_cleans_up_what_a_killed_download_left(tmp_path):
    """A download killed half-way leaves its temporary file in the cache; the next download of
    the dataset removes it (a temporary file of a live download is never touched)."""
    import hashlib

    from cnnlab.data import RemoteFile, download_file
    from cnnlab.fsutil import temporary_prefix
    from tests.data.builders import Mirror

    body = b"the published file" * 1000
    remote = RemoteFile(name="file.gz", size=len(body), sha256=hashlib.sha256(body).hexdigest())
    folder = tmp_path / "cache" / "dataset"
    folder.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = temporary_prefix().split("-")[3]
    left = folder / f".tmp-cnnlab-{dead.pid}-{host}-file.gz.x1y2.part"  # what the killed download left
    left.write_bytes(body[:100])
    live = folder / f"{temporary_prefix()}file.gz.a1b2.part"  # another download, in progress
    live.write_bytes(body[:100])
    server = Mirror()
    try:
        server.serve("files", "file.gz", body)
        assert download_file(remote, [server.url("files")], folder, timeout=5).read_bytes() == body
    finally:
        server.close()
    assert sorted(p.name for p in folder.iterdir()) == sorted(["file.gz", live.name])


# ---------------------------------------------------------------- every write is atomic

# Files allowed to write in place: the atomic-write helper itself and downloads (a temporary
# name, checked, then renamed). The lock writes nothing: its holder's pid goes in a sibling file,
# written atomically.
IN_PLACE_WRITERS = {"fsutil.py", "data/download.py"}
SAVERS = {"save", "savez", "savez_compressed", "savefig", "save_file", "dump"}


def writes_in_place(code: str) -> list[tuple[int, str]]:
    """(line, what) for each write in ``code`` that does not go to a buffer."""
    import ast

    offences = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call):
            continue
        function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if function == "open":
            modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
            modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
            if any(isinstance(m, str) and set(m) & set("wax+") for m in modes):
                offences.append((node.lineno, f"open(..., {modes[0]!r})"))
        elif function in ("write_bytes", "write_text"):
            offences.append((node.lineno, f".{function}()"))
        elif function in SAVERS and node.args:
            owner = ast.unparse(node.func.value) if isinstance(node.func, ast.Attribute) else ""
            owner = "torch" if owner == "torch.jit" else owner  # torch.jit.save(module, f) as torch.save(obj, f)
            # torch.save(obj, f), json/pickle dump(obj, f), save_file(tensors, f); np.save*(f, ...),
            # savefig(f); safetensors' save(tensors) returns bytes and writes nothing.
            if function == "save" and owner not in ("torch", "np", "numpy") and len(node.args) == 1:
                continue
            position = 1 if owner == "torch" or function in ("dump", "save_file") else 0
            target = node.args[position] if len(node.args) > position else None
            if not (isinstance(target, ast.Name) and target.id in ("buffer", "handle", "stream")):
                offences.append((node.lineno, f"{function}() to {ast.unparse(target) if target else '?'}"))
    return offences


def test_the_write_finder_finds_writes():
    code = ("open(p, 'w')\nopen(p, mode='ab')\npath.write_text('x')\ntorch.save(state, path)\nnp.savez(path, x=1)\n"
            "fig.savefig('a.png')\njson.dump(data, out)\nopen(p)\ntorch.save(state, buffer)\nsave(tensors)\n"
            "fig.savefig(buffer, format='png')\ntorch.jit.save(traced, path)\ntorch.jit.save(traced, buffer)\n")
    assert [line for line, _ in writes_in_place(code)] == [1, 2, 3, 4, 5, 6, 7, 12]


def test_every_file_cnnlab_writes_goes_through_a_temporary_name():
    """No module but the allowed ones opens a file for writing, and every save/dump goes to a
    buffer (its bytes then written by cnnlab.fsutil: temporary name, fsync, rename)."""
    source = Path(__file__).resolve().parents[2] / "src" / "cnnlab"
    offences = [f"{path.relative_to(source)}:{line}: {what}" for path in sorted(source.rglob("*.py"))
                if str(path.relative_to(source)) not in IN_PLACE_WRITERS
                for line, what in writes_in_place(path.read_text(encoding="utf-8"))]
    assert offences == [], "writes that bypass cnnlab.fsutil:\n  " + "\n  ".join(offences)
