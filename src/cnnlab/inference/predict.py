"""Predictions of a loaded model for image files, a folder of them, or uint8 arrays in an .npz file.

Image files are read exactly as the folder dataset reads them (``cnnlab.data.folder.read_image``:
converted to the model's Pillow mode, L or RGB, and resized bilinearly to its height and width),
then normalized as in training (``LoadedModel``). A file that cannot be read is refused with the
reason, naming it; the readable ones are still predicted, so a folder with one bad file gives every
other answer and the list of refused files (``cnnlab predict`` then exits with status 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from cnnlab.data.folder import image_files, read_image
from cnnlab.data.npz import read_npz_arrays
from cnnlab.errors import DataError
from cnnlab.inference.model import BATCH, LoadedModel

NPZ_KEYS = ("images", "x_test")  # the array --npz reads, first found (else the file's only array)


@dataclass(frozen=True)
class Prediction:
    """One input's top classes: (class index, class name, probability), most probable first."""

    input: str  # the file's path, or "file.npz[i]"
    top: list[tuple[int, str, float]]


@dataclass
class PredictionSet:
    """What a prediction gave: the run, each input's top classes, and the inputs refused (input, reason)."""

    run_id: str
    predictions: list[Prediction] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {"run_id": self.run_id,
                "predictions": [{"input": p.input, "top": [{"class": name, "index": index, "probability": prob}
                                                           for index, name, prob in p.top]} for p in self.predictions],
                "refused": [{"input": name, "reason": reason} for name, reason in self.refused]}


def top_classes(loaded: LoadedModel, probabilities: np.ndarray, k: int) -> list[list[tuple[int, str, float]]]:
    """Each row's ``k`` most probable classes (ties in class order)."""
    k = max(1, min(k, probabilities.shape[1]))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(int(i), loaded.class_names[i], float(row[i])) for i in best] for row, best in zip(probabilities, order)]


def folder_files(folder: str | Path) -> list[Path]:
    """The files ``--folder`` predicts: every file under it, sorted, less hidden ones (the folder dataset's rule)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder (--folder takes a folder of image files)")
    found = image_files(folder)
    if not found:
        raise DataError(f"{folder} holds no files to predict")
    return found


def predict_files(loaded: LoadedModel, paths: Iterable[str | Path], k: int = 5) -> PredictionSet:
    """Predict each image file; those that cannot be read are refused with the reason."""
    result = PredictionSet(loaded.run_id)
    mode = loaded.image_mode()
    size = tuple(loaded.input_shape[1:])
    paths = [Path(p) for p in paths]
    for start in range(0, len(paths), BATCH):
        names, batch = [], []
        for path in paths[start:start + BATCH]:
            reason = _unreadable(path)
            if reason is None:
                try:
                    batch.append(loaded.pixels(read_image(path, mode, size)))
                    names.append(str(path))
                    continue
                except DataError as error:
                    # The reader's first clause names the file and what is wrong; the rest speaks of datasets.
                    reason = str(error).split(";")[0].removeprefix(str(path)).strip(" :")
            result.refused.append((str(path), reason))
        if batch:
            _add(result, loaded, names, np.concatenate(batch), k)
    return result


def _unreadable(path: Path) -> Optional[str]:
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a folder (give --folder to predict the images in it)"
    return None


def predict_arrays(loaded: LoadedModel, images: np.ndarray, names: Sequence[str], k: int = 5) -> PredictionSet:
    """Predict uint8 images (any layout ``LoadedModel.preprocess`` takes), one name each."""
    result = PredictionSet(loaded.run_id)
    _add(result, loaded, list(names), loaded.pixels(images), k)
    return result


def predict_npz(loaded: LoadedModel, path: str | Path, k: int = 5) -> PredictionSet:
    """Predict the uint8 images in an .npz file (its ``images`` array, else ``x_test``, else its only array)."""
    pixels = loaded.pixels(read_npz_images(path))
    result = PredictionSet(loaded.run_id)
    # Named from the batch itself, not a second reading of its layout (N x C x H x W could read as channels-last).
    _add(result, loaded, [f"{Path(path).name}[{i}]" for i in range(len(pixels))], pixels, k)
    return result


def read_npz_images(path: str | Path) -> np.ndarray:
    """The array ``--npz`` predicts (see ``predict_npz``), N images; a DataError naming the file otherwise.
    The file is untrusted: it is read as a dataset's .npz is (``read_npz_arrays``: headers checked
    before anything is allocated)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (--npz takes an .npz file of uint8 images)")
    arrays = read_npz_arrays(path, lambda keys: [_images_key(keys, path)], "np.savez(path, images=...)")
    name, images = next(iter(arrays.items()))
    if images.ndim < 3:
        raise DataError(f"{path}: '{name}' has shape {images.shape}; --npz takes N images: uint8 N x H x W, "
                        "N x H x W x C or N x C x H x W")
    return images


def _images_key(keys: list[str], path: Path) -> str:
    key = next((name for name in NPZ_KEYS if name in keys), keys[0] if len(keys) == 1 else None)
    if key is None:
        raise DataError(f"{path} holds {', '.join(keys) or 'no arrays'}; --npz reads the array named "
                        f"{' or '.join(NPZ_KEYS)}, or a file's only array")
    return key


def _add(result: PredictionSet, loaded: LoadedModel, names: list[str], pixels: np.ndarray, k: int) -> None:
    if len(names) != len(pixels):
        raise DataError(f"{len(names)} names for {len(pixels)} images")
    tops = top_classes(loaded, loaded.probabilities(pixels), k)
    result.predictions.extend(Prediction(name, top) for name, top in zip(names, tops))
