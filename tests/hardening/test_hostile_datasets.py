"""Hostile datasets met by ``cnnlab run``: bad input is exit status 2 and one paragraph naming the
file, never a traceback and never a failed run, and nothing outside the study's output folder
changes (every other file under the test's folder keeps its bytes and its mtime).

Met two ways: by the pre-flight (a damaged npz, random bytes, an npz whose one huge label would
make 10**12 classes), before the output folder exists; and inside a run, the file damaged after
the pre-flight passed it (as when a dataset is replaced while a long study runs), in this process
and in worker processes. Then the run that met it is left interrupted, not failed, and the
study resumes once the file is fixed.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from .conftest import CNNLAB, assert_clean_error, check_folder, child_env, connect, write_digits_npz, write_spec

THREADS = ("--threads", "1")
# The child may use this much address space: a loader that believed a file and allocated for it
# fails here with MemoryError (and the test with it) rather than take the machine's memory.
ADDRESS_SPACE = 8 * 2**30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_cnnlab(cwd: Path, *args: object, script: str = "") -> subprocess.CompletedProcess:
    """``cnnlab ARGS`` (or ``python -c SCRIPT ARGS``) run from ``cwd``, memory-limited."""
    command = [sys.executable, "-c", script] if script else CNNLAB
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, env=child_env(), cwd=cwd,
                          timeout=300, preexec_fn=_limited)


def snapshot(root: Path, skip: tuple[Path, ...]) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` but those under ``skip``: its bytes and its mtime."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file() and not any(p == s or s in p.parents for s in skip)}


def _sentinels(root: Path) -> None:
    """Files the study has no business touching, beside its data and its output folder."""
    (root / "sentinel" / "deeper").mkdir(parents=True)
    (root / "sentinel" / "notes.txt").write_text("left alone\n")
    (root / "sentinel" / "deeper" / "weights.bin").write_bytes(bytes(range(256)) * 4)


def _study(dataset: dict, name: str = "hostile", epochs: int = 2) -> dict:
    return {
        "name": name,
        "seed": 1,
        "dataset": dataset,
        "architectures": {"small": [{"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, {"maxpool": 2},
                                    "flatten", {"dense": 10}]},
        "variants": {"none": {}, "dropout": {"dropout": 0.25}},
        "train": {"optimizer": "adam", "batch_size": 32, "epochs": epochs},
    }


# ---------------------------------------------------------------- found by the pre-flight


def _cut_in_half(path: Path) -> None:
    data = write_digits_npz(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())


def _huge_label(path: Path) -> None:
    labels = np.zeros(60, np.int64)
    labels[7] = 10**12  # no class_names: the classes would be 0 .. 10**12
    np.savez(path, x_train=np.zeros((60, 8, 8), np.uint8), y_train=labels)


PREFLIGHT_CASES: dict[str, Callable[[Path], None]] = {
    "an npz cut in half": _cut_in_half,
    "random bytes named .npz": _random_bytes,
    "an npz with a label of 10**12 and no class_names": _huge_label,
}


@pytest.mark.parametrize("make", PREFLIGHT_CASES.values(), ids=PREFLIGHT_CASES.keys())
def test_a_hostile_npz_is_bad_input_naming_the_file_and_nothing_else_changes(tmp_path, make):
    npz = tmp_path / "data" / "digits.npz"
    npz.parent.mkdir()
    make(npz)
    spec = write_spec(tmp_path / "study.yaml", _study({"name": "npz", "path": str(npz),
                                                       "split": {"train": 20, "val": 10, "test": 10}}))
    _sentinels(tmp_path)
    out = tmp_path / "out"
    before = snapshot(tmp_path, (out,))
    result = run_cnnlab(tmp_path, "run", spec, "--out", out, *THREADS)
    assert_clean_error(result, 2)
    assert any(line.startswith("error: ") and str(npz) in line for line in result.stderr.splitlines()), result.stderr
    assert not out.exists()  # refused before the output folder was made
    assert snapshot(tmp_path, (out,)) == before


# ---------------------------------------------------------------- met inside a run

# ``cnnlab run`` whose dataset file is replaced by a damaged one just after the pre-flight passed
# it (and forgotten by this process), so the runs, here or in workers, read the damaged file.
DAMAGED_AFTER_THE_PREFLIGHT = r"""
import shutil, sys
import cnnlab.execute.conductor as conductor
damaged, target = sys.argv[1], sys.argv[2]
real = conductor.preflight

