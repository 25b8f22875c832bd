"""User arrays in an .npz file: ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test``.

Layouts accepted for the images (uint8 only):
- N x H x W: grayscale;
- N x H x W x C with C in 1, 3 or 4 (Keras' channels-last layout, what ``keras.datasets``
  returns), which wins when both readings are possible;
- N x C x H x W with C in 1, 3 or 4 (PyTorch's layout), when the last axis is not 1, 3 or 4.
Labels: integers >= 0, shape N or N x 1 (Keras' CIFAR labels). An optional ``class_names``
string array names the classes; without it they are "0" to the largest label (at most
``MAX_CLASSES``). Object arrays are refused: they would need unpickling.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from cnnlab.data.arrays import (
    ArrayDataset, Source, check_fits, dataset_from_numpy, make_source, numbered_class_names,
)
from cnnlab.errors import DataError

CHANNELS = (1, 3, 4)


def to_nchw(images: np.ndarray, where: str) -> np.ndarray:
    """An N x C x H x W view of uint8 images given as NHW, NHWC or NCHW (see the module doc)."""
    if images.dtype != np.uint8:
        raise DataError(
            f"{where} is {images.dtype}; images must be uint8 (0-255). Convert them first, e.g. "
            f"np.round(x * 255).astype(np.uint8) for floats in 0-1."
        )
    if images.ndim == 3:
        return images[:, None, :, :]
    if images.ndim == 4:
        if images.shape[3] in CHANNELS:
            return images.transpose(0, 3, 1, 2)
        if images.shape[1] in CHANNELS:
            return images
        raise DataError(f"{where} has shape {images.shape}: neither N x H x W x C nor N x C x H x W with 1, 3 or 4 channels.")
    raise DataError(f"{where} has shape {images.shape}; images must be N x H x W, N x H x W x C or N x C x H x W.")


def _labels(labels: np.ndarray, count: int, where: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{where} is {labels.dtype} with shape {labels.shape}; labels must be integers, one per image "
                        f"(class indices, not one-hot rows).")
    if len(labels) != count:
        raise DataError(f"{where} has {len(labels)} labels for {count} images.")
    if len(labels) and labels.min() < 0:
        raise DataError(f"{where} holds a negative label ({labels.min()}); labels must be class indices 0, 1, ...")
    # uint64 labels beyond int64 would wrap to negative numbers in the cast below.
    if len(labels) and int(labels.max()) > np.iinfo(np.int64).max:
        raise DataError(f"{where} holds the label {int(labels.max()):,}; labels must be class indices 0, 1, ...")
    return labels.astype(np.int64)


def _part(arrays: Mapping[str, np.ndarray], x_key: str, y_key: str, path: Path) -> ArrayDataset:
    images = to_nchw(arrays[x_key], f"{path}: '{x_key}'")
    return dataset_from_numpy(images, _labels(arrays[y_key], len(images), f"{path}: '{y_key}'"))


def _claimed_bytes(npz: Any, key: str, path: Path) -> int:
    """What an array's .npy header says it holds, checked against its member's size unread."""
    name = key + ".npy" if key + ".npy" in npz.zip.namelist() else key
    info = npz.zip.getinfo(name)
    with npz.zip.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(member)
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise ValueError(f"'{key}' has the shape {shape}")
    claimed = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on absurd headers
    if claimed > info.file_size:
        raise DataError(f"{path}: '{key}' claims {' x '.join(map(str, shape))} items of {dtype} ({claimed:,} bytes) but "
                        f"holds {info.file_size:,} bytes; the file is damaged or not what it says.")
    return claimed


def _wanted(keys: list[str], path: Path) -> list[str]:
    """The arrays a dataset file must (and may) hold, of those it has."""
    missing = {"x_train", "y_train"} - set(keys)
    if missing:
        raise DataError(f"{path} has no {' or '.join(sorted(missing))}; it holds {', '.join(sorted(keys)) or 'nothing'}. "
                        f"Save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...).")
    if ("x_test" in keys) != ("y_test" in keys):
        raise DataError(f"{path} has only one of x_test and y_test; give both or neither.")
    return sorted(set(keys) & {"x_train", "y_train", "x_test", "y_test", "class_names"})


def read_npz_arrays(path: Path, choose: Callable[[list[str]], list[str]], save_as: str) -> dict[str, np.ndarray]:
    """The arrays of the .npz file ``path`` that ``choose`` picks from its array names (``choose`` raises
    a DataError when the wanted ones are not there). They are read only once their headers, checked
    against their members' sizes, fit in memory (``check_fits``): a compressed member can claim, and
    inflate to, far more than the file's size. Any other fault of the file (a single .npy array, a
    damaged zip, object arrays) is a DataError naming it; ``save_as`` is the np.savez call that makes
    a good one. The caller says first what a missing ``path`` means."""
    try:
        with open(path, "rb") as handle:  # ours to close, whatever np.load makes of the file
            npz = np.load(handle, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(f"{path} holds a single array (.npy), not the named arrays of an .npz; save it with "
                                f"{save_as}.")
            with npz:
                wanted = choose(list(npz.files))
                check_fits(sum(_claimed_bytes(npz, key, path) for key in wanted),
                           f"{path} (its arrays, as their headers say)",
                           "Save fewer or smaller images, or check that the file is the one you meant.")
                return {key: npz[key] for key in wanted}
    except DataError:
        raise
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(f"{path} holds object arrays, which can only be read by unpickling (and so could run code); "
                            f"save plain numeric arrays instead.") from None
        raise DataError(f"{path} could not be read as .npz: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise DataError(f"{path} could not be read as an .npz file ({error}); it is damaged or not an .npz.") from None
    except MemoryError:
        raise DataError(f"{path} holds arrays too large for this machine's memory.") from None


def read_npz(path: str | Path) -> tuple[ArrayDataset, Optional[ArrayDataset], Optional[list[str]]]:
    """Training part, test part (or None) and class names (or None) of an .npz file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist (dataset 'npz' reads the file named by 'path:').")
    arrays = read_npz_arrays(path, lambda keys: _wanted(keys, path),
                             "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)")
    train = _part(arrays, "x_train", "y_train", path)
    test = _part(arrays, "x_test", "y_test", path) if "x_test" in arrays else None
    names = None
    if "class_names" in arrays:
        raw = arrays["class_names"]
        if raw.ndim != 1 or raw.dtype.kind not in "US":
            raise DataError(f"{path}: 'class_names' must be a 1-D string array; found {raw.dtype} {raw.shape}.")
        names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in raw.tolist()]
    return train, test, names


def read_npz_source(spec: Any, files: Mapping[str, Path], info: Any) -> Source:
    path = Path(spec.path).expanduser()
    train, test, names = read_npz(path)
    if names is None:
        names = numbered_class_names({"'y_train'": train, "'y_test'": test}, str(path))
    return make_source("npz", train, test, names, where=str(path))
