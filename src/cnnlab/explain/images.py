"""Inputs to explain: a dataset image by split and index, any image file, or one of scikit-learn's two
sample photos (``sample:china``, ``sample:flower``), as the model sees it.

An image file (PNG, JPEG, or anything Pillow reads) is turned into the model's input the way
a user of the study notebooks did by hand, and every step is recorded so the figure can show
it next to the original: EXIF orientation applied, transparency flattened onto black,
converted to grayscale (Pillow's ITU-R 601-2 luma) or RGB, the centre cropped to the model's
aspect ratio (``fit="crop"``; ``"stretch"`` resizes without cropping), resized with Lanczos
(antialiased) to the model's height and width. A sample photo goes through the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from cnnlab.errors import DataError

SPLITS = ("train", "val", "test")
DISPLAY_MAX = 512  # the original is shown at most this many pixels on its long side
SAMPLE_PREFIX = "sample:"
SAMPLES = ("china", "flower")  # the photos sklearn.datasets.load_sample_image ships


@dataclass(frozen=True)
class InputImage:
    """One input: ``image`` (uint8 C x H x W, before normalization) and what it came from."""

    image: np.ndarray
    source: str  # "test:3", the file's path, or "sample:china"
    original: Optional[np.ndarray] = None  # a file's (or sample photo's) pixels as read (uint8 H x W x 3), for display
    original_size: Optional[tuple[int, int]] = None  # (width, height) of the file
    steps: list[str] = field(default_factory=list)  # the preprocessing, in words
    label: Optional[int] = None  # the true class of a dataset image

    @property
    def name(self) -> str:
        """A short name for titles: "test:3", or the file's name without its folder."""
        return Path(self.source).name if self.original is not None else self.source

    @property
    def origin(self) -> str:
        """Where it came from, in words, for captions."""
        if is_sample(self.source):
            return f"scikit-learn's sample photo {self.source[len(SAMPLE_PREFIX):]} ({self.source})"
        return f"file {self.source}" if self.original is not None else f"dataset image {self.source}"


def parse_index(text: str) -> tuple[str, int]:
    """``"test:3"`` -> ("test", 3); a DataError that shows the expected form otherwise."""
    split, sep, number = str(text).partition(":")
    split = split.strip()
    if not sep or split not in SPLITS or not number.strip().isdigit():
        raise DataError(f"an image index looks like 'test:3' (split train, val or test, then the index); "
                        f"got {text!r}")
    return split, int(number)


def looks_like_index(text: str) -> bool:
    """Whether a spec's ``image:`` value is a split:index rather than a file."""
    split, sep, number = str(text).partition(":")
    return bool(sep) and split in SPLITS and number.strip().isdigit()


def is_sample(text: str | Path) -> bool:
    """Whether an ``image`` value names one of scikit-learn's sample photos (``sample:china``)."""
    return str(text).startswith(SAMPLE_PREFIX)


def load_input_image(image: str | Path, input_shape: Sequence[int], fit: str = "crop") -> InputImage:
    """A sample photo (``sample:china``) or an image file, made the model's input the same way."""
    if is_sample(image):
        return load_sample_image(str(image), input_shape, fit)
    return load_image_file(image, input_shape, fit)


def load_sample_image(source: str, input_shape: Sequence[int], fit: str = "crop") -> InputImage:
    """One of scikit-learn's two bundled photos (``sample:china``, ``sample:flower``; 640x427 JPEGs,
    ``sklearn.datasets.load_sample_image``): a photo from outside any dataset, with no file to find."""
    from PIL import Image

    name = source[len(SAMPLE_PREFIX):] if is_sample(source) else source
    if name not in SAMPLES:
        raise DataError(f"unknown sample photo {source!r}; scikit-learn ships two: "
                        f"{', '.join(SAMPLE_PREFIX + sample for sample in SAMPLES)}")
    _check(input_shape, fit)
    from sklearn.datasets import load_sample_image as sklearn_sample

    picture = Image.fromarray(sklearn_sample(f"{name}.jpg"))
    return _prepared(picture, SAMPLE_PREFIX + name, input_shape, fit)


def _check(input_shape: Sequence[int], fit: str) -> None:
    channels = int(input_shape[0])
    if channels not in (1, 3):
        raise DataError(f"the model takes {channels}-channel images; image files can be fed to 1 (grayscale) "
                        f"or 3 (RGB) channel models only")
    if fit not in ("crop", "stretch"):
        raise DataError(f"fit must be 'crop' or 'stretch'; got {fit!r}")


def load_image_file(path: str | Path, input_shape: Sequence[int], fit: str = "crop") -> InputImage:
    """Read an image file and make it the model's input (see the module doc for the steps)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    _check(input_shape, fit)
    try:
        with Image.open(path) as opened:
            opened.load()
            picture = ImageOps.exif_transpose(opened)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image Pillow can read; give a PNG or JPEG file") from None
    except Image.DecompressionBombError as error:
        raise DataError(f"{path}: refused, the image is too large to be safe to decode ({error})") from None
    except OSError as error:  # truncated or damaged files
        raise DataError(f"{path}: cannot read the image ({error})") from None
    return _prepared(picture, str(path), input_shape, fit)


def _prepared(picture, source: str, input_shape: Sequence[int], fit: str) -> InputImage:
    """A Pillow image made the model's input, each step recorded (see the module doc)."""
    from PIL import Image

    channels, height, width = (int(n) for n in input_shape)
    steps = []
    original_size = picture.size
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        background = Image.new("RGBA", picture.size, (0, 0, 0, 255))
        picture = Image.alpha_composite(background, picture.convert("RGBA"))
        steps.append("transparency flattened onto black")
    rgb = picture.convert("RGB")
    display = rgb.copy()
    display.thumbnail((DISPLAY_MAX, DISPLAY_MAX))
    converted = rgb.convert("L") if channels == 1 else rgb
    steps.append("converted to grayscale (luma)" if channels == 1 else "converted to RGB")
    if fit == "crop":
        converted, cropped = _crop_to_aspect(converted, width / height)
        if cropped:
            steps.append(f"centre cropped to {cropped[0]}x{cropped[1]}")
    if converted.size != (width, height):
        steps.append(f"resized {converted.size[0]}x{converted.size[1]} -> {width}x{height} (Lanczos)")
        converted = converted.resize((width, height), Image.Resampling.LANCZOS)
    array = np.asarray(converted, dtype=np.uint8)
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return InputImage(image=np.ascontiguousarray(array), source=source, original=np.asarray(display),
                      original_size=original_size, steps=steps)


def _crop_to_aspect(picture, aspect: float):
    """The largest centred crop with width / height = ``aspect``, and its size (None if uncropped)."""
    width, height = picture.size
    if abs(width / height - aspect) < 1e-6:
        return picture, None
    if width / height > aspect:
        new_width, new_height = max(1, round(height * aspect)), height
    else:
        new_width, new_height = width, max(1, round(width / aspect))
    left, top = (width - new_width) // 2, (height - new_height) // 2
    return picture.crop((left, top, left + new_width, top + new_height)), (new_width, new_height)
