"""IDX files (the MNIST and Fashion-MNIST format), gzipped or not.

The header is trusted for nothing: the sizes it claims are checked against what the file can
hold before anything is allocated, so a damaged or hostile header gives an error, not a
multi-gigabyte allocation.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cnnlab.data.arrays import (
    ArrayDataset, Source, check_fits, dataset_from_numpy, make_source, numbered_class_names,
)
from cnnlab.errors import DataError

# The dtype byte of the magic number (third byte), as the format defines it.
DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot compress better than about 1032:1; a header claiming more than that for the
# file's size is lying.
DEFLATE_MAX_RATIO = 1032
MAX_DIMENSIONS = 8

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


def _read_exactly(stream: Any, count: int, path: Path, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise DataError(f"{path} is cut short: it ends inside the {what}. The file is truncated or not an IDX file; "
                        f"delete it and download or copy it again.")
    return data


def read_idx(path: str | Path) -> np.ndarray:
    """The array an IDX file holds (gzipped or not), in native byte order."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            is_gzip = handle.read(2) == GZIP_MAGIC
            file_size = handle.seek(0, 2)
            gzip_isize = None
            if is_gzip:
                if file_size < 18:
                    raise DataError(f"{path} is too short ({file_size} bytes) to be a gzip file; it is truncated.")
                handle.seek(-4, 2)
                gzip_isize = struct.unpack("<I", handle.read(4))[0]  # decompressed size mod 2**32
        with (gzip.open(path, "rb") if is_gzip else open(path, "rb")) as stream:  # noqa: SIM115 - one of two openers
            return _read_idx_stream(stream, path, file_size, is_gzip, gzip_isize)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path} does not exist.") from None
    except (OSError, EOFError, zlib.error) as error:
        # gzip.BadGzipFile and a CRC failure are OSErrors; a cut gzip stream is an EOFError.
        raise DataError(
            f"{path} is damaged: reading it failed with '{error}'. A truncated or corrupted download "
            f"does this; delete the file and download or copy it again."
        ) from None


def _read_idx_stream(stream: Any, path: Path, file_size: int, is_gzip: bool, gzip_isize: int | None) -> np.ndarray:
    magic = _read_exactly(stream, 4, path, "4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or code not in DTYPES or not 1 <= ndim <= MAX_DIMENSIONS:
        raise DataError(
            f"{path} is not an IDX file: its magic number is {magic.hex()} (expected 0000 then a type code "
            f"08, 09, 0b, 0c, 0d or 0e, then 1-{MAX_DIMENSIONS} dimensions)."
        )
    dims = struct.unpack(f">{ndim}I", _read_exactly(stream, 4 * ndim, path, "dimension sizes"))
    dtype = DTYPES[code]
    header = 4 + 4 * ndim
    payload = math.prod(dims) * dtype.itemsize  # Python ints: no overflow on absurd headers
    claim = f"its header claims {' x '.join(map(str, dims))} items of {dtype.itemsize} byte(s) ({payload:,} bytes)"
    if is_gzip:
        if payload > file_size * DEFLATE_MAX_RATIO or (header + payload) % 2**32 != gzip_isize:
            raise DataError(
                f"{path}: {claim}, but the gzip file decompresses to {gzip_isize:,} bytes in all "
                f"(header included). The file is damaged or not the dataset's; download or copy it again."
            )
    elif header + payload != file_size:
        raise DataError(
            f"{path}: {claim}, but the file holds {file_size - header:,} bytes after its header. "
            f"The file is truncated or damaged; download or copy it again."
        )
    check_fits(payload, f"{path} ({claim})", "It is damaged or not the dataset's; download or copy it again.")
    buffer = bytearray(payload)
    view = memoryview(buffer)
    filled = 0
    while filled < payload:
        got = stream.readinto(view[filled:])
        if not got:
            raise DataError(f"{path} is cut short: {claim} but ends after {filled:,}. Download or copy it again.")
        filled += got
    if stream.read(1):
        raise DataError(f"{path}: {claim} but holds more data after them; it is not a valid IDX file.")
    array = np.frombuffer(buffer, dtype=dtype).reshape(dims)
    return array if dtype.byteorder in ("=", "|") else array.astype(dtype.newbyteorder("="))


def read_idx_pair(images_path: Path, labels_path: Path) -> ArrayDataset:
    """Images (N x H x W uint8) and labels (N) from two IDX files, as one dataset."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(f"{images_path} holds a {images.dtype} array of shape {images.shape}; images must be uint8 N x H x W.")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path} holds a {labels.dtype} array of shape {labels.shape}; labels must be integers, one per image.")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels.")
    return dataset_from_numpy(images[:, None, :, :], labels)


def read_idx_source(spec: Any, files: Mapping[str, Path], info: Any) -> Source:
    """MNIST-style datasets: four IDX files, training and test images and labels."""
    train = read_idx_pair(files[TRAIN_IMAGES], files[TRAIN_LABELS])
    test = read_idx_pair(files[TEST_IMAGES], files[TEST_LABELS])
    where = f"dataset '{info.name}' ({files[TRAIN_IMAGES].parent})"
    names = list(info.class_names) or numbered_class_names({"the training part": train}, where)
    return make_source(info.name, train, test, names, where=where)
