"""A folder of images, one sub-folder per class, read with Pillow.

Layouts: ``root/<class>/<images>`` (no test part), or ``root/train/<class>/...`` with an
optional ``root/test/<class>/...`` (used when ``train`` (and ``test``) are root's only
sub-folders). Class names are the sorted class-folder names of the training part; images may
sit in nested folders under their class folder. Hidden files (``.DS_Store``) and
``Thumbs.db``/``desktop.ini`` are skipped; any other file must be an image. Images become RGB
(3 channels), or one channel with ``grayscale``; they are resized to ``image_size`` when given,
otherwise they must all have one size.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from cnnlab.data.arrays import ArrayDataset, Source, check_fits, dataset_from_numpy, make_source
from cnnlab.errors import DataError

JUNK = {"thumbs.db", "desktop.ini"}


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def part_folders(root: Path) -> dict[str, Path]:
    """{'train': folder[, 'test': folder]} for either layout."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder (dataset 'folder' reads the folder named by 'path:').")
    names = {p.name for p in _visible_dirs(root)}
    if names in ({"train"}, {"train", "test"}):
        return {name: root / name for name in sorted(names, key=["train", "test"].index)}
    return {"train": root}


def class_folder_names(root: Path) -> list[str]:
    """The class names (sorted folder names of the training part), without reading images."""
    try:
        return [p.name for p in _visible_dirs(part_folders(root)["train"])]
    except (DataError, OSError):
        return []


def image_files(class_folder: Path) -> list[Path]:
    """Every file under the folder, sorted, less hidden ones and Thumbs.db/desktop.ini: each must be an image."""
    files = []
    for path in sorted(class_folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(class_folder).parts) or path.name.lower() in JUNK:
            continue
        if path.is_file():
            files.append(path)
    return files


def conform_image(image: Any, mode: str, size: Optional[tuple[int, int]]) -> np.ndarray:
    """An opened Pillow image as this dataset keeps it (uint8 H x W, or H x W x C): converted to
    ``mode`` ("L": Pillow's ITU-R 601-2 luma, "RGB"), resized bilinearly to ``size`` (height, width)
    when given and different. ``cnnlab predict`` feeds a model's images through the same rule."""
    from PIL import Image

    image = image.convert(mode)
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def read_image(path: Path, mode: str, size: Optional[tuple[int, int]]) -> np.ndarray:
    """One image file through ``conform_image``; a DataError naming the file when it is not one."""
    from PIL import Image, UnidentifiedImageError

    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); every file in a class folder must be an image. Delete or replace it.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return conform_image(image, mode, size)
    except UnidentifiedImageError:
        raise DataError(f"{path} is not an image Pillow can read; every file in a class folder must be an image "
                        f"(move other files out of the dataset folder).") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(f"{path} could not be read as an image ({error}); it is damaged or truncated.") from None


def read_image_part(folder: Path, class_names: list[str], image_size: Optional[tuple[int, int]], grayscale: bool) -> ArrayDataset:
    """Every image under ``folder/<class>/`` for the given classes, as one dataset."""
    mode = "L" if grayscale else "RGB"
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(class_names):
        class_folder = folder / name
        if not class_folder.is_dir():
            continue
        found = image_files(class_folder)
        if not found:
            raise DataError(f"class folder {class_folder} holds no images; remove it or add images.")
        files.extend((path, label) for path in found)
    if not files:
        raise DataError(f"{folder} holds no images in class sub-folders.")
    first = read_image(files[0][0], mode, image_size)
    height, width = first.shape[:2]
    channels = 1 if grayscale else 3
    check_fits(len(files) * height * width * channels,
               f"{folder}: {len(files):,} images of {width}x{height} pixels (the size of {files[0][0].name})",
               "Give 'image_size: [height, width]' in the dataset spec to resize them as they are read.")
    images = np.empty((len(files), height, width, channels), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        pixels = first if i == 0 else read_image(path, mode, image_size)
        if pixels.shape[:2] != (height, width):
            raise DataError(
                f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels but {files[0][0]} is {width}x{height}; "
                f"images of different sizes need 'image_size: [height, width]' in the dataset spec."
            )
        images[i] = pixels.reshape(height, width, channels)
    labels = np.array([label for _, label in files], dtype=np.int64)
    return dataset_from_numpy(images.transpose(0, 3, 1, 2), labels)


def read_folder(root: str | Path, image_size: Optional[tuple[int, int]] = None, grayscale: bool = False) -> tuple[ArrayDataset, Optional[ArrayDataset], list[str]]:
    """Training part, test part (or None) and class names of an image folder."""
    root = Path(root).expanduser()
    parts = part_folders(root)
    class_names = [p.name for p in _visible_dirs(parts["train"])]
    if not class_names:
        raise DataError(f"{parts['train']} has no class sub-folders; put each class's images in a folder named after the class.")
    train = read_image_part(parts["train"], class_names, image_size, grayscale)
    test = None
    if "test" in parts:
        extra = sorted({p.name for p in _visible_dirs(parts["test"])} - set(class_names))
        if extra:
            raise DataError(f"{parts['test']} has class folders that {parts['train']} lacks: {', '.join(extra)}.")
        test = read_image_part(parts["test"], class_names, image_size, grayscale)
    return train, test, class_names


def read_folder_source(spec: Any, files: Mapping[str, Path], info: Any) -> Source:
    size = tuple(spec.image_size) if spec.image_size is not None else None
    train, test, names = read_folder(spec.path, size, spec.grayscale)
    return make_source("folder", train, test, names, where=str(spec.path))
