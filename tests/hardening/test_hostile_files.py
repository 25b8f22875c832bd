"""Hostile files met end to end: each is refused with a clear message, nothing in it executes,
nothing is written outside the output folder and the cache, and nothing is allocated for what
a file merely claims.

Here: an image folder with a zero-byte file and a non-image through ``cnnlab run``; checkpoints
that are not cnnlab states (a code-running pickle, a list, wrong field types, cut or random
bytes) where a resume reads them; a CIFAR archive with '..', absolute and link members in the
data folder; npz headers claiming 10**12 items; datasets past the memory budget (image folder,
npz, IDX); a pickle in place of safetensors weights.

Covered elsewhere, reader by reader (not repeated here):
- tests/data/test_idx.py: truncated and corrupted gzip, an IDX header claiming 2**31 items,
  a raw file shorter than its header, a bad magic number, mismatched image/label counts;
- tests/data/test_cifar.py: a pickle that runs code, every global but numpy's reconstruction,
  members with '..' or absolute paths, symlinks, a truncated archive, a wrong data shape;
- tests/data/test_folder.py: a non-image, a zero-byte and a truncated image, mixed sizes;
- tests/data/test_npz.py: object arrays (pickles), float images, one-hot labels, damaged files;
- tests/data/test_download.py: wrong checksums, cut connections, dead mirrors;
- tests/train/test_checkpoint.py: a checkpoint that runs code or is a list, read from its file.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.api import run_study
from cnnlab.errors import DataError, StoreError
from cnnlab.store import Store

from .conftest import (assert_clean_error, check_folder, cnnlab, fast_study, snapshot_outside, start_cnnlab, tree,
                       write_digits_npz, write_spec)

FIGURES: dict[str, int] = {}


def refused(kind: str) -> None:
    FIGURES[kind] = FIGURES.get(kind, 0) + 1


# ---------------------------------------------------------------- an image folder through cnnlab run


def _image_folder(root: Path) -> Path:
    from PIL import Image

    for label, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
        (root / label).mkdir(parents=True)
        for index in range(6):
            Image.new("RGB", (8, 8), tuple(min(255, c + 5 * index) for c in colour)).save(root / label / f"{index}.png")
    return root


def test_an_image_folder_with_a_zero_byte_file_and_a_non_image_fails_cleanly_through_cnnlab_run(tmp_path):
    from cnnlab.data import load_source
    from cnnlab.spec.study import Dataset

    images = _image_folder(tmp_path / "images")
    empty, script = images / "cat" / "empty.png", images / "dog" / "notes.png"
    empty.write_bytes(b"")
    script.write_bytes(b"#!/bin/sh\ntouch pwned\n")
    spec = write_spec(tmp_path / "study.yaml", {
        "name": "images", "dataset": {"name": "folder", "path": str(images), "split": {"train": 8, "val": 2, "test": 2}},
        "architectures": {"A": ["flatten", {"dense": 2}]}, "train": {"epochs": 1},
    })
    before = tree(images)
    result = cnnlab("run", spec, "--out", tmp_path / "out", "--threads", "1")  # not --quiet: the run's error is shown
    # Found by the pre-flight, before the output folder exists: bad input, nothing written.
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{empty} is empty (0 bytes)" in result.stderr  # the first bad file in reading order
    assert tree(images) == before  # the dataset folder is only read
    assert not (tmp_path / "out").exists()
    refused("image folders with a zero-byte file")
    empty.unlink()
    with pytest.raises(DataError, match=f"{script} is not an image"):
        load_source(Dataset(name="folder", path=str(images)))
    refused("image folders with a file that is not an image")
    script.unlink()
    assert run_study(spec, tmp_path / "out", threads=1).outcome.ok  # fixed: the same folder finishes
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


# ---------------------------------------------------------------- a checkpoint where a resume reads it


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _checkpoints(marker: Path, real: bytes) -> dict[str, bytes]:
    """Files that a resume could find in place of a checkpoint."""
    def saved(value) -> bytes:
        buffer = io.BytesIO()
        torch.save(value, buffer)
        return buffer.getvalue()

    state = torch.load(io.BytesIO(real), weights_only=True)
    return {
        "a pickle that runs code": pickle.dumps({"format": 1, "epochs_done": RunsCode(marker)}),
        "a list, not a state dict": saved([1, 2, 3]),
        "a state dict with a text epoch count": saved({**state, "epochs_done": "three"}),
        "a state dict whose model is not tensors": saved({**state, "model": {"conv1.weight": "zeros"}}),
        "a state dict whose history is text": saved({**state, "history": "epoch 1: fine"}),
        "cut in half": real[: len(real) // 2],
        "garbage": os.urandom(4096),
    }


@pytest.fixture(scope="module")
def interrupted_study(tmp_path_factory):
    """An output folder whose first run was killed after its first checkpoint."""
    base = tmp_path_factory.mktemp("checkpoint")
    spec = write_spec(base / "study.yaml", fast_study(write_digits_npz(base / "digits.npz"), "resume", epochs=4))
    out = base / "out"
    process = start_cnnlab("run", spec, "--out", out, "--quiet", "--threads", "1")
    deadline = time.monotonic() + 120
    while not _recorded_checkpoint(out) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    checkpoint = _recorded_checkpoint(out)
    assert checkpoint is not None
    return spec, out, checkpoint


def _recorded_checkpoint(out: Path):
    """The checkpoint file the store knows of (a file renamed into place but not yet recorded
    is not read by a resume), or None."""
    import sqlite3

    try:
        db = sqlite3.connect(f"file:{out / 'cnnlab.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            row = db.execute("SELECT path FROM artifacts WHERE kind = 'checkpoint' LIMIT 1").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return out / row[0] if row else None


def test_a_checkpoint_that_is_not_a_cnnlab_state_is_refused_when_a_resume_reads_it(interrupted_study, tmp_path):
    import shutil

    spec, original, checkpoint = interrupted_study
    marker = tmp_path / "pwned"
    cases = _checkpoints(marker, checkpoint.read_bytes())
    on_the_command_line = {"a pickle that runs code"}
    for number, (name, data) in enumerate(cases.items()):
        out = tmp_path / f"case-{number}"
        shutil.copytree(original, out)
        planted = out / checkpoint.relative_to(original)
        planted.write_bytes(data)
        if name in on_the_command_line:
            result = cnnlab("run", spec, "--out", out, "--quiet", "--threads", "1")
            assert_clean_error(result, 2, str(planted), "checkpoint")
            assert "--force" in result.stderr
        else:
            with pytest.raises(StoreError, match="checkpoint") as error:
                run_study(spec, out, threads=1)
            assert str(planted) in str(error.value), name
        assert not marker.exists()
        assert planted.read_bytes() == data  # refused, not silently replaced
        refused("checkpoints (" + name + ")")
    # --force starts the run again from scratch and finishes the study.
    assert run_study(spec, out, threads=1, force=True).outcome.ok
    check_folder(out)


# ---------------------------------------------------------------- nothing written outside the cache


def test_a_hostile_cifar_archive_in_the_data_dir_writes_nothing_anywhere(tmp_path, monkeypatch):
    """A CIFAR archive with '..' and absolute members and a link, found where the data lives:
    refused (its checksum does not match, and its members are never extracted), and no file
    appears anywhere under the working folder, the data folder or the cache."""
    from cnnlab.data import load_source
    from cnnlab.data.cifar import CIFAR10, read_archive_members
    from cnnlab.spec.study import Dataset

    work = tmp_path / "work"
    data = work / "data"
    data.mkdir(parents=True)
    monkeypatch.chdir(data)
    archive = data / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("../escaped.txt", str(tmp_path / "absolute.txt"), "cifar-10-batches-py/data_batch_1"):
            body = b"payload"
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    before = snapshot_outside(tmp_path)
    with pytest.raises(DataError, match="unsafe path"):
        read_archive_members(archive, {CIFAR10.member("data_batch_1")})
    with pytest.raises(DataError) as error:  # offline: the archive is not the published file
        load_source(Dataset(name="cifar10"), data, download=False)
    assert "cifar-10-python.tar.gz" in str(error.value)
    assert snapshot_outside(tmp_path) == before
    refused("CIFAR archives with unsafe members")


# ---------------------------------------------------------------- files that claim more memory than there is


def _npy_header(shape: tuple, dtype: str = "|u1") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(10**12,), (2**31, 28, 28), (2**62, 2)], ids=["1e12", "2^31 images", "overflowing"])
def test_an_npz_whose_header_claims_more_than_it_holds_is_refused_before_allocating(tmp_path, shape):
    import resource
    import zipfile

    from cnnlab.data.npz import read_npz

    path = tmp_path / "claims.npz"
    labels = io.BytesIO()
    np.lib.format.write_array(labels, np.zeros(4, np.int64))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x_train.npy", _npy_header(shape) + b"\0" * 64)
        archive.writestr("y_train.npy", labels.getvalue())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="claims .* items of uint8 .* but holds"):
        read_npz(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB
    refused("npz files whose headers claim " + "x".join(map(str, shape)) + " items")


def test_datasets_larger_than_the_memory_budget_are_refused_before_allocating(tmp_path, monkeypatch):
    """An image folder of a few large pictures, an npz and an IDX file that fit the disk but,
    decoded, would not fit the memory a dataset may use (lowered here to 100 kB)."""
    import gzip

    from PIL import Image

    import cnnlab.data.arrays as arrays
    from cnnlab.data import load_source
    from cnnlab.data.idx import read_idx
    from cnnlab.data.npz import read_npz
    from cnnlab.spec.study import Dataset

    monkeypatch.setattr(arrays, "memory_budget", lambda: 100_000)
    images = tmp_path / "images"
    for label in ("a", "b"):
        (images / label).mkdir(parents=True)
        for index in range(2):  # 4 x 300 x 300 x 3 = 1.08 MB decoded, a few kB as PNG
            Image.new("RGB", (300, 300), (index, 0, 0)).save(images / label / f"{index}.png")
    with pytest.raises(DataError, match="4 images of 300x300 pixels .* MB in memory.*image_size"):
        load_source(Dataset(name="folder", path=str(images)))
    assert load_source(Dataset(name="folder", path=str(images), image_size=[32, 32])).train.images.shape == (4, 3, 32, 32)
    np.savez_compressed(tmp_path / "zeros.npz", x_train=np.zeros((200, 28, 28), np.uint8), y_train=np.zeros(200, np.int64))
    with pytest.raises(DataError, match="would take 158 kB in memory, more than the 100 kB"):
        read_npz(tmp_path / "zeros.npz")
    header = b"\0\0\x08\x03" + (200).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    (tmp_path / "zeros-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(200 * 28 * 28)))
    with pytest.raises(DataError, match="zeros-idx3-ubyte.gz .* would take 157 kB in memory"):
        read_idx(tmp_path / "zeros-idx3-ubyte.gz")
    refused("datasets past the memory budget (an image folder, an npz, an IDX file)")


def test_a_weights_file_that_is_not_safetensors_is_refused(interrupted_study, tmp_path):
    import shutil

    spec, original, _ = interrupted_study
    out = tmp_path / "out"
    shutil.copytree(original, out)
    assert run_study(spec, out, threads=1, epochs=1).outcome.ok  # other runs of a 1-epoch variant: finished fast
    with Store(out, create=False) as store:
        run = store.runs(status="done")[0]
        path = store.artifact_path(run["id"], "weights")
        path.write_bytes(pickle.dumps({"conv1.weight": RunsCode(tmp_path / "pwned")}))
        with pytest.raises(StoreError, match="not a readable safetensors"):
            store.load_weights(run["id"])
    assert not (tmp_path / "pwned").exists()
    refused("weights files (a pickle in place of safetensors)")


def test_hostile_file_figures():
    if FIGURES:
        print(f"\n[hostile files] {sum(FIGURES.values())} files refused end to end: "
              + ", ".join(f"{count} {kind}" for kind, count in FIGURES.items()))
