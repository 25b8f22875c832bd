"""The files a finished run leaves in the store: written here, read back here.

``weights`` (safetensors): the model's final state dict, contiguous CPU tensors by their module
names (``conv1.0.weight``, ...); read back with safetensors, which holds no code. Its header's
metadata (safetensors' str -> str ``__metadata__``, which every safetensors reader ignores or
passes through, so older readers load the tensors unchanged) holds under ``INFERENCE_KEY`` one
JSON object: what using the model needs besides the weights (``inference_facts``, checked by
``read_inference``; weights stored before it was kept have none):

    format          int                 INFERENCE_FORMAT (1)
    run_id          str                 the run the weights are from
    cnnlab_version  str                 the version (and git commit) that trained it
    input_shape     [C, H, W]           what the model takes, channels first (layout "NCHW")
    layout          str                 "NCHW"
    class_names     [str] * classes     output column i is class_names[i]
    normalize       str                 the spec's dataset.normalize: unit, standardize or none
    scale, shift    [float] * C         model input = uint8 pixel (0-255) * scale + shift, per channel
                                        (float32 values; standardize: the training split's mean/std)
    image_mode      str or null         the Pillow mode an image file is converted to: L (1 channel,
                                        ITU-R 601-2 luma, the folder dataset's grayscale rule), RGB (3),
                                        RGBA (4); null for other channel counts
    resize          str                 "bilinear": an image file of another size is resized to H x W
                                        as the folder dataset resizes to its image_size
    dataset         {name, image_size, grayscale}   the spec's dataset fields that shaped the images
    output          str                 "logits": the module's output; softmax gives probabilities

``predictions`` (npz): the softmax outputs and true labels of every split the run evaluated
with its final weights ("val", and "test" when the run measures it), for confusion matrices:

    {split}_labels         int64    (N,)            true class per image
    {split}_probabilities  float32  (N, classes)    softmax outputs, rows in the split's order

``examples`` (npz): a few images of the last evaluated split (test when measured), for
example grids; at most ``EXAMPLES_PER_KIND`` per kind, kinds ``correct``, ``wrong`` (the
first mistakes in the split's order) and ``confident_wrong`` (the most confident mistakes):

    split                  str      ()              the split's name: "val" or "test"
    {kind}_index           int64    (n,)            position in the split
    {kind}_images          uint8    (n, C, H, W)
    {kind}_labels          int64    (n,)            true class
    {kind}_predicted       int64    (n,)            argmax of the softmax output
    {kind}_confidence      float32  (n,)            the softmax output of the predicted class

A run that evaluated no split writes both files with no arrays at all. Both are written with
``np.savez_compressed`` and read with ``allow_pickle=False``: nothing in them can execute. A
damaged file, or an npz that is not one of these, is a StoreError naming the file. The readers
take a file or its bytes (the store reads a file once, checks its sha256, then parses the bytes).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol, Union

import numpy as np

from cnnlab.errors import StoreError

EXAMPLES_PER_KIND = 16
SPLITS = ("val", "test")
EXAMPLE_KINDS = ("correct", "wrong", "confident_wrong")
EXAMPLE_FIELDS = ("index", "images", "labels", "predicted", "confidence")


class LabelledImages(Protocol):
    """What the writer needs of a split: uint8 images N x C x H x W and labels (tensors or arrays)."""

    images: Any
    labels: Any

    def __len__(self) -> int: ...


def _numpy(values: Any) -> np.ndarray:
    """A CPU tensor or an array as a NumPy array (a tensor's is a view, not a copy)."""
    return values.numpy() if hasattr(values, "numpy") else np.asarray(values)


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def evaluation_files(probabilities: Mapping[str, Any],
                     parts: Mapping[str, Optional[LabelledImages]]) -> tuple[bytes, bytes]:
    """Two npz files: softmax outputs and labels of the evaluated splits (val, and test when the
    run measures it) for confusion matrices, and a few correct and wrong images of the last of
    them (for example grids). ``probabilities`` are the trainer's final evaluations."""
    arrays: dict[str, np.ndarray] = {}
    examples: dict[str, np.ndarray] = {}
    for name, data in parts.items():
        if data is None or not len(data) or name not in probabilities:
            continue
        labels = _numpy(data.labels).astype(np.int64)
        outputs = _numpy(probabilities[name]).astype(np.float32)
        arrays[f"{name}_labels"], arrays[f"{name}_probabilities"] = labels, outputs
        predicted, confidence = outputs.argmax(1), outputs.max(1)
        right = np.flatnonzero(predicted == labels)[:EXAMPLES_PER_KIND]
        wrong = np.flatnonzero(predicted != labels)
        # The first mistakes, then the most confident ones (the most instructive).
        confident = wrong[np.argsort(-confidence[wrong], kind="stable")][:EXAMPLES_PER_KIND]
        chosen = {"correct": right, "wrong": wrong[:EXAMPLES_PER_KIND], "confident_wrong": confident}
        images = _numpy(data.images)
        examples = {"split": np.array(name)}
        for kind, index in chosen.items():
            examples[f"{kind}_index"] = index.astype(np.int64)
            examples[f"{kind}_images"] = images[index]
            examples[f"{kind}_labels"] = labels[index]
            examples[f"{kind}_predicted"] = predicted[index].astype(np.int64)
            examples[f"{kind}_confidence"] = confidence[index]
    return _npz(arrays), _npz(examples)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class SplitPredictions:
    """One split's true labels (int64, N) and softmax outputs (float32, N x classes)."""

    split: str
    labels: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class Predictions:
    """A predictions file: the evaluated splits by name ("val", "test"); none when nothing was evaluated."""

    splits: dict[str, SplitPredictions] = field(default_factory=dict)


@dataclass(frozen=True)
class Examples:
    """A few evaluation images of one kind (correct, wrong, confident_wrong) as uint8 N x C x H x W."""

    kind: str
    images: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    index: Optional[np.ndarray] = None  # positions in the split (always set when read from a file)


@dataclass(frozen=True)
class ExampleImages:
    """An examples file: the split the images come from (None when nothing was evaluated) and its kinds."""

    split: Optional[str]
    kinds: dict[str, Examples] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The file's arrays by name, as in the module doc."""
        out: dict[str, np.ndarray] = {} if self.split is None else {"split": np.array(self.split)}
        for kind, group in self.kinds.items():
            for name in EXAMPLE_FIELDS:
                out[f"{kind}_{name}"] = getattr(group, name)
        return out


# What a damaged file raises from np.load or from reading one of its arrays.
_DAMAGED = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


Source = Union[str, Path, bytes]


def _where(source: Source, where: Optional[str | Path], what: str) -> str | Path:
    """What a message names: the file, or ``where`` the bytes came from."""
    if where is not None:
        return where
    return f"the {what} data" if isinstance(source, bytes) else source


def _load(source: Source, path: str | Path, what: str) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(io.BytesIO(source) if isinstance(source, bytes) else source, allow_pickle=False)
    except _DAMAGED as error:
        raise StoreError(f"{path}: the {what} file is damaged or unreadable ({error})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array
        raise StoreError(f"{path} is not a cnnlab {what} file: one array, not an npz archive")
    try:
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except _DAMAGED as error:
        raise StoreError(f"{path}: the {what} file is damaged or unreadable ({error})") from None


def _check(condition: bool, path: str | Path, what: str, problem: str) -> None:
    if not condition:
        raise StoreError(f"{path} is not a valid cnnlab {what} file: {problem}")


def _labels(values: np.ndarray, path: str | Path, what: str, name: str) -> np.ndarray:
    _check(values.ndim == 1 and values.dtype.kind in "iu", path, what, f"'{name}' is not a list of class numbers")
    _check(not len(values) or values.min() >= 0, path, what, f"'{name}' holds a negative class number")
    return values.astype(np.int64, copy=False)


def read_predictions(source: Source, where: Optional[str | Path] = None) -> Predictions:
    """A run's predictions file (or its bytes, from ``where``), checked against the contract in the module doc."""
    what = "predictions"
    path = _where(source, where, what)
    arrays = _load(source, path, what)
    expected = {f"{split}_{name}" for split in SPLITS for name in ("labels", "probabilities")}
    unknown = sorted(set(arrays) - expected)
    _check(not unknown, path, what, f"unexpected arrays {', '.join(unknown)}")
    splits = {}
    for split in SPLITS:
        labels, probabilities = arrays.get(f"{split}_labels"), arrays.get(f"{split}_probabilities")
        if labels is None and probabilities is None:
            continue
        _check(labels is not None and probabilities is not None, path, what,
               f"the {split} split needs both {split}_labels and {split}_probabilities")
        labels = _labels(labels, path, what, f"{split}_labels")
        _check(probabilities.ndim == 2 and probabilities.dtype.kind == "f" and len(probabilities) == len(labels)
               and probabilities.shape[1] > 0, path, what,
               f"{split}_probabilities is not one row of class scores per label")
        # A confusion matrix is classes x classes: a label past the scores' columns would size it.
        _check(not len(labels) or int(labels.max()) < probabilities.shape[1], path, what,
               f"{split}_labels name classes that {split}_probabilities has no column for")
        splits[split] = SplitPredictions(split, labels, probabilities.astype(np.float32, copy=False))
    return Predictions(splits)


def read_examples(source: Source, where: Optional[str | Path] = None) -> ExampleImages:
    """A run's examples file (or its bytes, from ``where``), checked against the contract in the module doc."""
    what = "examples"
    path = _where(source, where, what)
    arrays = _load(source, path, what)
    expected = {"split"} | {f"{kind}_{name}" for kind in EXAMPLE_KINDS for name in EXAMPLE_FIELDS}
    unknown = sorted(set(arrays) - expected)
    _check(not unknown, path, what, f"unexpected arrays {', '.join(unknown)}")
    if "split" not in arrays:
        _check(not arrays, path, what, "it has images but no 'split'")
        return ExampleImages(None)
    split = arrays["split"]
    _check(split.ndim == 0 and split.dtype.kind == "U", path, what, "'split' is not a split's name")
    kinds = {}
    for kind in EXAMPLE_KINDS:
        present = [name for name in EXAMPLE_FIELDS if f"{kind}_{name}" in arrays]
        if not present:
            continue
        _check(len(present) == len(EXAMPLE_FIELDS), path, what,
               f"'{kind}' lacks {', '.join(f'{kind}_{n}' for n in EXAMPLE_FIELDS if n not in present)}")
        images, confidence = arrays[f"{kind}_images"], arrays[f"{kind}_confidence"]
        count = len(images)
        _check(images.ndim == 4 and images.dtype == np.uint8, path, what, f"{kind}_images are not uint8 N x C x H x W")
        _check(confidence.ndim == 1 and confidence.dtype.kind == "f", path, what, f"{kind}_confidence is not numbers")
        index = _labels(arrays[f"{kind}_index"], path, what, f"{kind}_index")
        labels = _labels(arrays[f"{kind}_labels"], path, what, f"{kind}_labels")
        predicted = _labels(arrays[f"{kind}_predicted"], path, what, f"{kind}_predicted")
        _check(all(len(a) == count for a in (index, labels, predicted, confidence)), path, what,
               f"the {kind} arrays differ in length")
        kinds[kind] = Examples(kind, images, labels, predicted, confidence.astype(np.float32, copy=False), index)
    return ExampleImages(str(split), kinds)


__all__ = ["EXAMPLES_PER_KIND", "SPLITS", "EXAMPLE_KINDS", "SplitPredictions", "Predictions", "Examples",
           "ExampleImages", "evaluation_files", "read_predictions", "read_examples", "serialize_weights",
           "read_weights", "INFERENCE_KEY", "INFERENCE_FORMAT", "IMAGE_MODES", "inference_facts", "read_inference"]


# ---------------------------------------------------------------- weights


def serialize_weights(state_dict: Mapping[str, Any], inference: Optional[Mapping[str, Any]] = None) -> bytes:
    """A safetensors file's bytes for a model's state dict (tensors copied to contiguous CPU ones),
    with ``inference`` (from ``inference_facts``) as JSON in its metadata when given."""
    from safetensors.torch import save

    metadata = {INFERENCE_KEY: json.dumps(dict(inference))} if inference is not None else None
    return save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, metadata=metadata)


def read_weights(source: Source, where: Optional[str | Path] = None) -> dict[str, Any]:
    """A weights file's tensors (or those of its bytes, from ``where``); a StoreError naming the
    file when it is damaged or not one."""
    from safetensors.torch import load, load_file

    path = _where(source, where, "weights")
    try:
        if not isinstance(source, bytes):
            return load_file(str(source))
        return dict(sorted(load(source).items()))  # by name, as load_file gives them (load: in file order)
    except Exception as error:  # safetensors raises its own types for damaged files
        raise StoreError(f"{path}: not a readable safetensors weights file ({error})") from None


# ---------------------------------------------------------------- what inference needs (weights metadata)

INFERENCE_KEY = "cnnlab.inference"
INFERENCE_FORMAT = 1
NORMALIZE_MODES = ("unit", "standardize", "none")
# The Pillow mode an image file becomes for a model of this many channels: the folder dataset's rule
# ("L" with grayscale, else "RGB"), and RGBA for the 4-channel arrays an npz dataset may hold.
IMAGE_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def inference_facts(*, run_id: str, cnnlab_version: str, input_shape: Any, class_names: Any, normalize: str,
                    scale: Any, shift: Any, dataset: Any) -> dict[str, Any]:
    """What using the model needs besides its weights, as plain JSON data (see the module doc).
    ``scale`` and ``shift`` are the trainer's per-channel tensors (any shape holding C values);
    ``dataset`` is the spec's (``name``, ``image_size``, ``grayscale`` are read)."""
    size = getattr(dataset, "image_size", None)
    channels, height, width = (int(n) for n in input_shape)
    return {
        "format": INFERENCE_FORMAT, "run_id": str(run_id), "cnnlab_version": str(cnnlab_version),
        "input_shape": [channels, height, width], "layout": "NCHW", "class_names": [str(n) for n in class_names],
        "normalize": normalize,
        # float32 -> float is exact and JSON keeps a float's repr: the values read back are the trained ones.
        "scale": [float(v) for v in _numpy(scale).reshape(-1)], "shift": [float(v) for v in _numpy(shift).reshape(-1)],
        "image_mode": IMAGE_MODES.get(channels), "resize": "bilinear",
        "dataset": {"name": str(dataset.name), "image_size": [int(n) for n in size] if size is not None else None,
                    "grayscale": bool(getattr(dataset, "grayscale", False))},
        "output": "logits",
    }


def _header_metadata(source: Source, path: str | Path) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file's JSON header (8 bytes of length, then the header)."""
    try:
        if isinstance(source, bytes):
            head, rest = source[:8], source[8:]
        else:
            with open(source, "rb") as handle:
                head = handle.read(8)
                rest = handle.read(min(int.from_bytes(head, "little"), 100 << 20)) if len(head) == 8 else b""
        size = int.from_bytes(head, "little")
        if len(head) != 8 or size > len(rest):
            raise ValueError("the header is cut short")
        header = json.loads(rest[:size])
        metadata = header.get("__metadata__") if isinstance(header, dict) else []
        if not isinstance(metadata, (dict, type(None))):
            raise ValueError("the header is not a safetensors header")
        return metadata or {}
    except (OSError, ValueError) as error:
        raise StoreError(f"{path}: not a readable safetensors weights file ({error})") from None


def read_inference(source: Source, where: Optional[str | Path] = None) -> Optional[dict[str, Any]]:
    """The inference facts in a weights file's (or its bytes') metadata, checked against the module
    doc; None for weights stored before cnnlab kept them; a StoreError naming the file otherwise. A study
    folder may come from anyone and these facts go into exported files: every field is checked (a bool is
    no number) and only the module doc's fields are returned, rebuilt from the checked values."""
    what = "weights"
    path = _where(source, where, what)
    text = _header_metadata(source, path).get(INFERENCE_KEY)
    if text is None:
        return None
    try:
        facts = json.loads(text)
    except ValueError:
        facts = None
    _check(isinstance(facts, dict), path, what, f"its '{INFERENCE_KEY}' metadata is not a JSON object")
    _check(_is_int(facts.get("format")) and facts["format"] == INFERENCE_FORMAT, path, what,
           f"its '{INFERENCE_KEY}' metadata has format {str(facts.get('format'))[:40]!r}, which this cnnlab does not "
           f"read (it reads {INFERENCE_FORMAT}); upgrade cnnlab")
    shape = facts.get("input_shape")
    _check(isinstance(shape, list) and len(shape) == 3 and all(_is_int(n) and n > 0 for n in shape),
           path, what, "its input_shape is not [C, H, W]")
    names = facts.get("class_names")
    _check(isinstance(names, list) and names and all(isinstance(n, str) for n in names), path, what,
           "its class_names are not a list of names")
    _check(facts.get("normalize") in NORMALIZE_MODES, path, what, "its normalize is not unit, standardize or none")
    for key in ("scale", "shift"):
        values = facts.get(key)
        _check(isinstance(values, list) and len(values) == shape[0] and all(map(_finite, values)),
               path, what, f"its {key} is not one finite number per channel")
    for key in ("run_id", "cnnlab_version"):
        _check(isinstance(facts.get(key), str), path, what, f"its {key} is not a string")
    for key, fixed in (("layout", "NCHW"), ("resize", "bilinear"), ("output", "logits"), ("image_mode", IMAGE_MODES.get(shape[0]))):
        _check(facts.get(key) == fixed, path, what, f"its {key} is not {fixed!r}" if fixed else f"it has an {key}")
    dataset = facts.get("dataset")
    size = dataset.get("image_size") if isinstance(dataset, dict) else None
    _check(isinstance(dataset, dict) and isinstance(dataset.get("name"), str) and isinstance(dataset.get("grayscale"), bool)
           and (size is None or isinstance(size, list) and len(size) == 2 and all(_is_int(n) and n > 0 for n in size)),
           path, what, "its dataset is not {name, image_size, grayscale}")
    return {
        "format": INFERENCE_FORMAT, "run_id": facts["run_id"], "cnnlab_version": facts["cnnlab_version"],
        "input_shape": list(shape), "layout": "NCHW", "class_names": list(names), "normalize": facts["normalize"],
        "scale": [float(v) for v in facts["scale"]], "shift": [float(v) for v in facts["shift"]],
        "image_mode": IMAGE_MODES.get(shape[0]), "resize": "bilinear",
        "dataset": {"name": dataset["name"], "image_size": size, "grayscale": dataset["grayscale"]}, "output": "logits",
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON's true would pass as 1


def _finite(value: Any) -> bool:  # a 400-digit int is valid JSON but no float (math.isfinite would raise)
    return isinstance(value, float) and math.isfinite(value) or _is_int(value) and abs(value) < 2**1000
