"""The dataset registry: what each named dataset is, where it is published, how it is read.

One entry per name, filled by ``register``, listed by ``cnnlab datasets``. The checksums live in
``checksums.json`` beside this file (one table, reviewed as data); the mirrors live here. Both are
plain fields of a frozen ``DatasetInfo``, so tests (and users with their own mirror) can build a
copy with ``dataclasses.replace`` and hand it to ``load_dataset``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from cnnlab.data.arrays import Source
from cnnlab.errors import DataError
from cnnlab.registry import Registry

# reader(spec, files, info) -> Source; ``files`` maps each published file name to the local
# path that holds it (the file itself, its decompressed twin, or its extracted folder).
Reader = Callable[[Any, Mapping[str, Path], "DatasetInfo"], Source]


@dataclass(frozen=True)
class RemoteFile:
    """A file as published: name, size and checksums; what a download and a local copy must match."""

    name: str
    size: int = 0
    sha256: str = ""
    md5: str = ""
    content_md5: str = ""  # .gz files: md5 of the decompressed payload
    members: tuple[tuple[str, str], ...] = ()  # archives: (member path, md5) of the files read from it

    @property
    def unpacked_name(self) -> Optional[str]:
        """The name of the file's decompressed or extracted form, where one is recognised."""
        if self.content_md5 and self.name.endswith(".gz"):
            return self.name[:-3]
        if self.members:
            return self.members[0][0].split("/")[0]
        return None


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    reader: Reader
    shape: Optional[tuple[int, int, int]] = None  # (C, H, W); None when the user's files decide
    classes: Optional[int] = None
    train_size: Optional[int] = None
    test_size: Optional[int] = None
    class_names: tuple[str, ...] = ()
    files: tuple[RemoteFile, ...] = ()  # empty: embedded or user data, nothing to download
    mirrors: tuple[str, ...] = ()  # base URLs, tried in turn; a file's URL is mirror + name
    homepage: str = ""
    embedded: bool = False  # ships with an installed package; needs no file and no network
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def download_size(self) -> int:
        return sum(f.size for f in self.files)


DATASETS: Registry[DatasetInfo] = Registry("dataset", DataError)


@functools.lru_cache(maxsize=1)
def checksum_table() -> dict[str, Any]:
    """The published checksums, from ``checksums.json``."""
    text = resources.files("cnnlab.data").joinpath("checksums.json").read_text(encoding="utf-8")
    return json.loads(text)


def published_files(dataset: str) -> tuple[RemoteFile, ...]:
    """The RemoteFile entries of one dataset, in the order the table lists them."""
    entries = checksum_table()[dataset]
    return tuple(
        RemoteFile(
            name=name,
            size=int(entry.get("size", 0)),
            sha256=entry.get("sha256", ""),
            md5=entry.get("md5", ""),
            content_md5=entry.get("content_md5", ""),
            members=tuple(sorted(entry.get("members", {}).items())),
        )
        for name, entry in entries.items()
    )


def _register(info: DatasetInfo) -> None:
    DATASETS.register(info.name)(info)


def _fill() -> None:
    # Imported here: the readers import this module's types.
    from cnnlab.data.cifar import CIFAR10, CIFAR100, read_cifar_source
    from cnnlab.data.digits import read_digits_source
    from cnnlab.data.folder import read_folder_source
    from cnnlab.data.idx import read_idx_source
    from cnnlab.data.npz import read_npz_source

    digits = tuple(str(d) for d in range(10))
    _register(DatasetInfo(
        name="mnist", description="handwritten digits 0-9 (LeCun, Cortes and Burges), 28x28 grayscale",
        reader=read_idx_source, shape=(1, 28, 28), classes=10, train_size=60_000, test_size=10_000,
        class_names=digits, files=published_files("mnist"),
        # The S3 copy is the one torchvision uses; the Google bucket is TensorFlow's. Both serve
        # byte-identical files (same sha256), so either may go down without losing the data.
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        homepage="http://yann.lecun.com/exdb/mnist/",
    ))
    _register(DatasetInfo(
        name="fashion_mnist", description="Zalando clothing photos in 10 classes, 28x28 grayscale",
        reader=read_idx_source, shape=(1, 28, 28), classes=10, train_size=60_000, test_size=10_000,
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        files=published_files("fashion_mnist"),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # Zalando's own bucket
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # Keras' copy
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ))
    _register(DatasetInfo(
        name="cifar10", description="32x32 colour photos in 10 classes (Krizhevsky 2009)",
        reader=functools.partial(read_cifar_source, layout=CIFAR10), shape=(3, 32, 32), classes=10,
        train_size=50_000, test_size=10_000, class_names=CIFAR10.class_names, files=published_files("cifar10"),
        mirrors=("https://www.cs.toronto.edu/~kriz/",), homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ))
    _register(DatasetInfo(
        name="cifar100", description="32x32 colour photos in 100 fine classes (Krizhevsky 2009)",
        reader=functools.partial(read_cifar_source, layout=CIFAR100), shape=(3, 32, 32), classes=100,
        train_size=50_000, test_size=10_000, files=published_files("cifar100"),
        mirrors=("https://www.cs.toronto.edu/~kriz/",), homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ))
    _register(DatasetInfo(
        name="digits", description="scikit-learn's bundled 8x8 handwritten digits; no test part, no download",
        reader=read_digits_source, shape=(1, 8, 8), classes=10, train_size=1797, test_size=None,
        class_names=digits, embedded=True,
        homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
    ))
    _register(DatasetInfo(
        name="npz", description="your arrays in an .npz file: x_train, y_train [, x_test, y_test, class_names]",
        reader=read_npz_source,
    ))
    _register(DatasetInfo(
        name="folder", description="your images, one sub-folder per class (optionally under train/ and test/)",
        reader=read_folder_source,
    ))


_fill()


def known_shape(spec: Any) -> Optional[tuple[tuple[int, int, int], int]]:
    """(C, H, W) and the number of classes, without reading any image; None when the files decide.

    Lets ``cnnlab`` check a study's architectures (and print model summaries) before a
    dataset is downloaded. A folder with ``image_size`` only needs its class folders listed.
    """
    if spec.name not in DATASETS:
        return None
    info = DATASETS.get(spec.name)
    if info.shape is not None and info.classes is not None:
        return info.shape, info.classes
    if spec.name == "folder" and spec.image_size is not None and spec.path:
        from cnnlab.data.folder import class_folder_names

        names = class_folder_names(Path(spec.path))
        if not names:
            return None
        height, width = spec.image_size
        return (1 if spec.grayscale else 3, int(height), int(width)), len(names)
    return None
