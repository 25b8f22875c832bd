"""Fixtures that build tiny datasets in every supported format, and a local HTTP mirror."""

from __future__ import annotations

import dataclasses
import hashlib
import tarfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from cnnlab.data import DATASETS, DatasetInfo

from .builders import IDX_NAMES, Mirror, cifar_batches, remote_for, tiny_images, write_cifar_archive, write_idx, write_png


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch):
    """No test sees the user's cache, CNNLAB_DATA or a proxy (the local mirror is 127.0.0.1)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# ---------------------------------------------------------------- IDX


@pytest.fixture
def mnist_like(tmp_path) -> Path:
    """A folder with the four MNIST IDX.gz files: 60 train and 20 test images of 7x7."""
    folder = tmp_path / "mnist-files"
    folder.mkdir()
    for prefix, count, seed in (("train", 60, 1), ("t10k", 20, 2)):
        images, labels = tiny_images(count, 1, 7, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[:, 0])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return folder


@pytest.fixture
def mnist_info(mnist_like) -> Callable[..., DatasetInfo]:
    """The mnist registry entry with the fixture files' checksums and the given mirrors."""

    def make(*mirrors: str) -> DatasetInfo:
        files = tuple(remote_for(mnist_like / name) for name in IDX_NAMES)
        return dataclasses.replace(DATASETS.get("mnist"), files=files, mirrors=tuple(mirrors))

    return make


# ---------------------------------------------------------------- CIFAR


@pytest.fixture
def cifar_archive(tmp_path) -> Path:
    """A CIFAR-10-like cifar-10-python.tar.gz: 5 x 10 training and 10 test images, with meta."""
    folder = tmp_path / "cifar-files"
    folder.mkdir()
    return write_cifar_archive(folder / "cifar-10-python.tar.gz", cifar_batches())


@pytest.fixture
def cifar_info(cifar_archive) -> DatasetInfo:
    members = []
    with tarfile.open(cifar_archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and not member.name.endswith("readme.html"):
                members.append((member.name, hashlib.md5(tar.extractfile(member).read()).hexdigest()))
    remote = remote_for(cifar_archive, members=tuple(sorted(members)))
    return dataclasses.replace(DATASETS.get("cifar10"), files=(remote,), mirrors=())


# ---------------------------------------------------------------- npz and folder


@pytest.fixture
def npz_file(tmp_path) -> Path:
    """x_train 30 x 6 x 6 x 3 (NHWC), x_test 10 x 6 x 6 x 3, labels 0-4."""
    rng = np.random.default_rng(0)
    path = tmp_path / "arrays.npz"
    np.savez(path, x_train=rng.integers(0, 256, (30, 6, 6, 3), dtype=np.uint8), y_train=np.arange(30) % 5,
             x_test=rng.integers(0, 256, (10, 6, 6, 3), dtype=np.uint8), y_test=np.arange(10) % 5)
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """root/{cat,dog,bird}/ with 3, 4 and 2 PNGs of 10 x 8 (w x h), each class its own colour."""
    root = tmp_path / "images"
    colours = {"cat": (200, 10, 10), "dog": (10, 200, 10), "bird": (10, 10, 200)}
    for name, count in (("cat", 3), ("dog", 4), ("bird", 2)):
        for i in range(count):
            write_png(root / name / f"{i}.png", (10, 8), colours[name])
    return root


# ---------------------------------------------------------------- a local mirror


@pytest.fixture
def mirror():
    server = Mirror()
    yield server
    server.close()


@pytest.fixture
def refused_url() -> str:
    """An address on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead/"
