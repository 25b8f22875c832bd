"""CIFAR-10/100 python batches, read from the published tar.gz or its extracted folder.

The batches are Python pickles, and unpickling runs whatever a pickle names. So they are read
with an unpickler that can build exactly what the real batches hold (dicts, lists, bytes, str,
ints and numpy arrays) and refuses every other global; and the archive is read member by member
without extracting, refusing links, absolute paths and ``..``.
"""

from __future__ import annotations

import codecs
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Mapping

import numpy as np

from cnnlab.data.arrays import ArrayDataset, Source, dataset_from_numpy, make_source, numbered_class_names
from cnnlab.errors import DataError

try:  # numpy >= 2 (numpy.core is a deprecated alias there)
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct


@dataclass(frozen=True)
class CifarLayout:
    folder: str  # the archive's top folder
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str
    class_names: tuple[str, ...] = ()
    image_shape: tuple[int, int, int] = (3, 32, 32)

    def member(self, name: str) -> str:
        return f"{self.folder}/{name}"


CIFAR10 = CifarLayout(
    folder="cifar-10-batches-py", train=tuple(f"data_batch_{i}" for i in range(1, 6)), test=("test_batch",),
    meta="batches.meta", label_key="labels", names_key="label_names",
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
)
CIFAR100 = CifarLayout(folder="cifar-100-python", train=("train",), test=("test",), meta="meta",
                       label_key="fine_labels", names_key="fine_label_names")

# A batch holds a few arrays of at most ~150 MB; anything far larger is not a CIFAR member.
MAX_MEMBER_BYTES = 1 << 30


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1").
    try:
        latin1 = codecs.lookup(str(encoding)).name == "iso8859-1"
    except LookupError:
        latin1 = False
    if not latin1 or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


class BatchUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; every other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named something a CIFAR batch never holds."""


def load_batch(stream: BinaryIO, where: str) -> dict[str, Any]:
    """One unpickled batch, keys as str, refusing anything but data."""
    try:
        # encoding="bytes": the batches were written by Python 2; its str arrive as bytes.
        batch = BatchUnpickler(stream, encoding="bytes").load()
    except RefusedGlobal as refused:
        raise DataError(
            f"{where} is not a CIFAR batch: the pickle asks to load '{refused}', which could run code. "
            f"CIFAR batches hold only dicts, lists, strings and numpy arrays, so it was refused and nothing "
            f"was run. Delete the file and download the dataset from its official source."
        ) from None
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as error:
        raise DataError(f"{where} could not be read as a CIFAR batch ({type(error).__name__}: {error}); "
                        f"the file is damaged. Delete it and download the dataset again.") from None
    if not isinstance(batch, dict):
        raise DataError(f"{where} holds a {type(batch).__name__}, not the dict a CIFAR batch is.")
    return {key.decode("latin-1") if isinstance(key, bytes) else str(key): value for key, value in batch.items()}


def _batch_arrays(batch: Mapping[str, Any], layout: CifarLayout, where: str) -> tuple[np.ndarray, np.ndarray]:
    data, labels = batch.get("data"), batch.get(layout.label_key)
    c, h, w = layout.image_shape
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != c * h * w:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' must be a uint8 array N x {c * h * w}; found {found}.")
    try:
        label_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: '{layout.label_key}' must be a list of integers.") from None
    if label_array.shape != (data.shape[0],):
        raise DataError(f"{where}: {data.shape[0]} images but '{layout.label_key}' has shape {label_array.shape}.")
    # Rows are stored channel-major (all red, then green, then blue): already C x H x W.
    return data.reshape(-1, c, h, w), label_array


def _class_names(meta: Mapping[str, Any] | None, layout: CifarLayout) -> list[str]:
    names = meta.get(layout.names_key) if meta else None
    if isinstance(names, (list, tuple)) and names:
        return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
    return list(layout.class_names)


def check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse members that could write or read outside the archive's folder."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts or "\\" in name:
        raise DataError(f"{archive} holds a member with an unsafe path '{name}' (absolute or with '..'); "
                        f"it is not the published archive. Delete it and download it again.")
    if member.issym() or member.islnk():
        raise DataError(f"{archive} holds a link '{name}' -> '{member.linkname}'; the published archive has no "
                        f"links. Delete it and download it again.")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive} holds '{name}', which is neither a file nor a folder; it is not the published archive.")


def read_archive_members(archive: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Unpickle the wanted members of a CIFAR tar.gz without extracting anything."""
    found: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                check_member(member, archive)
                if not member.isfile() or member.name not in wanted:
                    continue
                if member.name in found:
                    raise DataError(f"{archive} holds '{member.name}' twice; it is not the published archive.")
                if member.size > MAX_MEMBER_BYTES:
                    raise DataError(f"{archive}: member '{member.name}' is {member.size:,} bytes, far more than a CIFAR batch.")
                stream = tar.extractfile(member)
                if stream is None:  # pragma: no cover - isfile() members always have data
                    continue
                with stream:
                    found[member.name] = load_batch(stream, f"{archive}:{member.name}")
    except DataError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(f"{archive} is damaged ({type(error).__name__}: {error}). A truncated or corrupted "
                        f"download does this; delete the file and download it again.") from None
    return found


def read_folder_members(folder: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Unpickle the wanted batches of an extracted CIFAR folder."""
    found = {}
    for member in sorted(wanted):
        path = folder.parent / member
        if path.is_symlink() or not path.is_file():
            continue
        try:
            with open(path, "rb") as stream:
                found[member] = load_batch(stream, str(path))
        except (OSError, EOFError) as error:
            raise DataError(f"{path} could not be read ({type(error).__name__}: {error}); it is truncated or "
                            f"damaged. Delete the folder and download the dataset again.") from None
    return found


def read_cifar_source(spec: Any, files: Mapping[str, Path], info: Any, *, layout: CifarLayout) -> Source:
    """CIFAR-10 or CIFAR-100 from its archive (or extracted folder)."""
    (path,) = files.values()
    members = {layout.member(n) for n in (*layout.train, *layout.test, layout.meta)}
    batches = read_folder_members(path, members) if path.is_dir() else read_archive_members(path, members)
    missing = sorted(m for m in members - set(batches) if not m.endswith(layout.meta))
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; it is not the complete published dataset. "
                        f"Delete it and download it again.")

    def part(names: tuple[str, ...]) -> ArrayDataset:
        arrays = [_batch_arrays(batches[layout.member(n)], layout, f"{path}:{layout.member(n)}") for n in names]
        images = np.concatenate([a[0] for a in arrays]) if len(arrays) > 1 else arrays[0][0]
        labels = np.concatenate([a[1] for a in arrays]) if len(arrays) > 1 else arrays[0][1]
        return dataset_from_numpy(images, labels)

    names = _class_names(batches.get(layout.member(layout.meta)), layout) or list(info.class_names)
    train, test = part(layout.train), part(layout.test)
    where = f"dataset '{info.name}' ({path})"
    if not names:
        names = numbered_class_names({"the training part": train, "the test part": test}, where)
    return make_source(info.name, train, test, names, where=where)