def preflight(plan, cache):
    real(plan, cache)
    shutil.copyfile(damaged, target)
    cache.clear()

conductor.preflight = preflight
from cnnlab.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _npz_dataset(root: Path) -> tuple[dict, Path, bytes]:
    (root / "data").mkdir()
    npz = write_digits_npz(root / "data" / "digits.npz")
    data = npz.read_bytes()
    dataset = {"name": "npz", "path": str(npz), "split": {"train": 300, "val": 100, "test": 100}}
    return dataset, npz, data[: len(data) // 3]


def _folder_dataset(root: Path) -> tuple[dict, Path, bytes]:
    from PIL import Image

    images = root / "data" / "images"
    for label, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
        (images / label).mkdir(parents=True)
        for index in range(12):
            Image.new("RGB", (8, 8), tuple(min(255, c + 5 * index) for c in colour)).save(images / label / f"{index}.png")
    dataset = {"name": "folder", "path": str(images), "split": {"train": 16, "val": 4, "test": 4}}
    return dataset, images / "dog" / "3.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40  # a PNG signature, then nothing


IN_RUN_CASES = {
    "an npz damaged after the pre-flight, runs here": (_npz_dataset, 1),
    "an npz damaged after the pre-flight, runs in 2 workers": (_npz_dataset, 2),
    "an image folder with an image damaged after the pre-flight": (_folder_dataset, 1),
}


@pytest.mark.parametrize(("make", "workers"), IN_RUN_CASES.values(), ids=IN_RUN_CASES.keys())
def test_a_dataset_damaged_after_the_preflight_stops_the_study_as_bad_input_and_it_resumes_once_fixed(
        tmp_path, make, workers):
    dataset, target, damaged_bytes = make(tmp_path)
    if dataset["name"] == "folder":
        study = {**_study(dataset), "architectures": {"small": ["flatten", {"dense": 2}]}, "variants": {"none": {}},
                 "repeats": 2}
    else:
        study = _study(dataset)
    spec = write_spec(tmp_path / "study.yaml", study)
    good = target.read_bytes()
    damaged = tmp_path / "damaged.bin"
    damaged.write_bytes(damaged_bytes)
    _sentinels(tmp_path)
    out = tmp_path / "out"
    before = snapshot(tmp_path, (out, target))
    result = run_cnnlab(tmp_path, damaged, target, "run", spec, "--out", out, *THREADS, "--workers", str(workers),
                        "--no-report", script=DAMAGED_AFTER_THE_PREFLIGHT)
    assert_clean_error(result, 2, str(target), "running the study again resumes")
    assert snapshot(tmp_path, (out, target)) == before
    assert target.read_bytes() == damaged_bytes  # read, never written
    check_folder(out)
    with connect(out) as db:
        runs = [dict(row) for row in db.execute("SELECT status, error FROM runs")]
    statuses = sorted(run["status"] for run in runs)
    assert not {"failed", "running", "done"} & set(statuses), statuses  # resumable, every one
    met = [run for run in runs if run["status"] == "interrupted" and str(target) in (run["error"] or "")]
    assert met, runs  # the run that met the file keeps what it met
    target.write_bytes(good)  # the user fixes the file
    fixed = run_cnnlab(tmp_path, "run", spec, "--out", out, *THREADS, "--workers", str(workers), "--no-report")
    assert fixed.returncode == 0, fixed.stderr
    assert check_folder(out)["done"] == len(runs)
    assert snapshot(tmp_path, (out, target)) == before and target.read_bytes() == good
