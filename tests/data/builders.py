"""Builders of tiny data in every supported format, and a local HTTP mirror, for the data tests."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from cnnlab.data import RemoteFile

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C}
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = struct.pack(">HBB", 0, codes[dtype], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def tiny_images(count: int, channels: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose first pixel is the label and whose second is the index (to trace them)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, channels, size, size), dtype=np.uint8)
    labels = np.arange(count) % 10
    images[:, 0, 0, 0] = labels
    images[:, 0, 0, 1] = np.arange(count) % 256
    return images, labels


def remote_for(path: Path, **extra) -> RemoteFile:
    data = path.read_bytes()
    return RemoteFile(name=path.name, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                      md5=hashlib.md5(data).hexdigest(), **extra)


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar_batches(per_batch: int = 10) -> dict[str, dict]:
    batches = {}
    for i, name in enumerate(["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]):
        images, labels = tiny_images(per_batch, 3, 32, seed=10 + i)
        images[:, 0, 0, 1] = i  # which batch an image came from
        batches[name] = {b"batch_label": f"batch {i}".encode(), b"labels": labels.tolist(),
                         b"data": images.reshape(per_batch, -1), b"filenames": [b"x.png"] * per_batch}
    batches["batches.meta"] = {b"label_names": [n.encode() for n in "abcdefghij"], b"num_vis": 3072}
    return batches


def write_cifar_archive(path: Path, batches: dict[str, dict], extra: Callable[[tarfile.TarFile], None] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(_dir("cifar-10-batches-py"))
        for name, batch in batches.items():
            add_member(tar, f"cifar-10-batches-py/{name}", batch if isinstance(batch, bytes) else pickle.dumps(batch, protocol=2))
        add_member(tar, "cifar-10-batches-py/readme.html", b"<html></html>")
        if extra is not None:
            extra(tar)
    return path


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def write_png(path: Path, size: tuple[int, int], colour: tuple[int, int, int], mode: str = "RGB") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)
    return path


class Mirror:
    """A threaded HTTP server on 127.0.0.1 whose routes a test fills in.

    routes[path] is bytes (served), an int (that HTTP status), or ("cut", bytes) (announces
    the full length, sends half, closes the connection).
    """

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                mirror.requests.append(self.path)
                route = mirror.routes.get(self.path, 404)
                if isinstance(route, int):
                    self.send_error(route)
                    return
                cut = isinstance(route, tuple)
                body = route[1] if cut else route
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def serve(self, prefix: str, name: str, route: object) -> None:
        self.routes[f"/{prefix.strip('/')}/{name}"] = route

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{prefix.strip('/')}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
