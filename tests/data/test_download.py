"""The downloader and the file lookup, end to end against a mirror on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import gzip
import urllib.request
from pathlib import Path

import pytest

from cnnlab.data import download_file, ensure_files, load_dataset, load_source
from cnnlab.data.cache import user_cache_dir
from cnnlab.errors import DataError
from cnnlab.spec.study import Dataset

from .builders import IDX_NAMES, remote_for

MNIST = Dataset(name="mnist")


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_download_succeeds_through_the_second_mirror_when_the_first_returns_404(mirror, mnist_like, mnist_info, tmp_path):
    for name in IDX_NAMES:
        mirror.serve("good", name, (mnist_like / name).read_bytes())
    info = mnist_info(mirror.url("missing"), mirror.url("good"))
    messages = []
    source = load_dataset(info, MNIST, tmp_path / "data", log=messages.append, timeout=5)
    assert len(source.train) == 60 and len(source.test) == 20 and source.train.images.shape[1:] == (1, 7, 7)
    assert sorted(leftovers(tmp_path / "data" / "mnist")) == sorted(IDX_NAMES)  # no temporary files
    assert any("404" in m and "trying the next mirror" in m for m in messages)
    # Found locally the second time: nothing more is requested.
    requests = len(mirror.requests)
    load_dataset(info, MNIST, tmp_path / "data", timeout=5)
    assert len(mirror.requests) == requests


def test_download_succeeds_through_the_second_mirror_when_the_first_refuses_connections(mirror, mnist_like, refused_url, tmp_path):
    remote = remote_for(mnist_like / IDX_NAMES[1])
    mirror.serve("good", remote.name, (mnist_like / remote.name).read_bytes())
    path = download_file(remote, [refused_url, mirror.url("good")], tmp_path / "out", timeout=5)
    assert path.read_bytes() == (mnist_like / remote.name).read_bytes()
    assert leftovers(tmp_path / "out") == [remote.name]


def test_checksum_mismatch_leaves_nothing_behind_and_says_so(mirror, mnist_like, tmp_path):
    remote = remote_for(mnist_like / IDX_NAMES[0])
    data = bytearray((mnist_like / remote.name).read_bytes())
    data[100] ^= 1  # same size, different bytes
    mirror.serve("bad", remote.name, bytes(data))
    with pytest.raises(DataError, match="checksum mismatch: sha256 [0-9a-f]{64}, published " + remote.sha256) as error:
        download_file(remote, [mirror.url("bad")], tmp_path / "out", timeout=5)
    assert "Nothing was saved" in str(error.value)
    assert leftovers(tmp_path / "out") == []


def test_connection_cut_midway_leaves_nothing_behind(mirror, mnist_like, tmp_path):
    remote = remote_for(mnist_like / IDX_NAMES[0])
    mirror.serve("cut", remote.name, ("cut", (mnist_like / remote.name).read_bytes()))
    with pytest.raises(DataError, match=f"connection closed after {remote.size // 2:,} of {remote.size:,} bytes"):
        download_file(remote, [mirror.url("cut")], tmp_path / "out", timeout=5)
    assert leftovers(tmp_path / "out") == []


def test_interrupted_download_removes_its_temporary_file(monkeypatch, mnist_like, tmp_path):
    remote = remote_for(mnist_like / IDX_NAMES[0])

    class Interrupted:
        headers = {"Content-Length": str(remote.size)}
        calls = 0

        def read(self, size):
            Interrupted.calls += 1
            if Interrupted.calls > 1:
                raise KeyboardInterrupt
            return b"\0" * 100

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Interrupted())
    with pytest.raises(KeyboardInterrupt):
        download_file(remote, ["http://127.0.0.1:9/"], tmp_path / "out", timeout=5)
    assert leftovers(tmp_path / "out") == []


def test_offline_with_no_files_names_the_files_and_the_folder(mnist_info, tmp_path):
    info = mnist_info("https://example.invalid/mnist/")
    with pytest.raises(DataError) as error:
        load_dataset(info, MNIST, tmp_path / "mine", download=False)
    message = str(error.value)
    for name in IDX_NAMES:
        assert name in message
    assert f"Put them in {tmp_path / 'mine' / 'mnist'}" in message
    assert "downloading is turned off" in message
    assert leftovers(tmp_path / "mine") == []


def test_the_user_cache_follows_xdg_cache_home_else_the_platform_convention(monkeypatch, tmp_path):
    import sys

    import platformdirs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "cnnlab"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", "relative/cache"):  # the XDG specification ignores a relative value
        monkeypatch.setenv("XDG_CACHE_HOME", unset)
        assert user_cache_dir() == Path(platformdirs.user_cache_dir("cnnlab", appauthor=False))
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert user_cache_dir() == Path(platformdirs.user_cache_dir("cnnlab", appauthor=False))
    if sys.platform.startswith("linux"):
        assert user_cache_dir() == tmp_path / "home" / ".cache" / "cnnlab"
    elif sys.platform == "darwin":
        assert user_cache_dir() == tmp_path / "home" / "Library" / "Caches" / "cnnlab"


def test_without_a_data_dir_files_go_to_the_user_cache(mirror, mnist_like, mnist_info, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "cnnlab"
    info = mnist_info(mirror.url("good"))
    with pytest.raises(DataError, match=f"Put them in {tmp_path / 'xdg' / 'cnnlab' / 'mnist'}"):
        load_dataset(info, MNIST, download=False)
    for name in IDX_NAMES:
        mirror.serve("good", name, (mnist_like / name).read_bytes())
    paths = ensure_files(info, timeout=5)
    assert {p.parent for p in paths.values()} == {tmp_path / "xdg" / "cnnlab" / "mnist"}


def test_all_mirrors_failing_lists_each_and_where_to_put_the_files(mirror, refused_url, mnist_info, tmp_path):
    info = mnist_info(refused_url, mirror.url("missing"))
    with pytest.raises(DataError) as error:
        load_dataset(info, MNIST, tmp_path / "d", timeout=5)
    message = str(error.value)
    assert "connection refused" in message and "HTTP 404" in message
    assert "nothing was saved" in message and str(tmp_path / "d" / "mnist") in message
    assert leftovers(tmp_path / "d") == []


def test_data_dir_env_variable_and_flat_layout_are_searched(mnist_like, mnist_info, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(mnist_like))  # files directly in the folder
    source = load_dataset(mnist_info(), MNIST, download=False)
    assert len(source.train) == 60


def test_damaged_local_copy_is_not_used_and_is_downloaded_again(mirror, mnist_like, mnist_info, tmp_path):
    info = mnist_info(mirror.url("good"))
    for name in IDX_NAMES:
        mirror.serve("good", name, (mnist_like / name).read_bytes())
    target = tmp_path / "d" / "mnist"
    ensure_files(info, tmp_path / "d", timeout=5)
    (target / IDX_NAMES[0]).write_bytes(b"\x1f\x8b damaged")
    with pytest.raises(DataError, match="was found but is not the published file"):
        load_dataset(info, MNIST, tmp_path / "d", download=False)
    messages = []
    load_dataset(info, MNIST, tmp_path / "d", log=messages.append, timeout=5)
    assert (target / IDX_NAMES[0]).read_bytes() == (mnist_like / IDX_NAMES[0]).read_bytes()
    assert any("downloading it again" in m for m in messages)


def test_recompressed_or_gunzipped_copies_are_recognised_by_their_content(mnist_like, mnist_info, tmp_path):
    import hashlib

    files = []
    for remote in mnist_info().files:
        content = gzip.decompress((mnist_like / remote.name).read_bytes())
        files.append(dataclasses.replace(remote, content_md5=hashlib.md5(content).hexdigest()))
    info = dataclasses.replace(mnist_info(), files=tuple(files))
    folder = tmp_path / "copies"
    folder.mkdir()
    for i, name in enumerate(IDX_NAMES):
        content = gzip.decompress((mnist_like / name).read_bytes())
        if i % 2:
            (folder / name[:-3]).write_bytes(content)  # gunzipped
        else:
            (folder / name).write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))  # re-compressed
    source = load_dataset(info, MNIST, folder, download=False)
    reference = load_dataset(info, MNIST, mnist_like, download=False)
    assert source.train.images.equal(reference.train.images) and source.test.labels.equal(reference.test.labels)


def test_unknown_dataset_name_suggests_the_closest():
    from cnnlab.data import DATASETS

    with pytest.raises(DataError, match="did you mean 'mnist'"):
        DATASETS.get("mnsit")


def test_load_source_uses_the_registry_entry(mnist_like, monkeypatch, mnist_info):
    from cnnlab.data import DATASETS

    monkeypatch.setitem(DATASETS._items, "mnist", mnist_info())
    assert len(load_source(MNIST, mnist_like, download=False).test) == 20


def test_cifar_archive_downloads_and_loads(mirror, cifar_info, cifar_archive, tmp_path):
    mirror.serve("kriz", cifar_archive.name, cifar_archive.read_bytes())
    info = dataclasses.replace(cifar_info, mirrors=(mirror.url("kriz"),))
    source = load_dataset(info, Dataset(name="cifar10"), tmp_path / "d", timeout=5)
    assert source.train.images.shape == (50, 3, 32, 32)
    assert leftovers(tmp_path / "d" / "cifar10") == [cifar_archive.name]
